"""This machine: a local process, optionally pinned to CPUs with taskset."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from tuner.measure.environment import Placement, cpu_list, threads_wanted
from tuner.records import Availability, Rendering
from tuner.targets.base import Completed, Target


def run_process(command: Sequence[str], env: Mapping[str, str] | None, timeout_s: float,
                cwd: str | Path | None = None, stdin: bytes | None = None) -> Completed:
    """Run argv (never a shell) in its own process group; on timeout or Ctrl-C kill the group."""
    t0 = time.perf_counter()
    full_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                env=full_env, cwd=cwd, start_new_session=True)
    except OSError as e:
        return Completed(None, "", str(e), 0.0, transport_error=f"cannot start {command[0]}: {e.strerror}")
    try:
        out, err = proc.communicate(input=stdin, timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        timed_out = True
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    return Completed(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                     time.perf_counter() - t0, timed_out)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class LocalTarget(Target):
    runs_here = True

    def probe(self) -> Availability:
        m = self.spec.measure
        explicit = m.pin_cpu or m.run_cpu.strip().lower() not in ("auto", "none", "")
        if explicit and shutil.which("taskset") is None:
            return Availability(False, "run_cpu/pin_cpu is set but 'taskset' is not installed (util-linux)")
        return super().probe()

    def placement(self, program: Any = None, rendering: Rendering | None = None) -> Placement:
        """Single-threaded runs on their own core, builds on the others (see
        tuner.measure.environment.Placement); nothing is pinned where taskset is missing."""
        threads: int | None = 1
        if program is not None:
            r = rendering or Rendering()
            threads = threads_wanted([*program.cflags, *program.ldflags, *r.cflags], r.env)
        key = threads if threads is not None else -1
        cache = self.__dict__.setdefault("_placements", {})
        if key not in cache:
            placement = self.spec.measure.placement(threads)
            if placement.run and shutil.which("taskset") is None:
                placement = Placement((), placement.build)
            cache[key] = placement
        return cache[key]

    def pinned(self, command: list[str], placement: Placement) -> list[str]:
        return ["taskset", "-c", cpu_list(placement.run), *command] if placement.run else command

    def execute(self, command: Sequence[str], env: Mapping[str, str], timeout_s: float,
                want_output: bool) -> Completed:
        with tempfile.TemporaryDirectory(prefix="tune-run-") as tmp:
            out_path = Path(tmp) / "output.bin"
            if want_output:
                env = {**env, "TUNE_OUTPUT": str(out_path)}
            done = run_process(command, env, timeout_s, cwd=tmp)
            if want_output and out_path.exists():
                return Completed(done.returncode, done.stdout, done.stderr, done.wall_s,
                                 done.timed_out, out_path.read_bytes(), done.transport_error)
            return done

"""This machine: a local process, optionally pinned to CPUs with taskset."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from tuner import procs
from tuner.buildcache import BuildCache, CompileError, ToolMissing
from tuner.errors import MachineFault, machine_fault, machine_fault_in
from tuner.measure.environment import Placement, cpu_list, threads_wanted
from tuner.records import Availability, Rendering
from tuner.targets.base import Completed, Target


def run_process(command: Sequence[str], env: Mapping[str, str] | None, timeout_s: float,
                cwd: str | Path | None = None, stdin: bytes | None = None) -> Completed:
    """Run argv (never a shell) in its own session; on timeout or Ctrl-C kill its group; it dies
    with tune however tune dies (see tuner.procs)."""
    done = procs.run(command, env, timeout_s, cwd=cwd, stdin=stdin)
    if done.start_error is not None:
        e = done.start_error
        return Completed(None, "", str(e), 0.0, transport_error=f"cannot start {command[0]}: {e.strerror}")
    return Completed(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"),
                     done.wall_s, done.timed_out)


def _output_fault(done: Completed) -> MachineFault | None:
    """A program that failed writing its output to a full disk: the machine's fault (a program
    that succeeded despite the message is left alone)."""
    if done.returncode == 0 or done.timed_out:
        return None
    return machine_fault_in(done.stderr, tempfile.gettempdir(), "the program")


PROBE_C = '#include <stdio.h>\nint main(void) { puts("@tune {\\"metrics\\": {\\"probe\\": 1}}"); return 0; }\n'


def probe_cache() -> Path:
    """Where probe programs are built once ($XDG_CACHE_HOME/tune/probe, else a temp dir)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tune" / "probe"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return base
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"tune-probe-{os.getuid()}"


def run_trivial(target: "Target", command: Sequence[str], what: str) -> Availability:
    """Run a trivial program through the target's own transport; usable if it prints its line."""
    done = target.execute(list(command), {}, 60, want_output=False)
    if done.transport_error:
        return Availability(False, f"cannot run {what}: {done.transport_error}")
    if done.timed_out:
        return Availability(False, f"{what} did not finish in 60 s")
    if done.returncode != 0 or "@tune " not in done.stdout:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return Availability(False, f"{what} failed: {last[:200]}")
    return Availability(True, "")


class LocalTarget(Target):
    runs_here = True

    def probe(self) -> Availability:
        """Usable if a trivial C program builds with the target's toolchain and runs, pinned as
        runs are (built once per compiler and flags, in probe_cache(); later probes only run it)."""
        m = self.spec.measure
        explicit = m.pin_cpu or m.run_cpu.strip().lower() not in ("auto", "none", "")
        if explicit and shutil.which("taskset") is None:
            return Availability(False, "run_cpu/pin_cpu is set but 'taskset' is not installed (util-linux)")
        found = super().probe()
        if not found.usable:
            return found
        tc = self.spec.toolchain
        cache = probe_cache()
        source = cache / "probe.c"
        try:
            if not source.is_file() or source.read_text() != PROBE_C:
                tmp = cache / f".probe.{os.getpid()}.c"
                tmp.write_text(PROBE_C)
                tmp.replace(source)
            binary = BuildCache(cache / "builds").compile(tc.cc, [source], list(tc.cflags), list(tc.ldflags),
                                                          timeout_s=120)
        except (ToolMissing, MachineFault, OSError) as e:
            return Availability(False, f"cannot build a trivial program with '{tc.cc}': {e}")
        except CompileError as e:
            last = (e.stderr_tail.strip().splitlines() or [""])[-1]
            return Availability(False, f"cannot build a trivial program with '{tc.cc}': {e}"
                                       + (f": {last[:200]}" if last else ""))
        return run_trivial(self, self.pinned([str(binary.path)], self.placement()),
                           f"a trivial program built with '{tc.cc}'")

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
        try:
            with tempfile.TemporaryDirectory(prefix="tune-run-") as tmp:
                out_path = Path(tmp) / "output.bin"
                if want_output:
                    env = {**env, "TUNE_OUTPUT": str(out_path)}
                done = run_process(command, env, timeout_s, cwd=tmp)
                if want_output and out_path.exists():
                    return Completed(done.returncode, done.stdout, done.stderr, done.wall_s,
                                     done.timed_out, out_path.read_bytes(), done.transport_error)
        except OSError as e:     # the run directory cannot be made: /tmp is full or read-only
            fault = machine_fault(e, tempfile.gettempdir())
            if fault is None:
                raise
            raise fault from None
        fault = _output_fault(done)
        if fault is not None:
            raise fault
        return done

"""The target protocol: build a configuration, run it, return a Measurement.

A target is a toolchain (how to compile), a transport (where the binary runs: a local
process, an emulator, a host over ssh, a phone over adb) and a measurement method (wall
time from the harness, instruction counts, simulated cycles). The build and the parsing of
the program's `@tune` line are shared here; a driver only says how to reach its device,
by overriding `probe`, `deploy` and `execute`. Faults are Measurements with a reason.

`run` measures across processes: a series of launches whose figure is the median of the
per-launch medians with its 95% interval (tuner.measure.launches), because on a shared machine
the time of a binary varies between processes far more than inside one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tuner.buildcache import BuildCache, CompileError, ToolMissing, compiler_identity
from tuner.elfsize import code_bytes
from tuner.errors import MachineFault, machine_fault
from tuner.measure.environment import Placement, Watch, affinity, machine
from tuner.measure.launches import LaunchPolicy, SeriesRace, derive_rates, launch_series
from tuner.provenance import sha256_file
from tuner.records import Availability, Build, FailureReason, Measurement, Rendering
from tuner.stats import median_ci
from tuner.targets.spec import TargetSpec

TUNE_LINE = "@tune "


@dataclass(frozen=True)
class Completed:
    """What a transport saw of one run."""

    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
    timed_out: bool = False
    output: bytes | None = None       # the TUNE_OUTPUT file's bytes, when asked for
    transport_error: str = ""         # the device or the copy failed, not the program


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Target:
    """Shared build and measurement logic; subclasses provide the transport."""

    def __init__(self, spec: TargetSpec, cache_root: Path) -> None:
        self.spec = spec
        self.cache = BuildCache(cache_root)
        self.gen_dir = Path(cache_root) / "generated"

    # --- the transport: what a driver overrides ----------------------------------------
    def probe(self) -> Availability:
        """Can this target be used here now? Checked by `tune targets` and before a campaign."""
        try:
            compiler_identity(self.spec.toolchain.cc)
        except ToolMissing as e:
            return Availability(False, str(e))
        return Availability(True, "")

    def cores(self) -> int:
        import os
        return self.spec.cores or os.cpu_count() or 1

    def deploy(self, build: Build) -> Build:
        """Make the binary runnable where it will run (copy it to a device); local: nothing."""
        return build

    def execute(self, command: Sequence[str], env: Mapping[str, str], timeout_s: float,
                want_output: bool) -> Completed:
        raise NotImplementedError

    def cleanup(self) -> None:
        """Release the device at the end of a campaign."""

    # --- shared: build ---------------------------------------------------------------
    def compile_flags(self, rendering: Rendering, cflags: Sequence[str], program: Any) -> list[str]:
        incs = [f"-I{d}" for d in program.include_dirs]
        return [*self.spec.toolchain.cflags, *program.cflags, *incs, *cflags]

    def sources(self, program: Any, rendering: Rendering) -> list[Path]:
        sources = list(program.sources)
        if program.template is not None:
            from tuner.template import render_template
            text = render_template(program.template, {**program.params, **rendering.variables})
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            suffix = ".cpp" if program.language == "c++" else ".c"
            path = self.gen_dir / f"{program.template.name.split('.')[0]}-{digest}{suffix}"
            if not path.exists():
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")   # workers may write it at once
                try:
                    self.gen_dir.mkdir(parents=True, exist_ok=True)
                    tmp.write_text(text)
                    tmp.replace(path)
                except OSError as e:     # a full disk is the machine's fault, not the configuration's
                    raise (machine_fault(e, path) or MachineFault(f"cannot write it: {e.strerror}", path)) from None
            sources.append(path)
        return sources

    def build(self, program: Any, rendering: Rendering, reference: bool = False) -> Build | Measurement:
        """Compile through the content-addressed cache; a failure is a Measurement."""
        if reference:   # the same semantics (defines) at the reference level, knob flags dropped
            cflags = [f for f in rendering.cflags if f.startswith("-D")] + list(program.reference_cflags)
            cc = self.spec.toolchain.cc
        else:
            cflags = list(rendering.cflags)
            cc = rendering.compiler or self.spec.toolchain.cc
        try:
            sources = self.sources(program, rendering)
            with affinity(self.placement().build):     # off the core that runs measurements
                binary = self.cache.compile(
                    cc, sources, self.compile_flags(rendering, cflags, program),
                    [*program.ldflags, *self.spec.toolchain.ldflags],
                    headers=sorted(p for d in program.include_dirs for p in d.glob("*.h")),
                )
        except ToolMissing as e:
            return Measurement.failed(FailureReason.TOOL_MISSING, str(e))
        except CompileError as e:
            return Measurement.failed(FailureReason.COMPILE_ERROR, f"{e}\n{e.stderr_tail}", build_s=e.build_s)
        except Exception as e:  # a template error is the configuration's fault, not the campaign's
            if type(e).__module__.startswith("jinja2"):
                return Measurement.failed(FailureReason.COMPILE_ERROR, f"template: {e}")
            raise
        own_code = sum(code_bytes(o) or 0 for o in binary.objects)   # 0 with -flto: objects hold IR
        return Build(command=(str(binary.path),), key=binary.key, build_s=binary.build_s,
                     binary_bytes=own_code or code_bytes(binary.path), cached=binary.cached, path=binary.path,
                     artifact=sha256_file(binary.path) or "")   # the same bytes: measured once (History.same_program)

    # --- shared: run and parse -------------------------------------------------------
    runs_here = False      # the binary runs on this machine: /proc tells what else ran meanwhile

    def placement(self, program: Any = None, rendering: Rendering | None = None) -> Placement:
        """Cores for runs (of this program and rendering, when given) and builds; a remote
        device's cores are not ours to choose."""
        return Placement()

    def pinned(self, command: list[str], placement: Placement) -> list[str]:
        """The command that runs `command` on the placement's run cores (local: taskset)."""
        return command

    def launcher(self, build: Build, program: Any, rendering: Rendering, want_output: bool = False,
                 reference: bool = False) -> Callable[[int], Measurement]:
        """`once(i)`: run the build once (launch i, one process) and parse what it reported.
        Only launch 0 returns the program's output bytes, when asked for."""
        measure = self.spec.measure
        env = {**measure.harness_env(), **rendering.env}
        if reference:
            env.update(TUNE_WARMUP="0", TUNE_MIN_REPS="1", TUNE_MAX_REPS="1")
        timeout = program.timeout_s or measure.timeout_s
        placement = self.placement(program, rendering)

        def once(i: int) -> Measurement:
            last: Completed | None = None
            for _ in range(1 + max(measure.retries, 0)):
                try:
                    deployed = self.deploy(build)
                except OSError as e:
                    last = Completed(None, "", "", 0.0, transport_error=f"deploy failed: {e}")
                    continue
                command = self.pinned([*deployed.command, *program.args, *rendering.args], placement)
                last = self.execute(command, env, timeout, want_output and i == 0)
                if not last.transport_error:
                    break
            assert last is not None
            m = self.parse(last, timeout)
            metrics = dict(m.metrics)
            metrics.setdefault("build_s", build.build_s)
            if build.binary_bytes is not None:
                metrics.setdefault("binary_bytes", float(build.binary_bytes))
            return replace(m, metrics=metrics)

        return once

    def run(self, build: Build, program: Any, rendering: Rendering, want_output: bool = False,
            reference: bool = False, race: SeriesRace | None = None) -> Measurement:
        """Measure a build: a series of launches (tuner.measure.launches) under the target's
        [measure] policy, with the environment recorded. `race` may stop the series early.
        A reference run (for verification) is one launch of one repetition."""
        once = self.launcher(build, program, rendering, want_output, reference)
        policy = LaunchPolicy(1, 1) if reference else self.spec.measure.launch_policy()
        if not self.runs_here:
            m = launch_series(once, policy, race)
            return replace(m, environment={**machine(), "runs_on": "remote"})
        if not self.spec.measure.noisy:     # a deterministic figure: what else ran cannot change it
            m = launch_series(once, policy, race)
            return replace(m, environment={**machine(), "watched": False})
        with Watch(self.placement(program, rendering), self.spec.measure.contention) as watch:
            m = launch_series(once, policy, race)
        return replace(m, environment=watch.record)

    def parse(self, done: Completed, timeout_s: float) -> Measurement:
        """Turn a finished process into a Measurement (the @tune protocol)."""
        wall = {"wall_s": done.wall_s}
        if done.transport_error:
            return Measurement.failed(FailureReason.TRANSPORT, done.transport_error, **wall)
        if done.timed_out:
            return Measurement.failed(FailureReason.TIMEOUT, f"no result after {timeout_s:g}s\n{tail(done.stderr)}", **wall)
        if done.returncode != 0:
            rc = done.returncode
            what = f"killed by {signal.Signals(-rc).name}" if rc is not None and rc < 0 else f"exit status {rc}"
            return Measurement.failed(FailureReason.CRASH, f"{what}\n{tail(done.stderr)}", **wall)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith(TUNE_LINE)]
        if not lines:
            return Measurement.failed(FailureReason.BAD_OUTPUT, f"no '@tune' line on stdout\n{tail(done.stdout)}", **wall)
        try:
            report = json.loads(lines[-1][len(TUNE_LINE):])
        except json.JSONDecodeError as e:
            return Measurement.failed(FailureReason.BAD_OUTPUT, f"bad @tune line: {e}", **wall)
        if "infeasible" in report:
            return Measurement.failed(FailureReason.INFEASIBLE, str(report["infeasible"]), **wall)
        metrics: dict[str, float] = {k: float(v) for k, v in report.get("metrics", {}).items()
                                     if isinstance(v, (int, float))}
        if "wrong_output" in report:
            return Measurement.failed(FailureReason.WRONG_OUTPUT, str(report["wrong_output"]), **metrics, **wall)
        samples = tuple(float(s) for s in report.get("samples_ms", ()))
        cpu = tuple(float(s) for s in report.get("cpu_ms", ()))
        if samples:
            med, lo, hi = median_ci(samples)
            metrics.setdefault("latency_ms", med)
            metrics.update(latency_ci_low_ms=lo, latency_ci_high_ms=hi, reps=float(len(samples)))
        if cpu and len(cpu) == len(samples) and sum(samples) > 0:
            metrics["cpu_ms"] = float(statistics.median(cpu))
            metrics["cpu_wall_ratio"] = sum(cpu) / sum(samples)    # < 1: off its core; > 1: threads
        ctx = report.get("ctxsw")
        if isinstance(ctx, list) and len(ctx) == 2:
            metrics["preempted"] = float(ctx[1])
        if metrics.get("items", 0) > 0 and metrics.get("latency_ms", 0) > 0:
            # a kernel call processes `items` in batches of `batch`: derive the per-item figures
            derived = derive_rates({k: metrics[k] for k in ("latency_ms", "items", "batch") if k in metrics})
            for key in ("throughput", "batch_latency_ms"):
                if key in derived:
                    metrics.setdefault(key, derived[key])
        metrics.update(wall)
        if any(math.isnan(v) for v in metrics.values()):
            return Measurement.failed(FailureReason.BAD_OUTPUT, "a metric is NaN", **wall)
        return Measurement(metrics=metrics, samples_ms=samples, checksum=report.get("checksum"),
                           output=done.output, cpu_ms=cpu if len(cpu) == len(samples) else ())

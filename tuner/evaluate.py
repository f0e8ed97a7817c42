"""One configuration, end to end: constraints, build, run, verify, objective values.

Shared by `tune measure` (one configuration) and the campaign loop (many). A configuration
whose output differs from the reference build's is a failed trial, never a fast one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tuner import faultpoint
from tuner.errors import MachineFault, machine_fault
from tuner.measure import launches
from tuner.measure.launches import SeriesRace
from tuner.records import Build, FailureReason, Measurement, Rendering
from tuner.space import Config
from tuner.study import StudySpec
from tuner.targets import Target


@dataclass(frozen=True)
class Outcome:
    config: Config
    measurement: Measurement
    values: dict[str, float] | None = None          # objective name -> value, when ok
    violated: tuple[str, ...] = ()                   # constraints broken (nothing was built)
    build_key: str = ""
    timing: dict[str, float] = field(default_factory=dict)   # build_s, run_s, total_s
    extra: dict[str, Any] = field(default_factory=dict)      # stored with the trial (surrogate predictions)
    same_as: int | None = None                               # built the program this trial measured: not run

    @property
    def ok(self) -> bool:
        return self.values is not None and self.measurement.ok

    @property
    def reason(self) -> FailureReason | None:
        return self.measurement.reason


def bind_target(study: StudySpec, target: Target) -> None:
    """The constants a space takes from its target (`cores`), before anything is checked or
    sampled: conditions and constraints may use them. The one place that sets them."""
    study.space.constants["cores"] = target.cores()


class Evaluator:
    def __init__(self, study: StudySpec, target: Target, results_dir: Path) -> None:
        self.study = study
        self.target = target
        self.space = study.space
        bind_target(study, target)
        self._ref_file = results_dir / "references.json"
        self._refs: dict[str, dict[str, Any]] = self._load_refs()
        # the run's provenance record (tuner.provenance.run_provenance), set by whoever stores
        # it; when set, every built trial carries its own small provenance in Outcome.extra
        self.provenance: dict[str, Any] | None = None
        # program key -> the trial that measured that program, if any (the campaign's history):
        # a configuration that builds a program already measured is not run again
        self.measured_program: Callable[[str], int | None] = lambda key: None

    def _load_refs(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads(self._ref_file.read_text())
        except (OSError, ValueError):
            return {}

    def evaluate(self, config: Config, race: SeriesRace | None = None) -> Outcome:
        """Build, run (a launch series; `race` may stop it early, see tuner.measure), verify."""
        t0 = time.perf_counter()
        violated = tuple(self.space.violations(config))
        if violated:
            m = Measurement.failed(FailureReason.INFEASIBLE, "violates " + "; ".join(violated))
            return Outcome(config, m, violated=violated, timing={"total_s": time.perf_counter() - t0})
        rendering = self.space.render(config)
        verify = self.study.program.verify
        built = self.target.build(self.study.program, rendering)
        faultpoint.hit("built")
        if isinstance(built, Measurement):
            return Outcome(config, built, timing={"build_s": built.metrics.get("build_s", 0.0),
                                                  "total_s": time.perf_counter() - t0})
        program_key = self.program_key(built, rendering)
        same_as = self.measured_program(program_key) if program_key else None
        if same_as is not None:
            return Outcome(config, Measurement(detail=f"builds the program trial {same_as} measured"),
                           build_key=built.key, extra={"program_key": program_key}, same_as=same_as,
                           timing={"build_s": built.build_s, "total_s": time.perf_counter() - t0})
        t_run = time.perf_counter()
        kwargs = {"race": race} if race is not None else {}
        m = self.target.run(built, self.study.program, rendering, want_output=verify.mode == "rtol", **kwargs)
        run_s = time.perf_counter() - t_run
        faultpoint.hit("ran")
        if m.ok and verify.mode != "none":
            m = self._verify(m, built, rendering)
        values = None
        if m.ok:
            values = {}
            for obj in self.study.objectives:
                v = obj.value(m.metrics)
                if v is None:
                    m = replace(m, output=None, reason=FailureReason.BAD_OUTPUT,
                                detail=f"the run reported no metric '{obj.metric}' for objective '{obj.name}'")
                    values = None
                    break
                values[obj.name] = v
        timing = {"build_s": built.build_s, "run_s": run_s, "total_s": time.perf_counter() - t0}
        # the launches (raw samples per process) and the environment go with the trial record
        extra: dict[str, Any] = {"measurement": launches.record(m), "environment": dict(m.environment)}
        if program_key:
            extra["program_key"] = program_key
        if self.provenance is not None:
            from tuner.provenance import trial_provenance
            extra["provenance"] = trial_provenance(self.provenance, self.target, self.study.program,
                                                   rendering, built)
        return Outcome(config, m, values, (), built.key, timing, extra)

    def program_key(self, built: Build, rendering: Rendering) -> str:
        """What runs, as a content address: the built bytes with the run's arguments and
        environment ("" when the target cannot hash its build). Why: in wide flag spaces many
        configurations build the very same binary (on conv2d-gcc, -mprefer-vector-width=256
        without an -march that has AVX, and most single-param mutations of -O3); measuring it
        again costs launches and confirmations and, at a 95% level, reads noise as a speed-up
        once in twenty (session 10: such a copy of -O3 was confirmed at 1.024x)."""
        return self._run_key(built.artifact, rendering, 24) if built.artifact else ""

    def _run_key(self, what: str, rendering: Rendering, length: int) -> str:
        """`what` (a build key, the built bytes' hash) with the run's arguments and environment."""
        text = json.dumps([what, list(self.study.program.args), list(rendering.args),
                           sorted(rendering.env.items())])
        return hashlib.sha256(text.encode()).hexdigest()[:length]

    # --- verification against a reference build of the same semantics ------------------
    def _ref_key(self, ref: Build, rendering: Rendering) -> str:
        return self._run_key(ref.key, rendering, 20)

    def reference(self, rendering: Rendering) -> dict[str, Any] | Measurement:
        """The reference result for this configuration's semantics, built once and remembered."""
        built = self.target.build(self.study.program, rendering, reference=True)
        if isinstance(built, Measurement):
            return Measurement.failed(built.reason or FailureReason.COMPILE_ERROR,
                                      "reference build failed: " + built.detail)
        key = self._ref_key(built, rendering)
        if key in self._refs:
            return self._refs[key]
        want = self.study.program.verify.mode == "rtol"
        m = self.target.run(built, self.study.program, rendering, want_output=want, reference=True)
        if not m.ok:
            return Measurement.failed(m.reason or FailureReason.CRASH, "reference run failed: " + m.detail)
        entry: dict[str, Any] = {"checksum": m.checksum}
        tmp = self._ref_file.with_suffix(f".{os.getpid()}.tmp")    # workers may write at once
        try:
            if want and m.output is not None:
                out = self._ref_file.parent / "references" / f"{key}.bin"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(m.output)
                entry["output"] = str(out)
            self._refs[key] = entry
            self._ref_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self._refs, indent=1))
            tmp.replace(self._ref_file)
        except OSError as e:     # a full disk: the machine's fault, not the configuration's
            raise (machine_fault(e, self._ref_file)
                   or MachineFault(f"cannot write it: {e.strerror}", e.filename or self._ref_file)) from None
        return entry

    def _verify(self, m: Measurement, built: Build, rendering: Rendering) -> Measurement:
        ref = self.reference(rendering)
        if isinstance(ref, Measurement):
            return replace(m, output=None, reason=ref.reason, detail=ref.detail)
        verify = self.study.program.verify
        if verify.mode == "exact":
            # every launch's output, not only the first: a program may differ from one process to the next
            sums = [x.checksum for x in m.launches] or [m.checksum]
            bad = next((c for c in sums if c != ref["checksum"]), None)
            if bad is not None or m.checksum != ref["checksum"]:
                which = "" if len(sums) < 2 else f" (launch {sums.index(bad) + 1} of {len(sums)})"
                return replace(m, output=None, reason=FailureReason.WRONG_OUTPUT,
                               detail=f"checksum {bad or m.checksum} != reference {ref['checksum']}{which}")
            return replace(m, output=None)
        # rtol: compare raw float32 outputs numerically (the first launch's)
        if m.output is None or "output" not in ref:
            return replace(m, output=None, reason=FailureReason.BAD_OUTPUT,
                           detail="no output file to verify (TUNE_OUTPUT)")
        got = np.frombuffer(m.output, dtype=np.float32)
        want = np.frombuffer(Path(ref["output"]).read_bytes(), dtype=np.float32)
        if got.shape != want.shape or not np.allclose(got, want, rtol=verify.rtol, atol=verify.atol):
            err = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
            return replace(m, output=None, reason=FailureReason.WRONG_OUTPUT,
                           detail=f"output differs from reference (max abs error {err:.3g}, rtol {verify.rtol:g})")
        return replace(m, output=None)


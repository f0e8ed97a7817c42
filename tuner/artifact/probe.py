"""Re-measuring configurations for `tune reproduce` and `tune reduce`, through the
measurement module (tuner.measure): one narrow seam, so those two only reason about values.

`measure(config)` is a full measurement (`Evaluator.evaluate`: build, a series of launches,
output verified against the reference): each objective's value and, when the measurement has
one, its 95% interval across launches (a deterministic objective has none). `compare(a, b)`
is the paired, interleaved comparison (ABBA, `tuner.measure.compare_builds`) of two
configurations: for the timed objective (latency_ms) the ratio a/b with its 95% interval; on a
deterministic target, or for other objectives, there is nothing to pair and it returns {}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from tuner.artifact.table import ci_of

Interval3 = tuple[float, float, float]          # (value, low, high)
# metrics that move with the machine's timing noise (the latency and what is derived from it)
TIMED = frozenset({"latency_ms", "throughput", "batch_latency_ms", "gflops", "wall_s"})


@dataclass
class Measured:
    values: dict[str, float] | None                 # None: the build, run or verification failed
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    detail: str = ""
    noisy: frozenset[str] = frozenset()             # objectives that vary between launches

    @property
    def why(self) -> str:
        """Why it failed, in one line."""
        return self.detail.splitlines()[0] if self.detail else "no values"


class Probe:
    def __init__(self, spec: Any, target: Any, evaluator: Any, pairs: int | None = None) -> None:
        self.spec = spec
        self.target = target
        self.evaluator = evaluator
        self.pairs = pairs
        self.deterministic = not getattr(target.spec.measure, "noisy", target.spec.measure.method == "wall")
        self.launches = 0

    def measure(self, config: Mapping[str, Any]) -> Measured:
        outcome = self.evaluator.evaluate(dict(config))
        self.launches += int(outcome.measurement.metrics.get("launches", 1))
        if not outcome.ok:
            return Measured(None, detail=f"{outcome.reason}: {outcome.measurement.detail[-300:]}")
        view = _View(outcome.measurement.metrics)
        # an interval of launches that all gave one figure is [v, v]: still an interval (noisy, not exact)
        ci = {o.name: c for o in self.spec.objectives if (c := ci_of(view, o)) is not None and c[1] >= c[0]}
        noisy = frozenset() if self.deterministic else frozenset(
            o.name for o in self.spec.objectives if o.metric in TIMED or o.name in ci)
        return Measured(dict(outcome.values or {}), ci, noisy=noisy)

    def compare(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Interval3]:
        timed = [o for o in self.spec.objectives if o.metric == "latency_ms"]
        if self.deterministic or not timed:
            return {}
        from tuner.measure import PairPolicy, compare_builds

        program = self.spec.program
        builds = []
        for cfg in (a, b):
            rendering = self.spec.space.render(dict(cfg))
            built = self.target.build(program, rendering)
            if not hasattr(built, "key"):            # a failed build is a Measurement
                return {}
            builds.append((built, rendering))
        policy = None
        if self.pairs:
            base = self.target.spec.measure.pair_policy()
            policy = PairPolicy(self.pairs, self.pairs, base.ci_rel, contention=base.contention,
                                exclude_contended=base.exclude_contended)
        c = compare_builds(self.target, program, builds[0], builds[1], policy=policy)
        self.launches += len(c.a) + len(c.b)
        if not c.ok or not math.isfinite(c.ratio.value):
            return {}
        return {o.name: (c.ratio.value, c.ratio.low, c.ratio.high) for o in timed}


def ratios(probe: Probe, objectives: Any, cand: Mapping[str, Any], cand_values: Mapping[str, float],
           ref: Mapping[str, Any], ref_values: Mapping[str, float]) -> dict[str, Interval3 | None]:
    """Each objective of `cand` over `ref`'s (value, low, high): the timed one from ABBA pairs
    of fresh processes (`Probe.compare`), others from the two measurements' values (exact when
    deterministic); None where there is nothing to divide. What `tune reduce` and
    `tune measure --against` both print, so a ratio means the same in both."""
    paired = probe.compare(cand, ref)
    out: dict[str, Interval3 | None] = {}
    for o in objectives:
        if o.name in paired:
            out[o.name] = paired[o.name]
            continue
        new, old = cand_values.get(o.name), ref_values.get(o.name)
        if new is None or not old:
            out[o.name] = None if new is None else ((1.0, 1.0, 1.0) if new == old else None)
            continue
        out[o.name] = (new / old, new / old, new / old)
    return out


def measure_against(probe: Probe, space: Any, objectives: Any, cand: Mapping[str, Any],
                    reference: Mapping[str, Any], cand_values: Mapping[str, float] | None = None) -> dict[str, Any]:
    """`cand` against `reference` (completed with defaults): {"ratios", "why"}. The reference is
    measured first, then the candidate unless its values are given. `tune reduce`'s last line
    and `tune measure --against`."""
    ref = space.complete(dict(reference))
    ref_m = probe.measure(ref)
    if ref_m.values is None:
        return {"ratios": {}, "why": f"the reference failed ({ref_m.why})"}
    if cand_values is None:
        m = probe.measure(cand)
        if m.values is None:
            return {"ratios": {}, "why": f"failed ({m.why})"}
        cand_values = m.values
    found = ratios(probe, objectives, cand, cand_values, ref, ref_m.values)
    return {"ratios": {k: None if r is None else list(r) for k, r in found.items()}, "why": ""}


class _View:
    """A measurement's metrics seen as a record, for `ci_of`."""

    def __init__(self, metrics: Mapping[str, float]) -> None:
        self.metrics = dict(metrics)

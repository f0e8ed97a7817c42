"""Delta debugging of a configuration (`tune reduce`): the smallest set of non-default knobs
that keeps every objective within a tolerance of the point, every step confirmed by
measurement.

The changes are the point's knobs away from their defaults; a candidate keeps a subset of
them and puts the rest back to their defaults (`SearchSpace.complete`, so conditional knobs
follow). ddmin (Zeller and Hildebrandt, TSE 2002) tests subsets and complements with a
growing granularity and ends 1-minimal: putting back any one kept knob to its default breaks
the tolerance. A test measures the candidate (its output verified) and, for the timed
objective, compares it with the point itself in ABBA pairs (tuner.measure), so drift cancels;
it passes when, for every objective, the candidate is worse than the point by at most
`tolerance` (relative: the paired ratio's estimate, or the ratio of the measured values for an
objective without pairs, e.g. a code size or a simulator's figure). A failed build or run, a
wrong output or a violated constraint fails the test. Results go into the study (a user attribute
per trial), so `tune export` shows the point as its reduced set.

Last, the reduced set is measured against a reference (the study's baseline, else the knobs'
defaults) the same way: what the kept knobs are worth. A point that shrinks to a knob or two can
owe most of its recorded gain to a lucky moment or to code layout, and only this says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from tuner.artifact.probe import Probe, measure_against, ratios

REDUCED_PREFIX = "tune.reduce."
SCHEMA = "tune.reduce/1"


@dataclass
class Test:
    kept: tuple[str, ...]
    passed: bool
    ratios: dict[str, list[float] | None] = field(default_factory=dict)   # objective -> [est, lo, hi]
    why: str = ""


class Reducer:
    """ddmin over the point's non-default knobs; `measure(config)` is one launch."""

    def __init__(self, space: Any, objectives: Sequence[Any], point: Mapping[str, Any], probe: Probe, *,
                 tolerance: float, max_tests: int = 200, log: Callable[[str], None] = lambda m: None) -> None:
        self.space = space
        self.objectives = list(objectives)
        self.point = dict(point)
        self.probe = probe
        self.tolerance = tolerance
        self._point_values: dict[str, float] | None = None
        self.max_tests = max_tests
        self.log = log
        defaults = space.complete({})
        self.changes = [k for k, v in self.point.items() if k in space.knobs and defaults.get(k, object()) != v]
        self.tests: dict[frozenset[str], Test] = {}

    def config(self, kept: Sequence[str]) -> dict[str, Any]:
        return self.space.complete({k: self.point[k] for k in kept})

    def test(self, kept: Sequence[str]) -> bool:
        key = frozenset(kept)
        if key in self.tests:
            return self.tests[key].passed
        if len(self.tests) >= self.max_tests:
            return False
        cand = self.config(kept)
        violated = self.space.violations(cand)
        if violated:
            t = Test(tuple(kept), False, why="violates " + "; ".join(violated))
        else:
            t = self._measure(tuple(kept), cand)
            for o in self.objectives:
                r = t.ratios.get(o.name)
                if r is None:
                    t.passed, t.why = False, t.why or f"no {o.name} ratio"
                    continue
                worse = r[0] - 1 if o.direction == "minimize" else 1 - r[0]
                if worse > self.tolerance:
                    t.passed = False
                    t.why = t.why or f"{o.name} {worse:+.1%} worse than the point (ratio {r[0]:.4g})"
        self.tests[key] = t
        self.log(f"  test {len(self.tests)}: keep {len(kept)} of {len(self.changes)} -> "
                 + ("pass" if t.passed else f"fail ({t.why})"))
        return t.passed

    def _measure(self, kept: tuple[str, ...], cand: Mapping[str, Any]) -> Test:
        """The candidate's ratios to the point: paired for the timed objective, else of values."""
        if self._point_values is None:
            self._point_values = self.probe.measure(self.point).values or {}
        m = self.probe.measure(cand)
        if m.values is None:
            return Test(kept, False, why=f"failed ({m.why})")
        t = Test(kept, True)
        for name, r in ratios(self.probe, self.objectives, cand, m.values, self.point, self._point_values).items():
            t.ratios[name] = None if r is None else list(r)
        return t

    def against(self, kept: Sequence[str], reference: Mapping[str, Any]) -> dict[str, Any]:
        """The kept knobs measured against `reference` (a whole configuration): their worth."""
        return measure_against(self.probe, self.space, self.objectives, self.config(kept), reference)

    def run(self) -> dict[str, Any]:
        """ddmin; returns the `tune.reduce/1` document (reduced set, the steps that justify it)."""
        current = list(self.changes)
        steps: list[dict[str, Any]] = []
        if current and self.test([]):                      # the defaults alone may do
            steps.append(self._step(current, []))
            current = []
        n = 2
        while len(current) >= 2 and len(self.tests) < self.max_tests:
            chunks = [current[i * len(current) // n:(i + 1) * len(current) // n] for i in range(n)]
            chunks = [c for c in chunks if c]
            reduced = False
            for c in chunks:                                 # reduce to a subset
                if len(c) < len(current) and self.test(c):
                    steps.append(self._step(current, c))
                    current, n, reduced = c, 2, True
                    break
            if not reduced:
                for c in chunks:                             # reduce to a complement
                    comp = [k for k in current if k not in c]
                    if n > 2 and comp and self.test(comp):
                        steps.append(self._step(current, comp))
                        current, n, reduced = comp, max(n - 1, 2), True
                        break
            if not reduced:
                if n >= len(current):
                    break
                n = min(len(current), 2 * n)
        if len(current) == 1 and self.test([]):              # one left: is even that one needed?
            steps.append(self._step(current, []))
            current = []
        return {"schema": SCHEMA, "tolerance": self.tolerance, "launches": self.probe.launches,
                "changes": len(self.changes), "tests": len(self.tests),
                "exhausted": len(self.tests) >= self.max_tests,
                "reduced": {k: self.point[k] for k in current},
                "steps": steps,
                "log": [{"kept": list(t.kept), "passed": t.passed, "ratios": t.ratios, "why": t.why}
                        for t in self.tests.values()]}

    def _step(self, before: Sequence[str], after: Sequence[str]) -> dict[str, Any]:
        t = self.tests[frozenset(after)]
        removed = [k for k in before if k not in after]
        return {"removed": {k: self.point[k] for k in removed}, "kept": len(after), "ratios": t.ratios}


def store_reduction(study: Any, trial: int, doc: dict[str, Any]) -> None:
    study.set_user_attr(f"{REDUCED_PREFIX}{trial}", {k: v for k, v in doc.items() if k != "log"})


def load_reductions(study: Any) -> dict[int, dict[str, Any]]:
    """trial number -> its reduced knob set (knob -> value), from `tune reduce`."""
    out = {}
    for k, v in study.user_attrs.items():
        if k.startswith(REDUCED_PREFIX) and isinstance(v, dict) and isinstance(v.get("reduced"), dict):
            try:
                out[int(k[len(REDUCED_PREFIX):])] = v["reduced"]
            except ValueError:
                continue
    return out

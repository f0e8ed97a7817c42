"""Paired, interleaved launches of two configurations (ABBA), and the ratio with its 95% CI.

A stand-in for the measurement module's paired comparison (issue #9) until it lands: one
launch is one `Evaluator.evaluate` (a fresh process; the harness repeats the kernel inside
it), launches alternate A B B A so that drift hits both alike, and the ratio of A to B is the
geometric mean of the per-pair ratios with a t-interval on their logarithms. Deterministic
objectives (every launch gives the same value) get a zero-width interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
from scipy import stats

Launch = Callable[[], Mapping[str, float] | None]     # one launch: objective values, or None on failure


@dataclass
class Paired:
    a: dict[str, list[float]] = field(default_factory=dict)      # objective -> value per launch
    b: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def ratio(self, name: str) -> tuple[float, float, float] | None:
        """(A/B, low, high) over the pairs (launch i of A with launch i of B)."""
        a, b = self.a.get(name, []), self.b.get(name, [])
        pairs = list(zip(a, b))
        if not pairs or any(y == 0 for _, y in pairs):
            return None
        if any(x <= 0 or y <= 0 for x, y in pairs):    # no logarithm: the range of the ratios
            r = [x / y for x, y in pairs]
            return float(np.median(r)), min(r), max(r)
        logs = np.array([math.log(x / y) for x, y in pairs])
        mean = float(logs.mean())
        if len(logs) < 2 or float(logs.std(ddof=1)) == 0.0:
            return math.exp(mean), math.exp(mean), math.exp(mean)
        half = float(stats.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / math.sqrt(len(logs)))
        return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def summary(values: list[float]) -> tuple[float, float, float] | None:
    """(median, low, high): the 95% CI of the median across launches (zero width when all agree)."""
    if not values:
        return None
    from tuner.stats import median_ci
    med, lo, hi = median_ci(values)
    if len(values) < 3:
        lo, hi = min(values), max(values)
    return med, lo, hi


def abba(a: Launch, b: Launch, pairs: int) -> Paired:
    """`pairs` pairs of launches in the order A B B A A B B A ..."""
    out = Paired()
    order = []
    for i in range(pairs):
        order += ["a", "b"] if i % 2 == 0 else ["b", "a"]
    for which in order:
        values = (a if which == "a" else b)()
        if values is None:
            out.failures.append(which)
            continue
        into = out.a if which == "a" else out.b
        for k, v in values.items():
            into.setdefault(k, []).append(float(v))
    return out

"""Robust summaries of timings: medians and their distribution-free confidence intervals.

Two levels. Inside one process the harness repeats the kernel and `median_ci` summarises the
repetitions (the same rank rule the C harness uses to stop). Across processes, which is where
timings on a shared machine really vary (a binary's time is bimodal from one launch to the
next, while repetitions inside a launch agree), `median_interval` summarises the per-launch
medians, and `ratio_interval` summarises paired launches of two builds.

Why order statistics and not a t-interval: launch medians are a mixture of modes (28 ms and
56 ms on one machine), nowhere near normal, and there are few of them (3 to 20). The interval
between the k-th smallest and k-th largest of n values covers the true median with probability
1 - 2 * P(Binomial(n, 1/2) < k), whatever the distribution; we pick the narrowest such k and
report the coverage actually achieved. With fewer than 6 values no pair of order statistics
reaches 95% (n = 5: the range covers 93.75%), so a small sample's interval is its range and
says so through `coverage`, and a stopping rule that asks for 95% keeps launching.

For a ratio of two builds, the per-pair log-ratio log(a_i / b_i) of launches taken back to back
(in ABBA order) is symmetric about the true log-ratio when the machine's modes hit both builds
alike, so its median with the same sign-test interval is a distribution-free estimate; the
exponentiated bounds are the ratio's interval.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as _st


def median_ci(samples: Sequence[float], z: float = 1.96) -> tuple[float, float, float]:
    """(median, low, high) of repetitions inside one process: the order-statistic CI with ranks
    n/2 -+ z*sqrt(n)/2 (the binomial's normal approximation), the same rule the C harness uses
    to decide when to stop repeating."""
    s = np.sort(np.asarray(samples, dtype=float))
    n = len(s)
    if n == 0:
        return math.nan, math.nan, math.nan
    med = float(np.median(s))
    half = z / 2 * math.sqrt(n)
    lo = max(int(math.floor(n / 2 - half)), 0)
    hi = min(int(math.ceil(n / 2 + half)), n - 1)
    return med, float(s[lo]), float(s[hi])


@dataclass(frozen=True)
class Interval:
    """A point estimate with an interval and the probability that the interval covers the truth."""

    value: float
    low: float
    high: float
    n: int
    coverage: float            # achieved coverage of [low, high] (>= the level asked when n allows)
    level: float = 0.95        # the coverage asked for

    @property
    def confident(self) -> bool:
        """Whether the interval reaches the asked level (False for too few values)."""
        return self.n > 0 and self.coverage >= self.level

    @property
    def rel_width(self) -> float:
        """(high - low) / value; infinite without a positive value."""
        if not self.value or not math.isfinite(self.value) or self.value <= 0:
            return math.inf
        return (self.high - self.low) / self.value

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n,
                "coverage": round(self.coverage, 6), "level": self.level}


@functools.lru_cache(maxsize=256)
def order_ranks(n: int, level: float = 0.95) -> tuple[int, int, float]:
    """0-based ranks (lo, hi) of the narrowest symmetric order-statistic interval for the median
    of n values, and its exact coverage. When no interval reaches `level`, the full range."""
    if n <= 0:
        return 0, -1, 0.0
    best = (0, n - 1, 1.0 - 2.0 * 0.5 ** n)
    for k in range(1, n // 2 + 1):           # interval [x_(k), x_(n-k+1)] in 1-based ranks
        coverage = 1.0 - 2.0 * float(_st.binom.cdf(k - 1, n, 0.5))
        if coverage < level:
            break
        best = (k - 1, n - k, coverage)
    return best


def median_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """The median of `values` (e.g. per-launch medians) with its distribution-free interval."""
    v = np.sort(np.asarray([x for x in values if math.isfinite(x)], dtype=float))
    n = len(v)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, 0.0, level)
    lo, hi, coverage = order_ranks(n, level)
    return Interval(float(np.median(v)), float(v[lo]), float(v[hi]), n, coverage, level)


def ratio_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Interval:
    """The ratio a/b from paired values (a_i, b_i): the median of log(a_i/b_i) and its sign-test
    interval, exponentiated. Pairs where either value is not positive and finite are dropped."""
    logs = [math.log(x / y) for x, y in zip(a, b)
            if math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0]
    iv = median_interval(logs, level)
    if iv.n == 0:
        return iv
    return Interval(math.exp(iv.value), math.exp(iv.low), math.exp(iv.high), iv.n, iv.coverage, level)


def min_values_for(level: float = 0.95) -> int:
    """The fewest values whose full range covers the median with probability `level`."""
    n = 1
    while 1.0 - 2.0 * 0.5 ** n < level:
        n += 1
    return n

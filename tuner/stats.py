"""Robust summaries of repeated timings: the median and its distribution-free 95% CI."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def median_ci(samples: Sequence[float], z: float = 1.96) -> tuple[float, float, float]:
    """(median, low, high): order-statistic CI of the median, valid without normality.

    Uses ranks n/2 -+ z*sqrt(n)/2 (the binomial approximation), the same rule the C harness
    uses to decide when to stop repeating.
    """
    s = np.sort(np.asarray(samples, dtype=float))
    n = len(s)
    if n == 0:
        return math.nan, math.nan, math.nan
    med = float(np.median(s))
    half = z / 2 * math.sqrt(n)
    lo = max(int(math.floor(n / 2 - half)), 0)
    hi = min(int(math.ceil(n / 2 + half)), n - 1)
    return med, float(s[lo]), float(s[hi])

"""Which objectives a timing moves, and whether a candidate can still enter the front.

Racing and confirmation ask one question of a candidate measured so far: with its time at
some figure, would it be non-dominated by the (confirmed) front? Objectives whose metric is
a time (latency_ms, batch_latency_ms) scale with the candidate's time; rates (gflops,
throughput) scale with its inverse; the others (code size, accuracy, model bytes) do not
depend on the timing at all and are known from any launch. So the question reduces to one
number per candidate: the largest factor `f` by which its timed objectives may worsen (time
multiplied by `f`) before some front point dominates it (`entry_factor`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

# metric -> +1 (a time: grows with the run time) or -1 (a rate: shrinks with it)
TIMED: dict[str, int] = {"latency_ms": +1, "batch_latency_ms": +1, "gflops": -1, "throughput": -1}


def timed(objective: Any) -> int:
    """+1, -1 or 0: how the objective's metric follows the run time."""
    return TIMED.get(getattr(objective, "metric", ""), 0)


def scaled(values: Mapping[str, float], objectives: Sequence[Any], factor: float) -> dict[str, float]:
    """The objective values if the run time were multiplied by `factor`."""
    out = dict(values)
    for o in objectives:
        s = timed(o)
        if s and o.name in out:
            out[o.name] = out[o.name] * factor ** s
    return out


def _better(o: Any, a: float, b: float) -> bool:
    return a < b if o.direction == "minimize" else a > b


def dominates(p: Mapping[str, float], c: Mapping[str, float], objectives: Sequence[Any]) -> bool:
    """p at least as good as c on every objective and better on one."""
    if any(_better(o, c[o.name], p[o.name]) for o in objectives):
        return False
    return any(_better(o, p[o.name], c[o.name]) for o in objectives)


def entry_factor(candidate: Mapping[str, float], front: Sequence[Mapping[str, float]],
                 objectives: Sequence[Any]) -> float:
    """The largest factor on the candidate's run time at which no front point dominates it
    (inf: none can, whatever its time; below 1: dominated already at these values).

    A front point p dominates the candidate slowed by f when p is at least as good on every
    untimed objective and f is at least p's break-even on every timed one (with one strict
    somewhere, ignored here: ties are rare with timings and err towards confirming)."""
    best = math.inf
    for p in front:
        if any(_better(o, candidate[o.name], p[o.name]) for o in objectives if not timed(o)):
            continue           # the candidate beats p on code size, accuracy...: p never dominates
        need = 0.0             # the slow-down from which p is at least as good on every timed one
        for o in objectives:
            if timed(o):
                need = max(need, _break_even(o, candidate[o.name], p[o.name]))
        best = min(best, need)
    return best


def _break_even(o: Any, c: float, v: float) -> float:
    """The factor f on the run time from which the candidate's value c (c * f**s at factor f) is
    no better than v: v/c for a minimised time, c/v for a maximised rate; inf when slowing down
    cannot make it worse (a minimised rate, a maximised time) or a value is not positive."""
    s = timed(o)
    if c <= 0 or v <= 0:
        return math.inf
    if o.direction == "minimize" and s > 0:
        return v / c
    if o.direction == "maximize" and s < 0:
        return c / v
    return math.inf


def would_enter(candidate: Mapping[str, float], front: Sequence[Mapping[str, float]],
                objectives: Sequence[Any]) -> bool:
    """Non-dominated by the front as it stands (so it would enter it, or improve a best value)."""
    return not any(dominates(p, candidate, objectives) for p in front)


def front_of(points: Sequence[Mapping[str, float]], objectives: Sequence[Any]) -> list[Mapping[str, float]]:
    """The non-dominated points among `points`."""
    return [c for c in points if not any(dominates(p, c, objectives) for p in points if p is not c)]

"""Front arithmetic for racing and confirmation: pure functions on objective values."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from tuner.measure.front import entry_factor, front_of, scaled, timed, would_enter


@dataclass(frozen=True)
class O:
    name: str
    direction: str
    metric: str


LAT = O("latency_ms", "minimize", "latency_ms")
SIZE = O("binary_bytes", "minimize", "binary_bytes")
GF = O("gflops", "maximize", "gflops")
ACC = O("accuracy", "maximize", "accuracy")
TPUT = O("throughput", "maximize", "throughput")
BLAT = O("batch_latency_ms", "minimize", "batch_latency_ms")


def test_which_objectives_follow_the_time():
    assert (timed(LAT), timed(GF), timed(SIZE), timed(ACC)) == (1, -1, 0, 0)
    assert scaled({"latency_ms": 10, "gflops": 4, "binary_bytes": 100}, [LAT, GF, SIZE], 2.0) == \
        {"latency_ms": 20, "gflops": 2, "binary_bytes": 100}


def test_single_objective_entry_factor_is_the_ratio_to_the_best():
    front = [{"latency_ms": 20.0}]
    assert entry_factor({"latency_ms": 16.0}, front, [LAT]) == pytest.approx(1.25)
    assert entry_factor({"latency_ms": 25.0}, front, [LAT]) == pytest.approx(0.8)     # dominated already
    assert entry_factor({"gflops": 10.0}, [{"gflops": 8.0}], [GF]) == pytest.approx(1.25)


def test_a_smaller_candidate_is_never_dominated_by_slowing_down():
    objs = [LAT, SIZE]
    front = [{"latency_ms": 10.0, "binary_bytes": 5000.0}, {"latency_ms": 30.0, "binary_bytes": 3000.0}]
    # smaller than every front point: no front point can ever dominate it
    assert entry_factor({"latency_ms": 50.0, "binary_bytes": 2000.0}, front, objs) == math.inf
    # between the two in size: only the 3000-byte point (30 ms) can dominate it
    c = {"latency_ms": 20.0, "binary_bytes": 4000.0}
    assert entry_factor(c, front, objs) == pytest.approx(1.5)
    assert would_enter(c, front, objs)
    assert not would_enter(scaled(c, objs, 1.6), front, objs)
    assert would_enter(scaled(c, objs, 1.4), front, objs)


def test_several_timed_objectives_take_the_largest_break_even():
    objs = [TPUT, BLAT]
    front = [{"throughput": 1000.0, "batch_latency_ms": 8.0}]
    c = {"throughput": 1250.0, "batch_latency_ms": 10.0}      # faster per item, slower per batch
    # slowed by f: throughput 1250/f, batch latency 10 f; dominated when 1250/f <= 1000 and 10 f >= 8
    assert entry_factor(c, front, objs) == pytest.approx(1.25)


def test_front_of_keeps_ties_and_drops_dominated():
    objs = [LAT, SIZE]
    pts = [{"latency_ms": 1.0, "binary_bytes": 3.0}, {"latency_ms": 2.0, "binary_bytes": 2.0},
           {"latency_ms": 2.0, "binary_bytes": 2.0}, {"latency_ms": 3.0, "binary_bytes": 3.0}]
    assert front_of(pts, objs) == pts[:3]


def test_the_best_printed_is_the_best_paired_speedup_not_the_best_told_value():
    """explore's 'best latency_ms vs baseline': among confirmed points, the best paired ratio
    (taken next to the baseline), even when the baseline's own told value, measured at a quieter
    moment, is lower; none above 1: the baseline itself; a better told value never confirmed:
    unconfirmed (no figure)."""
    from types import SimpleNamespace as NS

    from tuner.measure.summary import speedups
    from tuner.objectives import Objective

    lat = Objective("latency_ms", "minimize", "ms", "latency_ms")

    def rec(n, ms, sp=None, confirmed=True):
        conf = ({"confirmed": confirmed, "pairs": 16, "speedup": {"value": sp, "low": sp * 0.9, "high": sp * 1.1}}
                if sp is not None else None)
        return NS(number=n, values={"latency_ms": ms}, metrics={"latency_ms": ms},
                  measurement={"confirmation": conf} if conf else {})
    base = rec(0, 25.9)
    got = speedups([base, rec(1, 27.2, 1.225), rec(2, 35.2, 0.94), rec(3, 26.5, 1.1, confirmed=False)], base, [lat])
    assert got["latency_ms"]["kind"] == "paired" and got["latency_ms"]["trial"] == 1
    assert got["latency_ms"]["value"] == pytest.approx(1.225)
    got = speedups([base, rec(1, 24.0, 0.98), rec(2, 35.2, 0.94)], base, [lat])
    assert got["latency_ms"] == {"kind": "baseline", "trial": 0}
    got = speedups([base, rec(1, 20.0), rec(2, 35.2, 1.05)], base, [lat])      # trial 1 never confirmed
    assert got["latency_ms"]["kind"] == "paired" and got["latency_ms"]["trial"] == 2
    got = speedups([base, rec(1, 20.0)], base, [lat])
    assert got["latency_ms"] == {"kind": "unconfirmed", "trial": 1}


def test_a_paired_best_point_off_the_front_table_is_said_to_be():
    """The front's table holds told medians taken at different moments; on a drifting machine the
    point with the best paired ratio can be off it (seen in the quick start: trial 10 at 1.301x,
    the table's fastest trial 91 at 1.243x). The line says so rather than look like a slip."""
    from tuner.measure.summary import format_speedup

    s = {"kind": "paired", "trial": 10, "value": 1.301, "low": 1.112, "high": 1.565, "pairs": 16}
    assert "not in the table above" in format_speedup("latency_ms", s, [91, 8, 54])
    assert "not in the table above" not in format_speedup("latency_ms", s, [10, 91])
    assert format_speedup("latency_ms", s) == format_speedup("latency_ms", s, [10])


def test_a_best_point_whose_interval_reaches_one_is_printed_as_a_tie():
    """The quick start once printed "best latency_ms vs baseline: 1.164x [0.988, 1.321]": the best
    of several confirmed points, its interval reaching 1. The line says it is a tie."""
    from tuner.measure.summary import format_speedup

    tie = {"kind": "paired", "trial": 31, "value": 1.164, "low": 0.988, "high": 1.321, "pairs": 16}
    assert "a tie with the baseline, not shown faster beyond the noise" in format_speedup("latency_ms", tie)
    gain = dict(tie, low=1.112)
    assert "tie" not in format_speedup("latency_ms", gain)


def test_the_fastest_a_confirmation_must_beat_is_by_paired_speed_up_not_by_told_value():
    """A -O2 told 0.94 ms in a quiet minute (1.01x by its pairs) and a -O3 -march=native told
    0.95 ms in a busy one (1.27x by its pairs): the answer to beat is the 1.27x point, whatever
    the told medians say; unconfirmed or raced points do not count, and the baseline's 1 is the
    floor."""
    from types import SimpleNamespace

    from tuner.measure.confirm import Confirming

    def rec(told, speedup, confirmed=True):
        conf = {"confirmed": confirmed, "speedup": {"value": speedup, "low": speedup, "high": speedup}}
        return SimpleNamespace(values={"latency_ms": told}, measurement={"confirmation": conf})

    def fastest(*recs):
        return Confirming._fastest_ratio(SimpleNamespace(history=SimpleNamespace(complete=lambda: list(recs))))

    assert fastest(rec(0.94, 1.01), rec(0.95, 1.27)) == pytest.approx(1 / 1.27)
    assert fastest(rec(0.5, 3.0, confirmed=False), rec(0.95, 1.27)) == pytest.approx(1 / 1.27)
    assert fastest(rec(2.0, 0.5)) == 1.0
    assert fastest(SimpleNamespace(values={"latency_ms": 1.0}, measurement={})) == 1.0

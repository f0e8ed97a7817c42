"""The across-launch statistics, on synthetic samples (no timing, so nothing here is flaky).

Launch medians on a shared machine are a mixture of modes (bench/noise.py), so the intervals
are checked for coverage on such mixtures with fixed seeds, and the stopping rules of the
launch loop and the paired comparison are driven by scripted launches."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from tuner.measure.launches import LaunchPolicy, combine, launch_of, launch_series
from tuner.measure.paired import PairPolicy, admitted, cannot_beat, compare, decided, no_gain
from tuner.records import FailureReason, Measurement
from tuner.stats import median_interval, min_values_for, order_ranks, ratio_interval


# --- order statistics -----------------------------------------------------------------------
@pytest.mark.parametrize("n", range(1, 40))
def test_order_ranks_coverage_is_the_binomial_one(n):
    lo, hi, coverage = order_ranks(n, 0.95)
    k = lo + 1                                   # 1-based rank of the low end
    assert hi == n - k                           # symmetric
    assert coverage == pytest.approx(1 - 2 * st.binom.cdf(k - 1, n, 0.5))
    if n >= 6:
        assert coverage >= 0.95
        # the narrowest: one rank further in would fall under 95%
        if k + 1 <= n // 2:
            assert 1 - 2 * st.binom.cdf(k, n, 0.5) < 0.95
    else:
        assert (lo, hi) == (0, n - 1) and coverage < 0.95


def test_fewest_values_for_95_percent_is_six():
    assert min_values_for(0.95) == 6
    assert min_values_for(0.99) == 8
    assert not median_interval([1, 2, 3, 4, 5]).confident
    assert median_interval([1, 2, 3, 4, 5, 6]).confident


def test_median_interval_of_known_values():
    iv = median_interval([5.0, 1.0, 3.0, 2.0, 4.0, 6.0, 7.0, 100.0, 8.0, 9.0])
    assert iv.value == 5.5 and iv.n == 10
    assert (iv.low, iv.high) == (2.0, 9.0)       # ranks 2 and 9 of 10 (coverage 97.9%)
    assert iv.coverage == pytest.approx(0.978515625)
    assert median_interval([]).n == 0 and math.isnan(median_interval([]).value)
    assert median_interval([float("nan"), 2.0]).n == 1


def bimodal(rng, n, fast=28.0, slow=56.0, p_slow=0.3, spread=0.02):
    """Launch medians as seen across processes: two modes, a little noise inside each."""
    base = np.where(rng.random(n) < p_slow, slow, fast)
    return base * np.exp(rng.normal(0, spread, n))


@pytest.mark.parametrize("p_slow", [0.1, 0.3, 0.45])
@pytest.mark.parametrize("n", [6, 10, 15])
def test_median_interval_covers_the_median_of_a_bimodal_mixture(n, p_slow):
    rng = np.random.default_rng(1000 * n + int(100 * p_slow))
    truth = np.median(bimodal(np.random.default_rng(7), 400_000, p_slow=p_slow))
    covered = 0
    trials = 2000
    for _ in range(trials):
        iv = median_interval(bimodal(rng, n, p_slow=p_slow))
        covered += iv.low <= truth <= iv.high
    assert covered / trials >= 0.94              # 95% nominal, sampling error of 2000 draws


def test_ratio_interval_a_vs_a_covers_one():
    """Two identical builds whose launches land in random modes: the interval contains 1."""
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(2000):
        a, b = bimodal(rng, 15), bimodal(rng, 15)
        iv = ratio_interval(a, b)
        covered += iv.low <= 1.0 <= iv.high
    assert covered / 2000 >= 0.94


def test_ratio_interval_finds_a_real_speedup_through_the_modes():
    rng = np.random.default_rng(4)
    a, b = bimodal(rng, 16, fast=28 / 1.25, slow=56 / 1.25), bimodal(rng, 16)
    iv = ratio_interval(a, b)
    assert iv.low <= 0.8 <= iv.high and iv.high < 1.0     # a is 1.25x faster: ratio 0.8
    assert iv.n == 16


def test_ratio_interval_drops_unusable_pairs():
    iv = ratio_interval([1.0, 0.0, float("nan"), 2.0], [1.0, 1.0, 1.0, 1.0])
    assert iv.n == 2


# --- the launch loop, with scripted launches ---------------------------------------------------
def launch(ms: float, **metrics: float) -> Measurement:
    samples = (ms * 0.99, ms, ms * 1.01)
    return Measurement(metrics={"latency_ms": ms, "wall_s": 0.1, **metrics}, samples_ms=samples, checksum="c")


def scripted(values):
    calls = []

    def once(i):
        calls.append(i)
        v = values[i]
        return v if isinstance(v, Measurement) else launch(v)
    return once, calls


def test_launch_series_stops_when_the_interval_is_tight():
    once, calls = scripted([10.0, 10.1, 9.9, 10.0, 10.05, 9.95, 10.0, 50.0, 50.0, 50.0])
    m = launch_series(once, LaunchPolicy(3, 10, ci_rel=0.05))
    assert calls == [0, 1, 2, 3, 4, 5] and m.stopped == "ci"      # 6 launches reach 95%
    assert m.metrics["launches"] == 6 and len(m.launches) == 6
    assert m.metrics["latency_ms"] == pytest.approx(10.0)
    assert m.metrics["latency_ci_low_ms"] == 9.9 and m.metrics["latency_ci_high_ms"] == 10.1
    assert m.metrics["reps"] == 18 and len(m.samples_ms) == 18
    assert [x.samples_ms for x in m.launches][0] == (9.9, 10.0, 10.1)


def test_launch_series_keeps_launching_through_modes_until_max():
    values = [28.0, 56.0] * 5
    once, calls = scripted(values)
    m = launch_series(once, LaunchPolicy(3, 10, ci_rel=0.05))
    assert len(calls) == 10 and m.stopped == "max"
    assert m.metrics["latency_ci_low_ms"] == 28.0 and m.metrics["latency_ci_high_ms"] == 56.0


def test_launch_series_race_stops_a_loser():
    seen = []

    def race(iv, metrics):
        assert metrics["latency_ms"] in (40.0, 41.0)
        seen.append(iv.n)
        return iv.n >= 2 and iv.low > 20.0        # optimistic bound worse than the best (20)
    once, calls = scripted([40.0, 41.0, 39.0] * 4)
    m = launch_series(once, LaunchPolicy(3, 10), race=race)
    assert m.stopped == "raced" and len(calls) == 2 and seen == [1, 2]


def test_launch_series_a_failed_launch_fails_the_measurement():
    bad = Measurement.failed(FailureReason.CRASH, "killed by SIGSEGV")
    once, calls = scripted([10.0, 10.0, bad, 10.0])
    m = launch_series(once, LaunchPolicy(3, 10))
    assert not m.ok and m.reason == FailureReason.CRASH and m.stopped == "failed"
    assert m.detail.startswith("launch 3: killed") and len(m.launches) == 3 and calls == [0, 1, 2]


def test_single_launch_policy_is_one_process():
    once, calls = scripted([10.0, 11.0])
    m = launch_series(once, LaunchPolicy(1, 1))
    assert calls == [0] and m.stopped == "single" and m.metrics["launches"] == 1


def test_combine_takes_medians_and_rederives_rates():
    done = [launch(10.0, items=100.0, batch=10.0, gflop=2.0, accuracy=0.9, throughput=1e4),
            launch(20.0, items=100.0, batch=10.0, gflop=2.0, accuracy=0.9, throughput=5e3),
            launch(12.0, items=100.0, batch=10.0, gflop=2.0, accuracy=0.9, throughput=8333.0)]
    policy = LaunchPolicy(3, 3)
    m = combine(done, [launch_of(x, t, policy) for x, t in zip(done, [0.0, 1.0, 2.0])], policy, "max")
    assert m.metrics["latency_ms"] == 12.0 and m.metrics["accuracy"] == 0.9
    assert m.metrics["throughput"] == pytest.approx(100 / 0.012)
    assert m.metrics["batch_latency_ms"] == pytest.approx(1.2)
    assert m.metrics["gflops"] == pytest.approx(2.0 / 0.012)
    assert m.metrics["wall_s"] == pytest.approx(0.3)
    assert [x.started for x in m.launches] == [0.0, 1.0, 2.0]


# --- the paired comparison -------------------------------------------------------------------
def test_compare_runs_abba_and_reports_the_ratio():
    order = []

    def make(name, ms):
        def once(i):
            order.append(name)
            return launch(ms)
        return once
    c = compare(make("a", 8.0), make("b", 10.0), PairPolicy(6, 6))
    assert "".join(order) == "ABBAABBAABBA".lower()
    assert c.pairs == 6 and c.ratio.value == pytest.approx(0.8) and c.speedup.value == pytest.approx(1.25)
    assert c.stopped == "ci" and c.ok


def test_compare_keeps_going_while_wide_and_stops_at_max():
    rng = np.random.default_rng(5)
    a, b = bimodal(rng, 40), bimodal(rng, 40)
    c = compare(lambda i: launch(a[i]), lambda i: launch(b[i]), PairPolicy(6, 12, ci_rel=0.01))
    assert c.stopped == "max" and c.pairs == 12


def test_compare_race_hooks():
    a = lambda i: launch(15.0 * (1 + 0.01 * (i % 3)))     # noqa: E731 - a 1.5x slower candidate
    b = lambda i: launch(10.0)                             # noqa: E731
    c = compare(a, b, PairPolicy(6, 20, ci_rel=0.0), race=cannot_beat(1.0))
    assert c.stopped == "raced" and c.pairs == 6 and c.ratio.low > 1.0
    c = compare(a, b, PairPolicy(6, 20, ci_rel=0.0), race=decided(1.4))
    assert c.stopped == "raced" and c.pairs == 6
    c = compare(a, b, PairPolicy(6, 8, ci_rel=0.0), race=decided(1.5))   # 1.5 inside: undecided
    assert c.stopped == "max"


def test_admitted_stops_once_the_candidate_enters_whatever_its_interval_holds():
    a = lambda i: launch(8.0 * (1 + 0.01 * (i % 3)))      # noqa: E731 - 0.80-0.816 of the baseline
    b = lambda i: launch(10.0)                             # noqa: E731
    c = compare(a, b, PairPolicy(6, 16, ci_rel=0.0), race=admitted(0.9, 0.10))
    assert c.stopped == "decided" and c.pairs == 6 and c.ratio.high < 0.9
    # a break-even inside the interval: admission undecided, so it runs to max_pairs
    c = compare(a, b, PairPolicy(6, 10, ci_rel=0.0), race=admitted(0.81, 0.10))
    assert c.stopped == "max" and c.pairs == 10
    # decided but wider than asked: keeps going
    c = compare(a, b, PairPolicy(6, 10, ci_rel=0.0), race=admitted(0.9, 0.01))
    assert c.stopped == "max"
    # a candidate that enters at any time (threshold inf): only the width decides
    c = compare(a, b, PairPolicy(6, 16, ci_rel=0.0), race=admitted(math.inf, 0.10))
    assert c.stopped == "decided" and c.pairs == 6
    # never before the interval reaches 95% (6 pairs), however narrow
    c = compare(lambda i: launch(8.0), b, PairPolicy(6, 16, ci_rel=0.0), race=admitted(0.9, 0.5))
    assert c.pairs == 6


@pytest.mark.parametrize("true, threshold", [(1.0, math.inf), (0.9, math.inf), (0.9, 0.93), (0.9, 0.95)])
def test_stopping_when_decided_keeps_the_interval_honest(true, threshold):
    """Stopping as soon as admission is decided is optional stopping: it picks the moments the
    interval looks good. On launches with 3% noise each (pairs about 4%), over 300 comparisons
    the stopped interval still covers the true ratio at least 90% of the time, and most stop
    before max_pairs."""
    covered, early = 0, 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        a = 10 * true * np.exp(rng.normal(0, 0.03, 16))
        b = 10 * np.exp(rng.normal(0, 0.03, 16))
        c = compare(lambda i: launch(a[i]), lambda i: launch(b[i]), PairPolicy(6, 16, ci_rel=0.04),
                    race=admitted(threshold, 0.10))
        covered += c.ratio.low <= true <= c.ratio.high
        early += c.pairs < 16
    assert covered >= 0.9 * 300, covered
    assert early >= 0.5 * 300, early


def test_compare_a_failure_stops_and_says_which():
    bad = Measurement.failed(FailureReason.TIMEOUT, "no result after 1s")
    c = compare(lambda i: launch(1.0), lambda i: bad if i == 2 else launch(1.0), PairPolicy(6, 6))
    assert not c.ok and c.which_failed == "b" and c.stopped == "failed"
    assert c.failure.reason == FailureReason.TIMEOUT and len(c.a) == 2 + 1 and len(c.b) == 2


def test_compare_on_pair_sees_every_pair():
    got = []
    compare(lambda i: launch(1.0), lambda i: launch(2.0), PairPolicy(6, 6),
            on_pair=lambda i, x, y: got.append((i, x.value, y.value)))
    assert got == [(i, 1.0, 2.0) for i in range(6)]


def test_compare_continues_from_prior_pairs_in_abba_order():
    """A stored comparison continued later (explore's top-up): the earlier pairs count towards the
    interval and max_pairs, the order goes on (pair 6 is A B, pair 7 is B A), on_pair numbers the
    new pairs after the old, and a prior that already meets the policy runs nothing."""
    order, got = [], []

    def make(name, ms):
        def once(i):
            order.append((name, i))
            return launch(ms * (1 + 0.01 * (i % 3)) if name == "a" else ms)
        return once
    first = compare(make("a", 8.0), make("b", 10.0), PairPolicy(6, 6, ci_rel=0.0))
    order.clear()
    c = compare(make("a", 8.4), make("b", 10.0), PairPolicy(6, 10, ci_rel=0.0), prior=(first.a, first.b),
                on_pair=lambda i, x, y: got.append(i))
    assert order == [("a", 6), ("b", 6), ("b", 7), ("a", 7), ("a", 8), ("b", 8), ("b", 9), ("a", 9)]
    assert got == [6, 7, 8, 9] and c.pairs == 10 and c.a[:6] == first.a and c.stopped == "max"
    assert c.ratio.n == 10 and 0.8 < c.ratio.value < 0.84 < c.ratio.high   # 6 pairs near 0.8, 4 near 0.84
    order.clear()
    again = compare(make("a", 8.0), make("b", 10.0), PairPolicy(6, 10, ci_rel=0.05), prior=(first.a, first.b))
    assert order == [] and again.stopped == "ci" and again.pairs == 6


def test_contended_launches_are_flagged_and_left_out_while_enough_remain():
    def run(ms, ratio, preempted):
        return Measurement(metrics={"latency_ms": ms, "cpu_wall_ratio": ratio, "preempted": preempted},
                           samples_ms=(ms,), cpu_ms=(ms * ratio,))
    policy = LaunchPolicy(3, 8, ci_rel=0.0, contention=0.1)
    script = [run(10, 0.99, 0), run(20, 0.5, 40), run(10.2, 0.98, 1), run(9.9, 1.0, 0), run(30, 0.33, 80),
              run(10.1, 0.97, 2), run(10.0, 0.99, 0), run(25, 0.4, 9)]
    m = launch_series(lambda i: script[i], policy)
    assert [x.contended for x in m.launches] == [False, True, False, False, True, False, False, True]
    assert m.metrics["launches_counted"] == 5 and m.metrics["contended_launches"] == 3
    assert m.metrics["latency_ms"] == 10.0 and m.metrics["latency_ci_high_ms"] == 10.2
    # a sleeping or blocking launch (off its core, never preempted) is not contention
    assert not launch_of(run(10, 0.1, 0), 0.0, policy).contended
    # a multi-threaded launch (CPU time above wall time) cannot tell: counted as clean
    assert not launch_of(run(10, 1.9, 50), 0.0, policy).contended
    # a machine busy all along: too few clean launches, so every launch counts
    busy = [run(20 + i, 0.5, 30) for i in range(8)]
    m = launch_series(lambda i: busy[i], policy)
    assert m.metrics["launches_counted"] == 8 and m.metrics["contended_launches"] == 8
    m = launch_series(lambda i: script[i], LaunchPolicy(3, 8, ci_rel=0.0, exclude_contended=False))
    assert m.metrics["launches_counted"] == 8


def test_compare_leaves_out_pairs_with_a_contended_launch():
    def run(ms, ratio=1.0, preempted=0):
        return Measurement(metrics={"latency_ms": ms, "cpu_wall_ratio": ratio, "preempted": preempted},
                           samples_ms=(ms,))
    a = [run(8.0)] * 3 + [run(24.0, 0.33, 50)] * 3 + [run(8.0)] * 6
    b = [run(10.0)] * 12
    c = compare(lambda i: a[i], lambda i: b[i], PairPolicy(6, 12, ci_rel=-1.0))
    assert c.pairs == 12 and c.ratio.n == 9 and c.ratio.value == pytest.approx(0.8)
    c = compare(lambda i: a[i], lambda i: b[i], PairPolicy(6, 12, ci_rel=-1.0, exclude_contended=False))
    assert c.ratio.n == 12


def test_admitted_stops_a_trade_off_once_it_cannot_be_the_fastest():
    """`best`: below this ratio a would be the fastest point. A candidate 0.8x of the baseline's
    speed (ratio ~1.25) whose admission is settled (it enters at any time, by size say) stops
    "trade-off" at min_pairs though its interval is wider than asked; one that may be the fastest
    (best above its low end) keeps going to the width or max_pairs."""
    a = lambda i: launch(12.5 * (1 + 0.05 * (i % 3)))     # noqa: E731 - 1.25-1.375 of the baseline
    b = lambda i: launch(10.0)                             # noqa: E731
    c = compare(a, b, PairPolicy(6, 16, ci_rel=0.0), race=admitted(math.inf, 0.01, best=1.0))
    assert c.stopped == "trade-off" and c.pairs == 6 and c.ratio.high / c.ratio.low - 1 > 0.01
    c = compare(a, b, PairPolicy(6, 10, ci_rel=0.0), race=admitted(math.inf, 0.01, best=1.3))
    assert c.stopped == "max" and c.pairs == 10
    c = compare(a, b, PairPolicy(6, 10, ci_rel=0.0), race=admitted(math.inf, 0.01))    # no best: width only
    assert c.stopped == "max"
    # admission unsettled (break-even inside the interval): no stop, trade-off or not
    c = compare(a, b, PairPolicy(6, 10, ci_rel=0.0), race=admitted(1.28, 0.01, best=1.0))
    assert c.stopped == "max"


def test_no_gain_stops_a_near_tie_with_the_fastest_but_not_a_real_gain():
    """`no_gain(best, margin)`: once even a's optimistic ratio cannot beat `best` by more than
    `margin`, its pairs stop ("no gain"), from min_pairs; a candidate that may still beat it by
    more keeps going."""
    b = lambda i: launch(10.0)                             # noqa: E731
    tie = lambda i: launch(10.0 * (0.98 + 0.02 * (i % 3)))   # noqa: E731 - ratio 0.98-1.02
    c = compare(tie, b, PairPolicy(6, 16, ci_rel=0.0), race=no_gain(1.0, 0.05))
    assert c.stopped == "no gain" and c.pairs == 6
    gain = lambda i: launch(10.0 * (0.90 + 0.02 * (i % 3)))  # noqa: E731 - 6-10% faster than best
    c = compare(gain, b, PairPolicy(6, 16, ci_rel=0.0), race=no_gain(1.0, 0.05))
    assert c.stopped == "max" and c.pairs == 16
    c = compare(tie, b, PairPolicy(6, 16, ci_rel=0.0), race=no_gain(1.1, 0.05))   # the fastest is slower
    assert c.stopped == "max"

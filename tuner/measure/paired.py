"""A paired, interleaved comparison of two builds: the ratio of their times with a 95% interval.

Two measurements taken minutes apart differ by whatever the machine did in between (another
job, a frequency change, the page cache); two launches taken back to back share most of it.
So a comparison runs the two builds in fresh processes, alternately, in ABBA order (A B, B A,
A B, ...: each build goes first in half of the pairs, which cancels a first-in-pair advantage),
and summarises the per-pair log-ratios log(a_i / b_i): their median, exponentiated, is the
ratio and the sign-test interval of that median is its distribution-free 95% interval
(tuner.stats.ratio_interval). For a latency, `speedup` = b / a is the candidate's (a's) speedup
over the baseline (b).

Pairs continue until the interval is within `ci_rel` (needs at least 6 pairs for 95%), or
`max_pairs`, or until a racing hook says the question is settled (see `decided`, `cannot_beat`
and `admitted`; a hook may name why it stopped, e.g. "decided"). A failed launch stops the
comparison and is returned as `failure`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from tuner.measure.launches import LaunchPolicy, Race, launch_of
from tuner.records import Launch, Measurement
from tuner.stats import Interval, ratio_interval

Once = Callable[[int], Measurement]


@dataclass(frozen=True)
class PairPolicy:
    min_pairs: int = 6            # 6 is the fewest whose range reaches 95% coverage
    max_pairs: int = 20
    ci_rel: float = 0.04          # stop when high / low - 1 <= ci_rel
    level: float = 0.95
    contention: float = 0.1       # see LaunchPolicy
    exclude_contended: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_pairs", max(1, int(self.min_pairs)))
        object.__setattr__(self, "max_pairs", max(self.min_pairs, int(self.max_pairs)))

    def settled(self, iv: Interval) -> bool:
        return (iv.n >= self.min_pairs and iv.confident and iv.low > 0
                and iv.high / iv.low - 1 <= self.ci_rel)


@dataclass(frozen=True)
class Comparison:
    """The outcome of `compare`: ratio = a / b of the launch figures (latency: a's time over b's)."""

    ratio: Interval
    a: tuple[Launch, ...] = ()
    b: tuple[Launch, ...] = ()
    stopped: str = ""             # "ci", "max", "raced" (or what the race hook named), "failed"
    failure: Measurement | None = None
    which_failed: str = ""        # "a" or "b"
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)   # environment, labels
    runs_a: tuple[Measurement, ...] = field(default=(), repr=False)   # each launch's Measurement
    runs_b: tuple[Measurement, ...] = field(default=(), repr=False)   # (metrics; not in as_dict)

    @property
    def ok(self) -> bool:
        return self.failure is None and self.ratio.n > 0

    @property
    def pairs(self) -> int:
        return min(len(self.a), len(self.b))

    @property
    def speedup(self) -> Interval:
        """b / a: for times, how many times faster a is than b, with its interval."""
        r = self.ratio
        inv = (lambda x: 1.0 / x if x and math.isfinite(x) else math.nan)
        return Interval(inv(r.value), inv(r.high), inv(r.low), r.n, r.coverage, r.level)

    def as_dict(self) -> dict[str, Any]:
        return {"ratio": self.ratio.as_dict(), "speedup": self.speedup.as_dict(), "pairs": self.pairs,
                "stopped": self.stopped, "seconds": round(self.seconds, 3),
                "a": [x.as_dict() for x in self.a], "b": [x.as_dict() for x in self.b],
                **({"failed": self.which_failed, "reason": str(self.failure.reason),
                    "detail": self.failure.detail[-500:]} if self.failure else {}), **self.extra}


def _launch(once: Once, i: int, contention: float) -> tuple[Measurement, Launch]:
    t = time.time()
    m = once(i)
    return m, launch_of(m, t, LaunchPolicy(contention=contention))


def counted_pairs(la: Sequence[Launch], lb: Sequence[Launch], policy: PairPolicy) -> list[tuple[Launch, Launch]]:
    """The pairs the ratio uses: those where neither launch was contended (it shared its core),
    when there are at least `min_pairs` of them; otherwise all pairs."""
    pairs = list(zip(la, lb))
    clean = [(x, y) for x, y in pairs if not (x.contended or y.contended)]
    return clean if policy.exclude_contended and len(clean) >= policy.min_pairs else pairs


def pair_interval(la: Sequence[Launch], lb: Sequence[Launch], policy: PairPolicy) -> Interval:
    pairs = counted_pairs(la, lb, policy)
    return ratio_interval([x.value for x, _ in pairs], [y.value for _, y in pairs], policy.level)


def compare(a: Once, b: Once, policy: PairPolicy = PairPolicy(), race: Race | None = None,
            on_pair: Callable[[int, Launch, Launch], None] | None = None,
            prior: tuple[Sequence[Launch], Sequence[Launch]] = ((), ())) -> Comparison:
    """Run a and b in ABBA order, one fresh process each per call, until settled, `max_pairs`,
    a failure, or `race(interval)` returns True (stopped "raced") or a string (stopped with that
    name). `on_pair(i, a_launch, b_launch)` is called after each pair (to store it as it comes).
    `once(i)` gets the launch index within its build. `prior`: pairs taken earlier (a stored
    comparison to continue, e.g. a confirmation topped up later): they count towards the
    interval and `max_pairs`, and the ABBA order goes on from them; the result holds them too
    (`seconds` is this call's)."""
    t0 = time.perf_counter()
    start = min(len(prior[0]), len(prior[1]))
    la: list[Launch] = list(prior[0][:start])
    lb: list[Launch] = list(prior[1][:start])
    runs: dict[str, list[Measurement]] = {"a": [], "b": []}
    iv = (pair_interval(la, lb, policy) if start
          else Interval(math.nan, math.nan, math.nan, 0, 0.0, policy.level))
    stopped = "max"
    if start and policy.settled(iv):
        return Comparison(iv, tuple(la), tuple(lb), "ci", seconds=0.0)
    for i in range(start, policy.max_pairs):
        order = ((a, la, "a"), (b, lb, "b")) if i % 2 == 0 else ((b, lb, "b"), (a, la, "a"))
        for once, sink, name in order:
            m, launch = _launch(once, i, policy.contention)
            if not m.ok:
                return Comparison(iv, tuple(la), tuple(lb), "failed", m, name, time.perf_counter() - t0,
                                  runs_a=tuple(runs["a"]), runs_b=tuple(runs["b"]))
            sink.append(launch)
            runs[name].append(replace(m, output=None))
        if on_pair is not None:
            on_pair(i, la[-1], lb[-1])
        iv = pair_interval(la, lb, policy)
        if policy.settled(iv):
            stopped = "ci"
            break
        verdict = race(iv) if race is not None and i + 1 < policy.max_pairs else False
        if verdict:
            stopped = verdict if isinstance(verdict, str) else "raced"
            break
    return Comparison(iv, tuple(la), tuple(lb), stopped, seconds=time.perf_counter() - t0,
                      runs_a=tuple(runs["a"]), runs_b=tuple(runs["b"]))


def decided(threshold: float, min_n: int = 6) -> Race:
    """Stop once the ratio's confident interval lies entirely above or below `threshold`:
    whether a beats the threshold is settled either way."""
    def race(iv: Interval) -> bool:
        return iv.n >= min_n and iv.confident and (iv.low > threshold or iv.high < threshold)
    return race


def cannot_beat(threshold: float, min_n: int = 6) -> Race:
    """Stop once even the optimistic end of a/b (its low bound) is above `threshold`: for a
    latency, the candidate a cannot be `1/threshold` times faster than b any more."""
    def race(iv: Interval) -> bool:
        return iv.n >= min_n and iv.confident and iv.low > threshold
    return race


TRADE_OFF = "trade-off"


def admitted(threshold: float, rel: float, min_n: int = 6, best: float | None = None) -> Race:
    """Stop once even the pessimistic end of a/b (its high bound) is below `threshold` and the
    interval is within `rel` (high / low - 1): the candidate a enters whatever the rest of
    its interval holds, and its figure is known to `rel`. `threshold` may be inf (a candidate
    that enters at any time, e.g. the smallest binary): then only the width decides.
    Returns "decided" (the name of the stop) rather than True.

    `best`: the ratio below which a would be the fastest point of the front. Once even a's
    optimistic end (its low bound) is above it, a enters only as a trade-off and its width is
    not asked for: stopped TRADE_OFF as soon as admission is settled."""
    def race(iv: Interval) -> bool | str:
        if not (iv.n >= min_n and iv.confident and iv.low > 0 and iv.high < threshold):
            return False
        if iv.high / iv.low - 1 <= rel:
            return "decided"
        return TRADE_OFF if best is not None and iv.low > best else False
    return race


NO_GAIN = "no gain"


def no_gain(best: float, margin: float, min_n: int = 6) -> Race:
    """Stop once even the optimistic end of a/b (its low bound) is above `best / (1 + margin)`:
    a cannot beat the ratio `best` (that of the front's fastest point) by more than `margin`.
    Returns NO_GAIN. Why: a near-tie with the fastest point straddles every other threshold and
    ran to the last pair (on a 60-s sort run, a third of the budget) to settle a difference
    smaller than `margin`; its median over the pairs it had decides its place on the front
    either way, and the point a study prints as its answer is topped up at its end. A real
    gain larger than `margin` keeps its low bound below and runs on."""
    def race(iv: Interval) -> bool | str:
        return NO_GAIN if iv.n >= min_n and iv.confident and iv.low > best / (1 + margin) else False
    return race


def compare_builds(target: Any, program: Any, a: tuple[Any, Any], b: tuple[Any, Any],
                   policy: PairPolicy | None = None, race: Race | None = None,
                   on_pair: Callable[[int, Launch, Launch], None] | None = None,
                   prior: tuple[Sequence[Launch], Sequence[Launch]] = ((), ())) -> Comparison:
    """`compare` two (Build, Rendering) pairs on a target (tuner.targets.Target), with its
    [measure] confirm_* policy unless one is given; the environment goes in `extra`."""
    from tuner.measure.environment import Watch     # here: keeps this module free of /proc at import

    policy = policy or target.spec.measure.pair_policy()
    once_a = target.launcher(a[0], program, a[1])
    once_b = target.launcher(b[0], program, b[1])
    if not getattr(target, "runs_here", False):
        c = compare(once_a, once_b, policy, race, on_pair, prior)
        return replace(c, extra={"environment": {"runs_on": "remote"}})
    with Watch(target.placement(program, a[1]), target.spec.measure.contention) as watch:
        c = compare(once_a, once_b, policy, race, on_pair, prior)
    return replace(c, extra={"environment": watch.record})

"""A measurement that spans processes: launch the binary until the across-launch CI is tight.

On a shared machine a binary's time varies far more between processes than between the
repetitions inside one (bench/noise.py: launches of one -O3 binary land in two modes, each
launch's own interval a few percent wide). So a measurement is a *series of launches*: each
launch is one process, whose harness repeats the kernel and reports its samples; the launch's
figure is the median of its samples; the measurement's figure is the median of the launch
figures, with the distribution-free 95% interval of that median (tuner.stats.median_interval).
Launches continue until that interval is within `ci_rel` of the median (which needs at least
6 launches for 95%: below that the interval is the range of the launches and its coverage is
reported as what it is), or `max_launches`, or until a racing hook says the candidate is out
of the running.

`launch_series(once, policy, race)` is the loop; `once(i)` runs launch i and returns a
Measurement of that one process. `combine` folds the launches into one Measurement: a failed
launch fails the whole measurement, the other metrics are the median across launches, and
rates derived from the latency (gflops, throughput) are recomputed from the combined latency.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Protocol, Sequence

from tuner.records import Launch, Measurement
from tuner.stats import Interval, median_interval

KEY_METRIC = "latency_ms"


@dataclass(frozen=True)
class LaunchPolicy:
    """How many processes a measurement takes (the target's [measure] launches settings)."""

    min_launches: int = 3
    max_launches: int = 8
    ci_rel: float = 0.05          # stop when (high - low) / median <= ci_rel at `level`
    level: float = 0.95
    contention: float = 0.1       # a launch off its core more than this (and preempted) is contended
    exclude_contended: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_launches", max(1, int(self.min_launches)))
        object.__setattr__(self, "max_launches", max(self.min_launches, int(self.max_launches)))

    def settled(self, interval: Interval) -> bool:
        """Whether the interval is confident and tight enough to stop launching."""
        return interval.n >= self.min_launches and interval.confident and interval.rel_width <= self.ci_rel


class Race(Protocol):
    """A racing hook of a paired comparison: given the ratio's interval so far, True means
    "the question is settled (or the candidate is out of the running): stop now"; a non-empty
    string also stops, and names the stop (`Comparison.stopped`)."""

    def __call__(self, interval: Interval) -> bool | str: ...


class SeriesRace(Protocol):
    """A racing hook of a launch series: given the interval of the launch figures so far and the
    latest launch's metrics (for the objectives that do not depend on time: code size, accuracy),
    True means "out of the running, stop now" (stopped "raced"); a non-empty string also stops
    and names why (a campaign's "promoted": it goes to a paired confirmation anyway)."""

    def __call__(self, interval: Interval, metrics: Mapping[str, float]) -> bool | str: ...


def launch_value(m: Measurement) -> float:
    """The figure of one launch: its latency_ms (the median of its samples, or what it reported)."""
    v = m.metrics.get(KEY_METRIC)
    if v is None and m.samples_ms:
        v = statistics.median(m.samples_ms)
    return float(v) if v is not None else math.nan


def launch_of(m: Measurement, started: float, policy: LaunchPolicy) -> Launch:
    """The record of one process. It was *contended* when it spent more than `policy.contention`
    of its timed wall time off its core while being preempted (involuntary context switches):
    its CPU time per repetition stays what it was, its wall time grows with whatever shared the
    core. A multi-threaded process (CPU time above wall time) cannot tell, and counts as clean."""
    ratio = m.metrics.get("cpu_wall_ratio")
    offcore = max(0.0, 1.0 - ratio) if ratio is not None and ratio <= 1.02 else math.nan
    preempted = int(m.metrics.get("preempted", 0))
    contended = offcore == offcore and offcore > policy.contention and preempted > 0
    return Launch(m.samples_ms, launch_value(m), m.metrics.get("wall_s", 0.0), started, m.checksum,
                  m.cpu_ms, offcore, preempted, contended)


def counted(launches: Sequence[Launch], policy: LaunchPolicy) -> list[Launch]:
    """The launches the figure is computed from: the uncontended ones when there are at least
    `min_launches` of them (a launch that shared its core says more about the machine than about
    the build), otherwise all of them (a machine busy all along: the figure is what it is)."""
    clean = [x for x in launches if not x.contended]
    return clean if policy.exclude_contended and len(clean) >= policy.min_launches else list(launches)


def launch_series(once: Callable[[int], Measurement], policy: LaunchPolicy,
                  race: SeriesRace | None = None) -> Measurement:
    """Launch `once(0)`, `once(1)`, ... until settled, `max_launches`, a failure or the race hook
    stops it; returns the combined Measurement (see `combine`)."""
    done: list[Measurement] = []
    launches: list[Launch] = []
    stopped = "max"
    for i in range(policy.max_launches):
        started = time.time()
        m = once(i)
        done.append(m)
        launches.append(launch_of(m, started, policy))
        if not m.ok:
            stopped = "failed"
            break
        values = [x.value for x in counted(launches, policy)]
        if any(math.isnan(v) for v in values):      # nothing to adapt on (no latency reported)
            if len(done) >= policy.min_launches:
                stopped = "single" if policy.max_launches == 1 else "min"
                break
            continue
        interval = median_interval(values, policy.level)
        if policy.max_launches == 1:
            stopped = "single"
            break
        if policy.settled(interval):
            stopped = "ci"
            break
        verdict = race(interval, m.metrics) if race is not None and len(done) < policy.max_launches else False
        if verdict:
            stopped = verdict if isinstance(verdict, str) else "raced"
            break
    return combine(done, launches, policy, stopped)


def derive_rates(metrics: dict[str, float]) -> dict[str, float]:
    """Figures that follow from the latency: throughput (items per s), per-batch latency, gflops.
    Recomputed after combining launches, so they agree with the combined latency."""
    lat = metrics.get(KEY_METRIC, 0.0)
    if lat > 0:
        if metrics.get("items", 0) > 0:
            metrics["throughput"] = metrics["items"] / (lat / 1e3)
            if metrics.get("batch", 0) > 0:
                metrics["batch_latency_ms"] = lat * min(metrics["batch"], metrics["items"]) / metrics["items"]
        if metrics.get("gflop", 0) > 0:
            metrics["gflops"] = metrics["gflop"] / (lat * 1e-3)
    return metrics


def combine(done: list[Measurement], launches_: Sequence[Launch], policy: LaunchPolicy,
            stopped: str) -> Measurement:
    """Fold per-launch Measurements (and their Launch records) into one."""
    launches = tuple(launches_)
    failed = next((m for m in done if not m.ok), None)
    if failed is not None:
        detail = failed.detail if len(done) == 1 else f"launch {len(done)}: {failed.detail}"
        return replace(failed, detail=detail, launches=launches, stopped="failed")
    if len(done) == 1:
        metrics = {**done[0].metrics, "launches": 1.0}
        return replace(done[0], metrics=metrics, launches=launches, stopped=stopped)
    names = set.intersection(*(set(m.metrics) for m in done))
    metrics = {k: float(statistics.median(m.metrics[k] for m in done)) for k in sorted(names)}
    metrics["wall_s"] = float(sum(m.metrics.get("wall_s", 0.0) for m in done))
    used = counted(launches, policy)
    values = [x.value for x in used]
    if not any(math.isnan(v) for v in values):
        iv = median_interval(values, policy.level)
        metrics.update({KEY_METRIC: iv.value, "latency_ci_low_ms": iv.low, "latency_ci_high_ms": iv.high,
                        "latency_ci_coverage": iv.coverage})
        derive_rates(metrics)
    samples = tuple(s for m in done for s in m.samples_ms)
    cpu = tuple(s for m in done for s in m.cpu_ms) if all(m.cpu_ms for m in done) else ()
    metrics.update(launches=float(len(done)), reps=float(len(samples)),
                   contended_launches=float(sum(x.contended for x in launches)),
                   launches_counted=float(len(used)))
    first = done[0]
    return Measurement(metrics=metrics, samples_ms=samples, checksum=first.checksum, output=first.output,
                       cpu_ms=cpu, launches=launches, stopped=stopped)


def interval_of(m: Measurement, policy: LaunchPolicy = LaunchPolicy()) -> Interval:
    """The across-launch interval of a combined Measurement (from the launches it counts)."""
    return median_interval([x.value for x in counted(m.launches, policy)], policy.level)


def record(m: Measurement) -> dict[str, Any]:
    """What is stored with a trial: each launch's raw samples and figure, why the launches
    stopped, and the across-launch interval (JSON-ready)."""
    out: dict[str, Any] = {"stopped": m.stopped, "launches": [x.as_dict() for x in m.launches]}
    if "latency_ci_coverage" in m.metrics:
        out["interval"] = {"value": m.metrics[KEY_METRIC], "low": m.metrics["latency_ci_low_ms"],
                           "high": m.metrics["latency_ci_high_ms"], "coverage": m.metrics["latency_ci_coverage"],
                           "counted": int(m.metrics.get("launches_counted", len(m.launches)))}
    return out

"""Measurement across processes: launch series, paired comparisons, the environment.

Why: on a shared machine the time of a binary varies between *processes* far more than between
the repetitions inside one (bench/noise.py has the figures), so a figure from one process, and
a confidence interval computed inside it, does not survive re-measurement. Everything here
treats the process (the launch) as the unit of measurement.

The API (used by Target.run, the campaign's baseline and confirmation, `tune confirm`,
`tune reproduce`/`reduce`, bench/peers.py):

- ``Target.run(build, program, rendering, race=None) -> Measurement``: a series of launches
  under the target's [measure] policy (`min_launches`, `max_launches`, `ci_rel`); the figure
  `latency_ms` is the median of per-launch medians, `latency_ci_low_ms`/`latency_ci_high_ms` its
  distribution-free 95% interval across launches (`latency_ci_coverage` says the coverage
  reached: below 6 launches it is the range's, under 95%). `Measurement.launches` holds each
  launch's raw samples, `stopped` why the series ended ("ci", "max", "raced", "single",
  "failed"), `environment` what else ran (see environment.Watch). Deterministic methods
  (instructions, simulated cycles) are one launch.
- ``Target.launcher(build, program, rendering) -> once``: `once(i)` runs ONE process and returns
  its Measurement; the building block of the two functions below.
- ``launch_series(once, LaunchPolicy, race) -> Measurement``: the adaptive loop on its own.
- ``compare(once_a, once_b, PairPolicy, race, on_pair) -> Comparison``: a and b in fresh
  processes, interleaved ABBA; `Comparison.ratio` is a/b (an `Interval`: value, low, high, n
  pairs, coverage), `speedup` is b/a, `a`/`b` the launches, `stopped` why it ended, `failure`
  the failed launch's Measurement if one failed.
- ``compare_builds(target, program, (build_a, rendering_a), (build_b, rendering_b), ...)``: the
  same from two builds on a target, using its [measure] confirm_* policy, with the environment.
- Racing hooks: a series takes ``race(interval, metrics) -> bool`` (the launch figures' interval
  so far and the latest launch's metrics; True: stop now); a comparison takes
  ``race(interval) -> bool | str`` on the ratio, e.g. ``decided(threshold)``,
  ``cannot_beat(threshold)`` or ``admitted(threshold, rel)`` (a string names the stop).
- Statistics: tuner.stats (`median_interval`, `ratio_interval`, `Interval`).
"""

from tuner.measure.environment import Placement, Watch, machine
from tuner.measure.launches import LaunchPolicy, Race, SeriesRace, launch_series
from tuner.measure.paired import (Comparison, PairPolicy, admitted, cannot_beat, compare, compare_builds, decided,
                                  no_gain)
from tuner.stats import Interval, median_interval, ratio_interval

__all__ = ["Comparison", "Interval", "LaunchPolicy", "PairPolicy", "Placement", "Race", "SeriesRace", "Watch",
           "admitted", "cannot_beat", "compare", "compare_builds", "decided", "launch_series", "machine", "no_gain",
           "median_interval", "ratio_interval"]

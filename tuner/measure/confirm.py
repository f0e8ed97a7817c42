"""Measuring inside a campaign: the baseline re-measured as it goes, racing, and confirmation.

`Confirming` wraps the Evaluator (the campaign's `Evaluate` extension point) on targets whose
timings vary between processes (method "wall") and studies with a timed objective. For each
configuration it:

1. **re-measures the baseline** when due: the first measured trial of every process (so a
   resume measures it again) and then every `baseline_every` measured trials. The check (a
   launch series of the baseline build) is stored with the trial that triggered it
   (`measurement.baseline_check`, with its drift from the study's first baseline figure), and
   every measured trial records its speed-up against the latest check, taken minutes before
   it (`measurement.vs_baseline`), not against trial 0.
2. **races** the screening launches: after two launches, if even the optimistic figure (the
   lowest launch, less `margin`) would be dominated by the confirmed front, the series stops
   (`measurement.stopped == "raced"`, `measurement.saved` = launches and seconds saved against
   `max_launches`).
3. **confirms** a configuration whose screening figures would enter the front (or improve the
   best value of an objective): paired ABBA launches against the baseline in fresh processes
   (tuner.measure.paired.compare_builds), raced out as soon as its optimistic ratio cannot
   enter the front, and stopped as soon as its pessimistic ratio enters it anyway with an
   interval within `confirm_decided_rel` (admission decided: more pairs would only narrow a
   figure already good to that width; "decided"; at any width when even its optimistic ratio
   is slower than the front's fastest point: "trade-off"; with racing on, at any width and
   whatever its admission once even its optimistic ratio cannot beat the front's fastest by
   more than `margin`: "no gain", its median deciding its place), else when the interval is within
   `confirm_ci_rel` or at `confirm_max_pairs`. The candidate's timed objective values become its own median over those
   launches (so the front, the sampler and the surrogate see confirmed values), and the paired
   speed-up with its 95% interval is stored as `measurement.confirmation`. A launch that fails
   or gives another checksum during confirmation fails the trial, as in screening.
4. **judges the obvious points by a paired comparison** (`seeded`: the config keys of
   tuner.seeds, -O2/-O3/-Os/-O3 -march=native or the study's declared seeds): one screening
   series can land in the slow mode of a binary whose time is bimodal across processes (the
   seeded -O3 -march=native point of a stencil once read 32 ms against 12.6 ms for -O3 and was
   never looked at again), so a seeded point is never raced out of its screening and is always
   confirmed against the baseline, whatever its screening figure (`confirmation.seeded`). The
   paired comparison may still end early once it is decided (its own interval), and ends at
   `confirm_min_pairs` once its interval says it is not faster than the baseline (stopped
   "not faster"; it keeps that paired figure). Why: -O2 and -Os enter a front by code size
   whatever their time, so their intervals were never "decided": on the stencil kernel the three
   seeds took 16 pairs each and only 10 evaluations fitted in 60 s.

Deterministic targets, studies without a timed objective and targets that do not launch
processes (the replay target) pass straight through.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from tuner.evaluate import Outcome
from tuner.measure.front import entry_factor, front_of, scaled, timed, would_enter
from tuner.measure.launches import KEY_METRIC
from tuner.measure.paired import NO_GAIN, TRADE_OFF, admitted, cannot_beat, compare_builds, counted_pairs, no_gain
from tuner.measure.summary import confirmation
from tuner.records import FailureReason, Launch, Measurement
from tuner.space import Config, config_key
from tuner.stats import Interval


NOT_FASTER = "not faster"     # a seeded point's paired comparison, once it is slower than the baseline


@dataclass(frozen=True)
class Settings:
    """From the target's [measure] table (confirm, race, baseline_every, race_margin)."""

    confirm: bool = True          # confirm would-be front points against the baseline
    race: bool = True             # stop candidates out of the running early
    baseline_every: int = 8       # re-measure the baseline every K measured trials (and per process)
    margin: float = 0.05          # racing: the optimistic figure must miss the front by this much
                                  # (and, paired, beat the fastest by more than this: else "no gain")
    decided_rel: float = 0.10     # confirmation ends once admission is decided and the interval this narrow

    @classmethod
    def of(cls, measure: Any) -> "Settings":
        return cls(measure.confirm, measure.race, max(1, measure.baseline_every), measure.race_margin,
                   measure.confirm_decided_rel)


class Confirming:
    """The Evaluate protocol around a tuner.evaluate.Evaluator (see the module docstring)."""

    def __init__(self, inner: Any, history: Any, settings: Settings | None = None,
                 seeded: Iterable[str] = ()) -> None:
        self.inner = inner
        self.seeded = frozenset(seeded)   # config keys of the obvious points (tuner.seeds)
        self.history = history
        self.settings = settings or Settings.of(inner.target.spec.measure)
        spec, target = inner.study, inner.target
        self.objectives = list(spec.objectives)
        # only where timings vary between processes, something is timed, and the target measures
        # by launching processes (not one that serves recorded results, say)
        from tuner.targets.base import Target
        self.active = (target.spec.measure.noisy and any(timed(o) for o in self.objectives)
                       and type(target).run is Target.run)
        self.base_config: Config | None = spec.space.complete(spec.baseline) if spec.baseline else None
        self.base_key = config_key(self.base_config) if self.base_config is not None else None
        self.since_check = 0
        self.checked = False          # this process measured the baseline (or checked it)
        self.latest: dict[str, Any] | None = None

    # the Evaluator's other attributes (provenance, study, target) are the inner one's
    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("provenance", "measured_program"):
            setattr(self.inner, name, value)
        else:
            object.__setattr__(self, name, value)

    # --- the baseline ---------------------------------------------------------------------------
    def _baseline_record(self) -> Any | None:
        recs = [r for r in self.history.complete() if r.config_key == self.base_key]
        return recs[0] if recs else None

    def _first_figure(self) -> float | None:
        rec = self._baseline_record()
        return rec.metrics.get(KEY_METRIC) if rec is not None else None

    def _check(self) -> dict[str, Any] | None:
        """Measure the baseline now (a launch series); None if it cannot be built or run."""
        spec, target = self.inner.study, self.inner.target
        rendering = spec.space.render(self.base_config)
        built = target.build(spec.program, rendering)
        if isinstance(built, Measurement):
            return None
        m = target.run(built, spec.program, rendering)
        if not m.ok or KEY_METRIC not in m.metrics:
            return None
        return self._note(m)

    def _note(self, m: Measurement) -> dict[str, Any]:
        check = {"value": m.metrics[KEY_METRIC], "low": m.metrics.get("latency_ci_low_ms"),
                 "high": m.metrics.get("latency_ci_high_ms"), "launches": len(m.launches),
                 "at": time.time(), "contended": int(m.metrics.get("contended_launches", 0))}
        first = self._first_figure()
        if first:
            check["drift"] = check["value"] / first - 1
        self.latest, self.checked, self.since_check = check, True, 0
        return check

    def _due(self) -> bool:
        if self.base_key is None or self._baseline_record() is None:
            return False
        return not self.checked or self.since_check >= self.settings.baseline_every

    # --- the front -------------------------------------------------------------------------------
    def _front(self) -> list[Mapping[str, float]]:
        points = [r.values for r in self.history.complete() if r.values]
        return front_of(points, self.objectives)

    def _values(self, metrics: Mapping[str, float]) -> dict[str, float] | None:
        out = {}
        for o in self.objectives:
            v = o.value(metrics)
            if v is None:
                return None
            out[o.name] = v
        return out

    def _series_race(self, promote: bool, least: int, racing: bool = True) -> Any:
        """The screening's hook: "raced" (True) once even the optimistic figure (the lowest
        launch, less `margin`) cannot enter the front; with `promote`, "promoted" once, after
        `least` launches, even the pessimistic one (the highest, plus `margin`) enters it: the
        candidate goes to a paired confirmation, whose launches replace these, so more
        screening launches would be spent for nothing."""
        front = self._front()
        margin = self.settings.margin

        def race(iv: Interval, metrics: Mapping[str, float]) -> bool | str:
            if iv.n < 2 or not front:
                return False
            values, lat = self._values(metrics), metrics.get(KEY_METRIC)
            if values is None or not lat or not iv.low or iv.low <= 0:
                return False
            optimistic = scaled(values, self.objectives, iv.low * (1 - margin) / lat)
            if racing and self.settings.race and not would_enter(optimistic, front, self.objectives):
                return True
            if promote and iv.n >= least:
                pessimistic = scaled(values, self.objectives, iv.high * (1 + margin) / lat)
                if would_enter(pessimistic, front, self.objectives):
                    return "promoted"
            return False
        return race

    def _fastest_ratio(self) -> float:
        """The paired ratio to the baseline a candidate must beat to be the answer explore prints
        (tuner.measure.summary.paired_best): that of the best confirmed speed-up so far, the
        baseline's own 1 at least. Paired, not the front's told values: those are medians taken at
        other moments, and on a machine whose speed drifts a -O3 -march=native point 1.27x
        faster than the baseline by its pairs once read as no faster than a 1.01x -O2 told in a
        quiet minute, and stopped as a tie."""
        confirmed = (confirmation(r) for r in self.history.complete() if r.values)
        return 1.0 / max([1.0] + [float(c["speedup"]["value"]) for c in confirmed if c is not None])

    # --- the protocol ------------------------------------------------------------------------------
    def evaluate(self, config: Config) -> Outcome:
        if not self.active:
            return self.inner.evaluate(config)
        key = config_key(config)
        is_base = self.base_key is not None and key == self.base_key
        seeded = key in self.seeded and not is_base     # judged by its paired comparison only
        t0 = time.perf_counter()
        check = self._check() if not is_base and self._due() else None
        check_s = time.perf_counter() - t0
        policy = self.inner.target.spec.measure.launch_policy()
        promote = self.settings.confirm and self._baseline_record() is not None
        race = (self._series_race(promote, policy.min_launches, racing=not seeded)
                if (self.settings.race or promote) and not is_base else None)
        outcome = self.inner.evaluate(config, race=race)
        m = outcome.measurement
        if outcome.same_as is not None and check is not None:     # the check is kept, with this trial
            return replace(outcome, extra={**outcome.extra, "measurement": {"baseline_check": check}})
        if not outcome.build_key or not m.launches:
            return outcome                     # not built or not run (or built a program measured before)
        self.since_check += 1
        timing = dict(outcome.timing)
        measurement = dict(outcome.extra.get("measurement") or {})
        if check is not None:
            measurement["baseline_check"] = check
        if is_base and m.ok and KEY_METRIC in m.metrics:
            measurement["baseline_check"] = self._note(m)
        if m.stopped in ("raced", "promoted"):
            measurement["saved"] = _saved(policy.max_launches - len(m.launches), m)
        lat = m.metrics.get(KEY_METRIC)
        if outcome.ok and lat and self.latest and not is_base:
            measurement["vs_baseline"] = {"speedup": self.latest["value"] / lat,
                                          "baseline_ms": self.latest["value"], "baseline_at": self.latest["at"]}
        if (outcome.ok and not is_base and self.settings.confirm and outcome.values is not None
                and (seeded or (m.stopped != "raced" and would_enter(outcome.values, self._front(), self.objectives)))):
            t1 = time.perf_counter()
            outcome, confirmation = self._confirm(config, outcome, seeded)
            measurement["confirmation"] = {**confirmation, "seeded": True} if seeded else confirmation
            timing["confirm_s"] = time.perf_counter() - t1
        if check is not None:
            timing["baseline_check_s"] = check_s
        # measuring is running: the time of checks and confirmations counts as the trial's run
        timing["run_s"] = timing.get("run_s", 0.0) + timing.get("confirm_s", 0.0) + timing.get("baseline_check_s", 0.0)
        return replace(outcome, timing=timing, extra={**outcome.extra, "measurement": measurement})

    def _pair_race(self, outcome: Outcome, screen_lat: float, pol: Any,
                   seeded: bool = False) -> tuple[Any, Any]:
        """The paired comparison's race hook and the `on_pair` that feeds it: when it may stop
        before its interval is within confirm_ci_rel:
        "raced" once even its optimistic ratio cannot enter the front (with racing on), and
        "decided" once even its pessimistic ratio enters and the interval is within
        `decided_rel` (admission settled, the figure known well enough to print), or at any width
        once, besides, even its optimistic ratio is slower than the fastest (TRADE_OFF: it
        enters by code size, say, and its figure is not an answer; explore tops up the figures it
        prints). The break-even
        is the candidate's ratio to the baseline at which a front point starts to dominate it
        (inf when none can: then only the width decides). A seeded point also stops "not
        faster" once even its optimistic ratio is above 1: its figure against the baseline is
        known (slower), and more pairs would only narrow it. Any point stops NO_GAIN (with
        racing on) once even its optimistic ratio cannot beat the fastest by more than
        `margin` (race_margin): whether it is a hair faster or slower than the fastest, its
        median decides. "The fastest" is by paired ratio (`_fastest_ratio`).

        The break-even is a time; it becomes a ratio through the median of the pairs' own
        baseline launches, the moment the candidate's told value (its median over these pairs)
        is taken at. Not through the latest baseline check: taken minutes before on a machine
        whose speed drifts 2x, it once raced out a point whose told median then entered the
        front, printed "not confirmed"."""
        front = self._front()
        factor = entry_factor(outcome.values, front, self.objectives)
        fastest = self._fastest_ratio()
        slower = cannot_beat(1.0, pol.min_pairs) if seeded else None
        entering = factor > 0 and (self.settings.race or self.settings.decided_rel > 0)
        if not entering and slower is None:
            return None, None
        la: list[Launch] = []
        lb: list[Launch] = []

        def race(iv: Interval) -> bool | str:
            ref = statistics.median(y.value for _, y in counted_pairs(la, lb, pol)) if lb else 0.0
            threshold = (screen_lat * factor / ref if math.isfinite(factor) else math.inf) if entering and ref > 0 else None
            if (threshold is not None and self.settings.race and math.isfinite(threshold)
                    and cannot_beat(threshold, pol.min_pairs)(iv)):
                return "raced"
            if slower is not None and slower(iv):
                return NOT_FASTER
            if threshold is not None and self.settings.decided_rel > 0:
                verdict = admitted(threshold, self.settings.decided_rel, pol.min_pairs, fastest)(iv)
                if verdict:
                    return verdict
            if threshold is not None and self.settings.race and self.settings.margin > 0:
                return no_gain(fastest, self.settings.margin, pol.min_pairs)(iv)
            return False

        def on_pair(i: int, a: Launch, b: Launch) -> None:
            la.append(a)
            lb.append(b)
        return race, on_pair

    # --- confirmation --------------------------------------------------------------------------------
    def _confirm(self, config: Config, outcome: Outcome, seeded: bool = False) -> tuple[Outcome, dict[str, Any]]:
        spec, target = self.inner.study, self.inner.target
        # a seeded point needs no baseline record (it builds the baseline itself): with --jobs it
        # may be measured while the baseline's own trial still runs
        if self._baseline_record() is None and not seeded:
            return outcome, {"skipped": "no baseline measured yet"}
        cand_r, base_r = spec.space.render(config), spec.space.render(self.base_config)
        cand_b, base_b = target.build(spec.program, cand_r), target.build(spec.program, base_r)
        if isinstance(cand_b, Measurement) or isinstance(base_b, Measurement):
            return outcome, {"skipped": "a build failed"}
        m = outcome.measurement
        screen_lat = m.metrics[KEY_METRIC]
        pol = target.spec.measure.pair_policy()
        race, on_pair = self._pair_race(outcome, screen_lat, pol, seeded)
        c = compare_builds(target, spec.program, (cand_b, cand_r), (base_b, base_r), race=race, on_pair=on_pair)
        doc = c.as_dict()
        doc["speedup_of"] = KEY_METRIC
        if c.failure is not None:
            if c.which_failed == "a":
                failed = replace(c.failure, detail=f"during confirmation: {c.failure.detail}")
                return replace(outcome, measurement=failed, values=None), doc
            doc["skipped"] = "the baseline failed during confirmation"
            return outcome, doc
        sums = {x.checksum for x in c.a} - {None}
        if spec.program.verify.mode == "exact" and m.checksum is not None and sums - {m.checksum}:
            failed = replace(m, reason=FailureReason.WRONG_OUTPUT,
                             detail=f"during confirmation a launch gave checksum {sorted(sums - {m.checksum})[0]}, "
                                    f"not {m.checksum}")
            return replace(outcome, measurement=failed, values=None), doc
        if c.stopped in ("raced", "decided", TRADE_OFF, NOT_FASTER, NO_GAIN):
            doc["saved"] = _saved(2 * (pol.max_pairs - c.pairs), m)
        pairs = counted_pairs(c.a, c.b, pol)
        lat = statistics.median(x.value for x, _ in pairs)
        doc["candidate_ms"] = lat
        doc["baseline_ms"] = statistics.median(y.value for _, y in pairs)
        doc["screen"] = dict(outcome.values)
        values = scaled(outcome.values, self.objectives, lat / screen_lat)
        metrics = dict(m.metrics)
        for key, s in (("latency_ms", 1), ("batch_latency_ms", 1), ("gflops", -1), ("throughput", -1)):
            if key in metrics:
                metrics[key] = metrics[key] * (lat / screen_lat) ** s
        doc["confirmed"] = c.stopped != "raced"
        return replace(outcome, values=values, measurement=replace(m, metrics=metrics)), doc


def _saved(launches: int, m: Measurement) -> dict[str, float]:
    walls = [x.wall_s for x in m.launches if x.wall_s > 0]
    per = statistics.median(walls) if walls else 0.0
    return {"launches": max(launches, 0), "seconds": round(max(launches, 0) * per, 3)}


__all__ = ["NOT_FASTER", "Confirming", "Settings"]

"""The campaign: ask -> screen(history) -> evaluate -> tell, until N trials have finished.

N counts measurements (built and run: verified, failed, infeasible by a run, audited), as
MetaSchedule and OpenTuner count theirs. A proposal that repeats a measured configuration (a
duplicate), breaks a declared constraint, or that the surrogate skips (pruned) is told to the
sampler but not counted (TrialRecord.finished): with a budget of N measured configurations the
surrogate chooses WHICH N are measured instead of shrinking N. A campaign that does nothing else
is stopped (`_exhausted`, `TinyFeasibleRegion`).

Each trial's result is told (and so durable in the storage) before the next one starts, so a
crash, Ctrl-C or kill -9 loses nothing already measured. Running the same command again continues
the same study up to the same total. The loop only sequences the steps; each decision lives in
its own module:

  * which configurations run before the sampler's (baseline, retries): `tuner.proposals`;
  * who runs which trial, leases, dead workers, Optuna's internals: `tuner.studystore`;
  * what the study knows (dedup, the surrogate's data): `tuner.history`;
  * what an outcome means (status, told values, constraints): `tuner.outcomes`;
  * the record stored: `tuner.result`; progress and overhead printing: `tuner.progress`.

Extension points: `Evaluate` (anything with `evaluate(config) -> Outcome`: repeated or
interleaved measurement wraps the Evaluator), `Screen` (the surrogate), `observers` (called
after every told trial), `Proposals.sources` (seeded points).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import optuna
from optuna.exceptions import UpdateFinishedTrialError

from tuner import faultpoint
from tuner import result as R
from tuner.errors import MachineFault, RunFailure
from tuner.evaluate import Evaluator, Outcome
from tuner.history import History, Told
from tuner.outcomes import Verdict, duplicate, find_duplicate, interrupted, judge, resampled, withdrawn
from tuner.proposals import Proposal, Proposals
from tuner.result import TrialRecord, TrialStatus
from tuner.samplers import make_sampler
from tuner.space import Config, config_key
from tuner.study import StudySpec
from tuner.studystore import StudyStore, worker_id
from tuner.targets import Target

MAX_DUPLICATES_IN_A_ROW = 200  # proposals in a row not measured (duplicates, skipped): nothing new comes
DUPLICATE, SKIPPED = "already-measured", "skipped by the surrogate"   # the kinds `_exhausted` counts
MAX_RESAMPLES_IN_A_ROW = 200  # proposals in a row breaking declared constraints: the region is tiny
SYSTEMATIC_AFTER = 5          # this many measured trials in a row failing alike stop the campaign
STDERR_TAIL_LINES = 15
WAIT_S = 1.0        # between looks while other workers measure the last trials
CLAIM_WAIT_S = 0.1  # between looks while a later trial of another worker holds this configuration


@dataclass
class Options:
    trials: int
    sampler: str = "tpe"
    seed: int | None = None
    pins: Config = field(default_factory=dict)
    storage_url: str | None = None
    results_dir: Path = Path("results")
    progress: bool = True


class Evaluate(Protocol):
    """Builds, runs and measures one configuration (`tuner.evaluate.Evaluator`, or a wrapper)."""

    def evaluate(self, config: Config) -> Outcome: ...


class Screen(Protocol):
    """Decides, before building, whether a candidate is worth measuring (the surrogate)."""

    def __call__(self, config: Config, history: History) -> Outcome | None:
        """An Outcome to record instead of measuring, or None to measure."""

    def observe(self, outcome: Outcome) -> dict[str, Any] | None:
        """Called with every evaluated outcome; returns an audit record to store, if any."""


@dataclass(frozen=True)
class TrialTold:
    """What observers hear after each trial this process told."""

    record: TrialRecord
    finished: int           # trials finished in the study now, every worker's
    elapsed_s: float        # this trial in the loop, from the look before `ask` to `tell`


Observer = Callable[[TrialTold], None]


class TinyFeasibleRegion(RunFailure):
    """Nearly every proposal breaks the declared constraints: rather than asking forever (a
    resampled proposal costs no trial), stop with the constraint broken most often. Exit 1."""


class Resamples:
    """Proposals in a row that broke the declared constraints, and which constraints they broke
    (the one loop and `--jobs` alike): past MAX_RESAMPLES_IN_A_ROW, TinyFeasibleRegion."""

    def __init__(self) -> None:
        self.in_a_row = 0
        self.broken: Counter[str] = Counter()

    def add(self, violated: Sequence[str]) -> None:
        """One more proposal that broke `violated`; raises when the region looks tiny."""
        self.broken.update(violated)
        self.in_a_row += 1
        if self.in_a_row >= MAX_RESAMPLES_IN_A_ROW:
            worst, n = self.broken.most_common(1)[0]
            raise TinyFeasibleRegion(
                f"the sampler proposed {self.in_a_row} configurations in a row that break the declared "
                f"constraints ({n} broke '{worst}'): the feasible region looks tiny; loosen the constraints "
                "or narrow the knobs' ranges (e.g. divisor knobs for tiles)")

    def clear(self) -> None:
        self.in_a_row = 0
        self.broken.clear()


class SystematicFailure(RunFailure):
    """Every configuration fails the same way: the study or the machine is broken, not the
    configurations (a missing library, a wrong compiler). Stops the campaign, exit 1."""


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial `number` in a campaign seeded with `seed`: a resumed or shared
    campaign continues the search instead of replaying the proposals it already made."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class Campaign:
    def __init__(self, spec: StudySpec, target: Target, options: Options, screen: Screen | None = None,
                 evaluator: Evaluate | None = None, observers: Sequence[Observer] = ()) -> None:
        self.spec = spec
        self.target = target
        self.options = options
        self.evaluator = evaluator or Evaluator(spec, target, options.results_dir)
        sampler = make_sampler(options.sampler, spec.space, options.seed, len(spec.objectives))
        self.store = StudyStore.open(spec, options.results_dir, options.storage_url, sampler)
        self.study = self.store.study
        self.screen = screen
        self.history = History(spec.objectives)
        if hasattr(self.evaluator, "measured_program"):     # a program measured once is not run again
            self.evaluator.measured_program = self.history.same_program
        self.proposals = Proposals(spec.space, spec.baseline, options.pins)
        self.observers: list[Observer] = list(observers)
        self.told_here: list[TrialRecord] = []      # trials this process told, in order
        self.log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)

    def _sampler_for(self) -> Callable[[int], optuna.samplers.BaseSampler] | None:
        """A fresh sampler seeded per trial number when the campaign is seeded (none for grid:
        its order is fixed by the seed, and it skips the points already visited)."""
        o = self.options
        if o.seed is None or o.sampler == "grid":
            return None
        return lambda number: make_sampler(o.sampler, self.spec.space, trial_seed(o.seed, number),
                                           len(self.spec.objectives))

    # --- reading the study -------------------------------------------------------------------
    def finished(self) -> int:
        """Trials finished in the whole study (every worker's)."""
        self.store.look(self.history)
        return self.history.finished

    def records(self) -> list[TrialRecord]:
        return list(self.history.records())

    # --- the loop ---------------------------------------------------------------------------------
    def run(self) -> int:
        """Run until `options.trials` trials have finished. Returns the number finished."""
        budget = self.options.trials
        idle: Counter[str] = Counter()        # proposals in a row not measured, by kind
        resamples = Resamples()
        sampler_for = self._sampler_for()
        waiting = False
        while True:
            t0 = time.perf_counter()
            look = self.store.look(self.history)
            if look.dead:                    # dead workers' trials: interrupted, retried below
                self.store.recover(look.dead)
                continue
            n, running = self.history.finished, look.running
            if n >= budget:
                break
            if n + len(running) >= budget:
                # wait for them: they finish, or their lease runs out and the trial comes back
                # here as interrupted, so this command still ends at exactly N
                if not waiting:
                    self.log(f"waiting: {n} trials finished and other workers are measuring the last {budget - n}")
                    waiting = True
                time.sleep(WAIT_S)
                continue
            waiting = False
            proposal = self.proposals.next(self.history)
            near_end = n + len(running) + len({r.worker for r in running}) + 2 >= budget
            trial, base, fixed = self._ask(proposal, sampler_for)
            faultpoint.hit("ask")
            if (near_end or fixed) and not self._claim(trial, base, fixed):
                if near_end:
                    self.log("stopping: other workers took the last trials")
                    break
                continue
            config = self.spec.space.sample(trial, self.options.pins)
            faultpoint.hit("sample")
            key = config_key(config)
            violated = self.spec.space.violations(config)
            if violated:                   # known before building: told infeasible, not counted
                base = replace(base, config=config, config_key=key)
                self._tell(trial, resampled(base, violated, self.history), t0)
                resamples.add(violated)
                continue
            resamples.clear()
            base, stored_at_ask = self._record(trial, base, fixed, config, key)
            faultpoint.hit("record")
            prior = self._prior(trial, key, stored_at_ask)
            if prior is not None:          # measured, or being measured by another worker
                self._tell(trial, duplicate(base, prior, self.history), t0)
                idle[DUPLICATE] += 1
                if self._exhausted(idle):
                    break
                continue
            outcome = self._evaluate(trial, base, config)
            if outcome.same_as is not None:
                self._same_program(trial, base, outcome, t0)
                idle[DUPLICATE] += 1
                if self._exhausted(idle):
                    break
                continue
            audit = self.screen.observe(outcome) if self.screen else None
            rec = self._tell(trial, judge(outcome, replace(base, audit=audit), self.history), t0)
            if rec is not None and rec.status == TrialStatus.PRUNED:
                idle[SKIPPED] += 1
                if self._exhausted(idle):
                    break
                continue
            idle.clear()
            if rec is not None and rec.measured:
                self._check_systematic(rec)
        return self.history.finished

    def _ask(self, proposal: Proposal | None,
             sampler_for: Callable[[int], optuna.samplers.BaseSampler] | None
             ) -> tuple[optuna.Trial, TrialRecord, bool]:
        """A new leased trial: the proposal's configuration fixed, or left to the sampler.
        Returns (trial, its record so far, whether its configuration is fixed)."""
        if proposal is None:
            trial = self.store.ask(TrialRecord(-1, TrialStatus.RUNNING), sampler_for=sampler_for)
        else:
            params, dists = proposal.params(self.spec.space, self.options.pins)
            trial = self.store.ask(proposal.record, params, dists, sampler_for=sampler_for)
        base = R.pending(trial)
        fixed = proposal is not None and base.config_key == proposal.record.config_key
        return trial, base, fixed

    def _record(self, trial: optuna.Trial, base: TrialRecord, fixed: bool, config: Config,
                key: str) -> tuple[TrialRecord, bool]:
        """Store the drawn configuration in the trial's record (what others must not measure
        meanwhile) unless it was stored at ask (a fixed trial's, unchanged by pins): the record,
        and whether it was stored at ask (`_prior` needs to know). One loop or `--jobs`."""
        stored_at_ask = fixed and key == base.config_key
        if not stored_at_ask:
            base = replace(base, config=config, config_key=key)
            self.store.write(trial, base)
        return base, stored_at_ask

    def _prior(self, trial: optuna.Trial, key: str, stored_at_ask: bool = False) -> TrialRecord | None:
        """The trial that measured this configuration or is measuring it (one loop or `--jobs`),
        asked after this trial's own record is written. Of two trials that pick one configuration
        at once, the one asked first measures it, and never both nor neither:
        - one asked earlier, still running: it measures, this trial is its duplicate;
        - one asked later: it backs off if it saw this trial's record when it looked, and measures
          if it looked before the record was written, which only its end tells, so this trial
          waits for it (rare: two workers choosing one configuration in the same instant). A
          configuration stored at ask (`stored_at_ask`: the baseline, a seeded point, a retry)
          was in its record before any later trial was asked, so later ones always back off
          (at their claim or here) and this trial need not wait.
        Counting every running trial instead left the configuration to nobody when each saw the
        other (the CI failure of test_two_workers_share_one_campaign); counting only earlier
        ones without waiting measured it twice."""
        prior = find_duplicate(key, self.history, trial.number)
        if prior is None:
            self.store.look(self.history)
            prior = find_duplicate(key, self.history, trial.number)
        while prior is None and not stored_at_ask and self.history.later(key, trial.number):
            time.sleep(CLAIM_WAIT_S)
            look = self.store.look(self.history)
            if look.dead:                 # a later trial's worker died: its trial is retried later
                self.store.recover(look.dead)
            prior = find_duplicate(key, self.history, trial.number)
        return prior

    def _same_program(self, trial: optuna.Trial, base: TrialRecord, outcome: Outcome, t0: float) -> None:
        """It built the very program another trial measured (tuner.evaluate.Evaluator.program_key):
        a duplicate of that trial, told its values and not counted, as a repeated configuration is."""
        prior = self.history.trials[outcome.same_as]
        audit = None
        if self.screen:      # an audited proposal is judged by its program's values all the same
            told = self.history.told.get(prior.config_key)
            values = (dict(zip((o.name for o in self.spec.objectives), told.values))
                      if told is not None and told.values is not None and prior.verified else None)
            audit = self.screen.observe(replace(outcome, values=values))
        rec = replace(base, build_key=outcome.build_key, program_key=outcome.extra.get("program_key", ""),
                      timing=dict(outcome.timing), detail=outcome.measurement.detail,
                      measurement=outcome.extra.get("measurement"), audit=audit,
                      surrogate=outcome.extra.get("surrogate", base.surrogate))
        self._tell(trial, duplicate(rec, prior, self.history), t0)

    def _claim(self, trial: optuna.Trial, base: TrialRecord, fixed: bool) -> bool:
        """A second look, after `ask`: near the end of the budget, whether this trial still fits
        (of the trials running now, the ones asked first have the budget first); for a fixed
        configuration, whether another worker took the same one at the same time. Two workers
        that look at once both see each other here, and exactly one backs off: its trial is
        told withdrawn (no configuration, nothing to retry)."""
        look = self.store.look(self.history)
        others = [r for r in look.running if r.number != trial.number]
        ahead = [r for r in others if r.number < trial.number]
        fits = self.history.finished + len(ahead) + 1 <= self.options.trials
        taken = fixed and (base.config_key in self.history.done
                           or any(r.config_key == base.config_key for r in ahead))
        if fits and not taken:
            return True
        why = ("not needed: other workers' trials complete the budget" if not fits
               else "not needed: another worker took the same configuration")
        self.store.tell(trial, withdrawn(base, why).record, None)
        return False

    def _evaluate(self, trial: optuna.Trial, base: TrialRecord, config: Config) -> Outcome:
        """Screen, then build, run and measure, holding the lease; a stop is recorded first."""
        try:
            with self.store.beat(trial, base):
                faultpoint.hit("evaluate")
                return self._screened(trial, config, base) or self.evaluator.evaluate(config)
        except KeyboardInterrupt:
            self.store.tell(trial, interrupted(base, "stopped by the user").record, None)
            raise
        except MachineFault as e:     # the machine, not the configuration: retried later
            self.store.tell(trial, interrupted(base, f"machine fault: {e}").record, None)
            raise

    def _screened(self, trial: optuna.Trial, config: Config, base: TrialRecord) -> Outcome | None:
        """The surrogate's verdict before anything is built (one loop or `--jobs`); None: measure
        it. An obvious point (tuner.seeds) is always measured, and so is a proposal its sampler
        marked `R.UNSCREENED_ATTR`: the surrogate does not judge them."""
        if not self.screen or base.seeded:
            return None
        if trial.storage.get_trial_system_attrs(trial._trial_id).get(R.UNSCREENED_ATTR):
            return None
        return self.screen(config, self.history)

    def _exhausted(self, idle: Counter[str]) -> bool:
        """The stop rule for a campaign whose proposals are no longer measured (one loop or
        `--jobs`): `idle` counts the proposals in a row that were duplicates or skipped by the
        surrogate; neither counts toward N, so without this rule such a campaign would never end.
        Says so when it stops."""
        n = sum(idle.values())
        if n < MAX_DUPLICATES_IN_A_ROW:
            return False
        if not idle[SKIPPED]:
            self.log(f"stopping: the sampler proposed {n} already-measured configurations in a row "
                     "(the space looks exhausted)")
        else:
            self.log(f"stopping: the sampler proposed {n} configurations in a row that were not measured "
                     f"({idle[SKIPPED]} {SKIPPED}, {idle[DUPLICATE]} repeats of a measured or skipped one): "
                     "the space looks exhausted, or the surrogate judges every proposal poor "
                     "(--surrogate off measures them)")
        return True

    def _tell(self, trial: optuna.Trial, verdict: Verdict, t0: float) -> TrialRecord | None:
        """Store and tell a verdict (a measurement is durable on return), learn it, tell the observers."""
        try:
            self.store.tell(trial, verdict.record, verdict.values, verdict.constraints)
        except UpdateFinishedTrialError:
            # another worker judged this one dead (its lease ran out) and took it back
            self.log(f"trial {trial.number}: taken over by another worker (lease expired); result dropped")
            return None
        faultpoint.hit("told")
        rec = replace(verdict.record, number=trial.number)
        self.history.add(rec, Told(verdict.values, verdict.constraints))
        self.told_here.append(rec)
        told = TrialTold(rec, self.history.finished, time.perf_counter() - t0)
        for observe in self.observers:
            observe(told)
        return rec

    # --- a broken study or machine ---------------------------------------------------------------
    def _check_systematic(self, rec: TrialRecord) -> None:
        """Stop when the baseline fails, or the first SYSTEMATIC_AFTER trials this run measured
        all failed for the same reason: spending the rest of the budget would show nothing."""
        if rec.baseline and rec.status == TrialStatus.FAILED:
            raise SystematicFailure(f"the baseline (trial {rec.number}) failed: {rec.reason}"
                                    + _tail(rec.detail))
        measured = [r for r in self.told_here if r.measured]
        if len(measured) != SYSTEMATIC_AFTER:
            return
        reasons = {(r.status, r.reason) for r in measured}
        if len(reasons) == 1 and rec.status == TrialStatus.FAILED:
            raise SystematicFailure(f"the first {SYSTEMATIC_AFTER} measured trials all failed: {rec.reason}"
                                    f" (trials {', '.join(str(r.number) for r in measured)})" + _tail(rec.detail))


def _tail(detail: str) -> str:
    lines = [ln for ln in detail.strip().splitlines() if ln.strip()][-STDERR_TAIL_LINES:]
    return ("; the last one's output ends with:\n  " + "\n  ".join(lines)) if lines else ""


__all__ = ["Campaign", "Evaluate", "Observer", "Options", "Resamples", "Screen", "SystematicFailure", "TinyFeasibleRegion",
           "TrialTold", "trial_seed", "worker_id"]

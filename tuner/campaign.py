"""The campaign: Optuna's ask-and-tell loop around build-run-measure.

Each finished trial is told (and so written to storage) before the next one starts, so a
crash, Ctrl-C or kill -9 loses nothing already measured. Running the same command again
continues the same study up to the same total; trials that a dead process left RUNNING are
marked failed ("interrupted") and their configurations are retried.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Protocol

import optuna
from optuna.trial import TrialState

from tuner import result as R
from tuner.result import TrialRecord, TrialStatus
from tuner.evaluate import Evaluator, Outcome
from tuner.records import FailureReason
from tuner.samplers import CONSTRAINT, make_sampler
from tuner.space import Config, config_key
from tuner.storage import open_storage, sync
from tuner.study import StudySpec
from tuner.targets import Target

MAX_DUPLICATES_IN_A_ROW = 200
RECORD_FIELDS = {f.name for f in fields(TrialRecord)} - {"number", "status", "extra", "version"}


@dataclass
class Options:
    trials: int
    sampler: str = "tpe"
    seed: int | None = None
    pins: Config = field(default_factory=dict)
    storage_url: str | None = None
    results_dir: Path = Path("results")
    progress: bool = True


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(worker: str) -> bool:
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return True          # another machine's worker: not ours to judge
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def open_study(spec: StudySpec, results_dir: Path, storage_url: str | None,
               sampler: optuna.samplers.BaseSampler | None = None, create: bool = True) -> optuna.Study:
    storage = open_storage(results_dir, storage_url)
    directions = [o.direction for o in spec.objectives]
    if create:
        return optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler,
                                   directions=directions, load_if_exists=True)
    return optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler)


class Screen(Protocol):
    """Decides, before building, whether a candidate is worth measuring (the surrogate)."""

    def __call__(self, config: Config, campaign: "Campaign") -> Outcome | None:
        """An Outcome to record instead of measuring, or None to measure."""

    def observe(self, outcome: Outcome) -> dict[str, Any] | None:
        """Called with every evaluated outcome; returns an audit record to store, if any."""


class Campaign:
    def __init__(self, spec: StudySpec, target: Target, options: Options,
                 screen: Screen | None = None) -> None:
        self.spec = spec
        self.target = target
        self.options = options
        self.evaluator = Evaluator(spec, target, options.results_dir)
        sampler = make_sampler(options.sampler, spec.space, options.seed, len(spec.objectives))
        self.study = open_study(spec, options.results_dir, options.storage_url, sampler)
        self.screen = screen     # the surrogate's hook: an Outcome to record instead of measuring
        self.done: dict[str, TrialRecord] = {}          # config_key -> its first finished record
        self._told: dict[str, optuna.trial.FrozenTrial] = {}   # config_key -> that trial (for duplicates)
        self.interrupted = False
        self.workers: set[str] = set()       # worker ids seen in the study (by _tally)
        self._near_end = True
        self._in_flight: dict[str, TrialRecord] = {}
        self.overheads_s: list[float] = []   # per measured trial: loop time minus build and run
        self.log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)

    # --- resume ----------------------------------------------------------------------
    def recover(self) -> int:
        """Fail what dead workers left RUNNING; requeue interrupted configurations. Returns how many."""
        storage = self.study._storage
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            rec = self._record(t)
            if not _alive(rec.worker):
                R.write_to_storage(storage, t._trial_id, replace(rec, status=TrialStatus.INTERRUPTED,
                                                                 detail="its process died"))
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        trials = self.study.get_trials(deepcopy=False)
        recs = [self._record(t) for t in trials]
        for t, rec in zip(trials, recs):
            if rec.finished and rec.config_key:
                self._learn(rec, t)
        pending = {r.config_key for r in recs if r.status == TrialStatus.WAITING}
        # no retry beyond the budget: another worker may have finished the campaign meanwhile
        room = self.options.trials - self.finished() - len(pending)
        requeued = 0
        for t, rec in zip(trials, recs):
            key = rec.config_key
            if (rec.status == TrialStatus.INTERRUPTED and key
                    and key not in self.done and key not in pending and requeued < room):
                queued = TrialRecord(-1, TrialStatus.WAITING, config_key=key, retry_of=t.number)
                self.study.enqueue_trial(t.params, user_attrs=R.queued_attrs(queued))
                pending.add(key)
                requeued += 1
        return requeued

    def _record(self, t: optuna.trial.FrozenTrial) -> TrialRecord:
        return TrialRecord.from_trial(t, self.spec.objectives)

    def _learn(self, rec: TrialRecord, t: optuna.trial.FrozenTrial) -> None:
        """Remember a finished configuration (the first trial that finished it)."""
        if rec.status != TrialStatus.DUPLICATE and rec.config_key not in self.done:
            self.done[rec.config_key] = rec
            self._told[rec.config_key] = t

    def finished(self) -> int:
        """Trials finished in the whole study (every worker's), learning their configurations too,
        so that workers sharing a storage do not measure one configuration twice."""
        return self._tally()[0]

    def _tally(self) -> tuple[int, list[TrialRecord]]:
        """One look at the storage: how many trials finished (as `finished`), and the trials that
        live workers are measuring now (another machine's worker counts as live)."""
        n = 0
        running = []
        self.workers = {worker_id()}
        for t in self.study.get_trials(deepcopy=False,
                                       states=(TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING)):
            rec = self._record(t)
            self.workers.add(rec.worker)
            if t.state == TrialState.RUNNING:
                if _alive(rec.worker):
                    running.append(rec)
                continue
            if rec.finished:
                n += 1
                if rec.config_key:
                    self._learn(rec, t)
        return n, running

    def _claim(self, trial: optuna.Trial) -> dict[str, TrialRecord] | None:
        """Whether the trial just asked still fits the budget, other workers' included: of the
        trials running now, the ones asked first (lower storage id) have the budget first.
        Returns what the others are measuring (by config_key), or None: then the trial is told
        as not needed ("interrupted", no configuration: nothing to retry) and the caller stops.

        A check before `ask` alone lets two workers that look at once both take the last
        trial; this look after `ask` sees both, and exactly one of them backs off. It costs a
        second storage read, so it is done only near the end of the budget: within one trial
        per worker seen (and one more for a newcomer) of it."""
        if not self._near_end:
            return self._in_flight      # as seen just before `ask`
        n, running = self._tally()
        ahead = [r for r in running if r.number < trial.number]
        if n + len(ahead) + 1 <= self.options.trials:
            return {r.config_key: r for r in running if r.number != trial.number and r.config_key}
        R.write(trial, TrialRecord(trial.number, TrialStatus.INTERRUPTED, worker=worker_id(),
                                   detail="not needed: other workers' trials complete the budget"))
        self.study.tell(trial, state=TrialState.FAIL)
        sync(self.study._storage)
        return None

    # --- the loop ----------------------------------------------------------------------
    def run(self, on_trial: Callable[[TrialRecord], None] | None = None) -> int:
        """Run until `options.trials` trials have finished. Returns the number finished now."""
        self.recover()
        duplicates_in_a_row = 0
        while True:
            t_loop = time.perf_counter()
            n, running = self._tally()
            if n >= self.options.trials:
                break
            if n + len(running) >= self.options.trials:
                self.log(f"stopping: {n} trials finished and other workers are measuring the last "
                         f"{self.options.trials - n}")
                break
            self._near_end = n + len(running) + len(self.workers) + 1 >= self.options.trials
            self._in_flight = {r.config_key: r for r in running if r.config_key}
            trial = self.study.ask()
            in_flight = self._claim(trial)
            if in_flight is None:
                self.log("stopping: other workers took the last trials")
                break
            config = self.spec.space.sample(trial, self.options.pins)
            key = config_key(config)
            base = replace(R.pending(trial), config=config, config_key=key).running(worker_id())
            R.write(trial, base)
            prior = self.done.get(key) or in_flight.get(key)
            if prior is not None:      # measured, or being measured by another worker
                self._tell_duplicate(trial, base, prior)
                sync(self.study._storage)
                duplicates_in_a_row += 1
                if duplicates_in_a_row >= MAX_DUPLICATES_IN_A_ROW:
                    self.log(f"stopping: the sampler proposed {duplicates_in_a_row} already-measured "
                             "configurations in a row (the space looks exhausted)")
                    break
                continue
            duplicates_in_a_row = 0
            try:
                outcome = (self.screen(config, self) if self.screen else None) or self.evaluator.evaluate(config)
            except KeyboardInterrupt:
                self._tell_interrupted(trial, base)
                sync(self.study._storage)
                self.interrupted = True
                raise
            audit = self.screen.observe(outcome) if self.screen else None
            frozen = self._tell(trial, replace(base, audit=audit), outcome)
            sync(self.study._storage)     # durable before the next measurement starts
            rec = self._record(frozen)
            self._learn(rec, frozen)
            busy = outcome.timing.get("build_s", 0.0) + outcome.timing.get("run_s", 0.0)
            self.overheads_s.append(time.perf_counter() - t_loop - busy)
            if on_trial:
                on_trial(rec)
        return self.finished()

    # --- telling Optuna ----------------------------------------------------------------
    def _worst_values(self) -> list[float] | None:
        """Placeholder values for an infeasible trial: the worst seen (constraints do the rest)."""
        vals = [r.values for r in self.done.values() if r.status == TrialStatus.COMPLETE]
        if not vals:
            return None
        out = []
        for o in self.spec.objectives:
            col = [v[o.name] for v in vals]
            out.append(max(col) if o.direction == "minimize" else min(col))
        return out

    def _tell(self, trial: optuna.Trial, base: TrialRecord, outcome: Outcome) -> optuna.trial.FrozenTrial:
        m = outcome.measurement
        # an outcome's extras fill the record's fields of that name (surrogate, measurement, ...);
        # any other key is kept in `extra`, never dropped
        named = {k: v for k, v in outcome.extra.items() if k in RECORD_FIELDS}
        others = {k: v for k, v in outcome.extra.items() if k not in RECORD_FIELDS}
        rec = replace(base, status=TrialStatus.COMPLETE, metrics=dict(m.metrics), samples_ms=tuple(m.samples_ms),
                      checksum=m.checksum, build_key=outcome.build_key, timing=dict(outcome.timing),
                      detail=m.detail[-2000:], lease=None, **named, extra={**base.extra, **others})
        if m.reason == FailureReason.PRUNED and outcome.values is not None:
            # told with the predicted values, so the sampler learns the region is poor
            R.write(trial, replace(rec, status=TrialStatus.PRUNED, reason=FailureReason.PRUNED))
            # a predicted failure is told as infeasible, a predicted poor configuration as feasible
            predicted_failure = bool((rec.surrogate or {}).get("predicted_failure"))
            trial.set_constraint(CONSTRAINT, 1.0 if predicted_failure else 0.0)
            return self.study.tell(trial, [outcome.values[o.name] for o in self.spec.objectives])
        if outcome.ok:
            R.write(trial, rec)
            trial.set_constraint(CONSTRAINT, 0.0)
            return self.study.tell(trial, [outcome.values[o.name] for o in self.spec.objectives])
        reason = m.reason or FailureReason.CRASH
        if reason == FailureReason.INFEASIBLE:
            worst = self._worst_values()
            R.write(trial, replace(rec, status=TrialStatus.INFEASIBLE, reason=reason))
            trial.set_constraint(CONSTRAINT, float(max(1, len(outcome.violated))))
            if worst is not None:   # told through Optuna's constraint support
                return self.study.tell(trial, worst)
            return self.study.tell(trial, state=TrialState.FAIL)
        R.write(trial, replace(rec, status=TrialStatus.FAILED, reason=reason))
        return self.study.tell(trial, state=TrialState.FAIL)

    def _tell_duplicate(self, trial: optuna.Trial, base: TrialRecord, prior: TrialRecord) -> None:
        R.write(trial, replace(base, status=TrialStatus.DUPLICATE, duplicate_of=prior.number, lease=None))
        told = self._told.get(prior.config_key) if prior.status != TrialStatus.RUNNING else None
        if told is not None and told.state == TrialState.COMPLETE and told.values is not None:
            for key, value in told.constraints.items():
                trial.set_constraint(key, value)
            self.study.tell(trial, told.values)
        else:
            self.study.tell(trial, state=TrialState.FAIL)

    def _tell_interrupted(self, trial: optuna.Trial, base: TrialRecord) -> None:
        R.write(trial, replace(base, status=TrialStatus.INTERRUPTED, detail="stopped by the user", lease=None))
        self.study.tell(trial, state=TrialState.FAIL)

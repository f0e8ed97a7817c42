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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import optuna
from optuna.trial import TrialState

from tuner import trials as T
from tuner.evaluate import Evaluator, Outcome
from tuner.records import FailureReason
from tuner.samplers import CONSTRAINT, make_sampler
from tuner.space import Config, config_key
from tuner.storage import open_storage, sync
from tuner.study import StudySpec
from tuner.targets import Target

MAX_DUPLICATES_IN_A_ROW = 200


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
        self.done: dict[str, optuna.trial.FrozenTrial] = {}
        self.interrupted = False
        self.workers: set[str] = set()       # worker ids seen in the study (by _tally)
        self._near_end = True
        self._in_flight: dict[str, optuna.trial.FrozenTrial] = {}
        self.overheads_s: list[float] = []   # per measured trial: loop time minus build and run
        self.log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)

    # --- resume ----------------------------------------------------------------------
    def recover(self) -> int:
        """Fail what dead workers left RUNNING; requeue interrupted configurations. Returns how many."""
        storage = self.study._storage
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if not _alive(t.user_attrs.get("worker", "")):
                storage.set_trial_user_attr(t._trial_id, "result", {"status": T.INTERRUPTED,
                                                                    "detail": "its process died"})
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        trials = self.study.get_trials(deepcopy=False)
        for t in trials:
            status = t.user_attrs.get("result", {}).get("status")
            if t.state.is_finished() and status != T.INTERRUPTED and "config_key" in t.user_attrs:
                self.done.setdefault(t.user_attrs["config_key"], t)
        pending = {t.user_attrs.get("config_key") for t in trials if t.state == TrialState.WAITING}
        pending |= {t.user_attrs.get("retry_key") for t in trials if t.state == TrialState.WAITING}
        # no retry beyond the budget: another worker may have finished the campaign meanwhile
        room = self.options.trials - self.finished() - sum(t.state == TrialState.WAITING for t in trials)
        requeued = 0
        for t in trials:
            key = t.user_attrs.get("config_key")
            if (t.user_attrs.get("result", {}).get("status") == T.INTERRUPTED and key
                    and key not in self.done and key not in pending and requeued < room):
                self.study.enqueue_trial(t.params, user_attrs={"retry_of": t.number, "retry_key": key})
                pending.add(key)
                requeued += 1
        return requeued

    def finished(self) -> int:
        """Trials finished in the whole study (every worker's), learning their configurations too,
        so that workers sharing a storage do not measure one configuration twice."""
        return self._tally()[0]

    def _tally(self) -> tuple[int, list[optuna.trial.FrozenTrial]]:
        """One look at the storage: how many trials finished (as `finished`), and the trials that
        live workers are measuring now (another machine's worker counts as live)."""
        n = 0
        running = []
        self.workers = {worker_id()}
        for t in self.study.get_trials(deepcopy=False,
                                       states=(TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING)):
            self.workers.add(t.user_attrs.get("worker", ""))
            if t.state == TrialState.RUNNING:
                if _alive(t.user_attrs.get("worker", "")):
                    running.append(t)
                continue
            if t.user_attrs.get("result", {}).get("status") != T.INTERRUPTED:
                n += 1
                key = t.user_attrs.get("config_key")
                if key and t.user_attrs.get("result", {}).get("status") != T.DUPLICATE:
                    self.done.setdefault(key, t)
        return n, running

    def _claim(self, trial: optuna.Trial) -> dict[str, optuna.trial.FrozenTrial] | None:
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
        ahead = [t for t in running if t._trial_id < trial._trial_id]
        if n + len(ahead) + 1 <= self.options.trials:
            return {t.user_attrs["config_key"]: t for t in running
                    if t._trial_id != trial._trial_id and "config_key" in t.user_attrs}
        trial.set_user_attr("worker", worker_id())
        trial.set_user_attr("result", {"status": T.INTERRUPTED,
                                       "detail": "not needed: other workers' trials complete the budget"})
        self.study.tell(trial, state=TrialState.FAIL)
        sync(self.study._storage)
        return None

    # --- the loop ----------------------------------------------------------------------
    def run(self, on_trial: Callable[[T.TrialRecord], None] | None = None) -> int:
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
            self._in_flight = {t.user_attrs["config_key"]: t for t in running if "config_key" in t.user_attrs}
            trial = self.study.ask()
            in_flight = self._claim(trial)
            if in_flight is None:
                self.log("stopping: other workers took the last trials")
                break
            config = self.spec.space.sample(trial, self.options.pins)
            key = config_key(config)
            trial.set_user_attr("config", config)
            trial.set_user_attr("config_key", key)
            trial.set_user_attr("worker", worker_id())
            prior = self.done.get(key) or in_flight.get(key)
            if prior is not None:      # measured, or being measured by another worker
                self._tell_duplicate(trial, prior)
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
                self._tell_interrupted(trial)
                sync(self.study._storage)
                self.interrupted = True
                raise
            audit = self.screen.observe(outcome) if self.screen else None
            frozen = self._tell(trial, outcome, {"audit": audit} if audit else {})
            sync(self.study._storage)     # durable before the next measurement starts
            self.done[key] = frozen
            busy = outcome.timing.get("build_s", 0.0) + outcome.timing.get("run_s", 0.0)
            self.overheads_s.append(time.perf_counter() - t_loop - busy)
            if on_trial:
                on_trial(T.record(frozen, self.spec.objectives))
        return self.finished()

    # --- telling Optuna ----------------------------------------------------------------
    def _worst_values(self) -> list[float] | None:
        """Placeholder values for an infeasible trial: the worst seen (constraints do the rest)."""
        vals = [t.values for t in self.done.values()
                if t.state == TrialState.COMPLETE and t.user_attrs.get("result", {}).get("status") == T.COMPLETE]
        if not vals:
            return None
        out = []
        for i, o in enumerate(self.spec.objectives):
            col = [v[i] for v in vals]
            out.append(max(col) if o.direction == "minimize" else min(col))
        return out

    def _tell(self, trial: optuna.Trial, outcome: Outcome, extra: dict[str, Any]) -> optuna.trial.FrozenTrial:
        m = outcome.measurement
        result: dict[str, Any] = {
            "metrics": dict(m.metrics), "samples_ms": list(m.samples_ms), "checksum": m.checksum,
            "build_key": outcome.build_key, "timing": outcome.timing, "detail": m.detail[-2000:],
            **outcome.extra, **extra,
        }
        if m.reason == FailureReason.PRUNED and outcome.values is not None:
            # told with the predicted values, so the sampler learns the region is poor
            result.update(status=T.PRUNED, reason=str(m.reason))
            trial.set_user_attr("result", result)
            # a predicted failure is told as infeasible, a predicted poor configuration as feasible
            trial.set_constraint(CONSTRAINT, 1.0 if outcome.extra.get("predicted_failure") else 0.0)
            return self.study.tell(trial, [outcome.values[o.name] for o in self.spec.objectives])
        if outcome.ok:
            result["status"] = T.COMPLETE
            trial.set_user_attr("result", result)
            trial.set_constraint(CONSTRAINT, 0.0)
            return self.study.tell(trial, [outcome.values[o.name] for o in self.spec.objectives])
        reason = m.reason or FailureReason.CRASH
        result["reason"] = str(reason)
        if reason == FailureReason.INFEASIBLE:
            result["status"] = T.INFEASIBLE
            worst = self._worst_values()
            trial.set_user_attr("result", result)
            trial.set_constraint(CONSTRAINT, float(max(1, len(outcome.violated))))
            if worst is not None:   # told through Optuna's constraint support
                return self.study.tell(trial, worst)
            return self.study.tell(trial, state=TrialState.FAIL)
        result["status"] = T.FAILED
        trial.set_user_attr("result", result)
        return self.study.tell(trial, state=TrialState.FAIL)

    def _tell_duplicate(self, trial: optuna.Trial, prior: optuna.trial.FrozenTrial) -> None:
        result = dict(prior.user_attrs.get("result", {}))
        status = T.RUNNING if prior.state == TrialState.RUNNING else result.get("status", T.FAILED)
        result.update(status=T.DUPLICATE, duplicate_of=prior.number, prior_status=status)
        trial.set_user_attr("result", result)
        if prior.state == TrialState.COMPLETE and prior.values is not None:
            for key, value in prior.constraints.items():
                trial.set_constraint(key, value)
            self.study.tell(trial, prior.values)
        else:
            self.study.tell(trial, state=TrialState.FAIL)

    def _tell_interrupted(self, trial: optuna.Trial) -> None:
        trial.set_user_attr("result", {"status": T.INTERRUPTED, "detail": "stopped by the user"})
        self.study.tell(trial, state=TrialState.FAIL)


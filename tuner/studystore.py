"""A study shared by workers, as the campaign uses it: the one module that touches Optuna internals.

The campaign asks this adapter for a new trial, stores records on it, tells results, and looks at
every worker's trials once per trial. Everything that needs Optuna's private API (`_storage`,
`_study_id`, `_trial_id`, popping a queued trial, creating a trial from a template) is here, so an
Optuna upgrade breaks one file.

Leases: who is measuring a RUNNING trial, and is it alive?
  * A trial is created RUNNING with its record (worker `host:pid` and a lease timestamp) in one
    storage write (`create_new_trial` with a template trial), so there is no instant in which a
    trial runs without an owner: a process killed right after `ask` leaves a trial that names it.
  * A worker on this machine is alive while its process is (`kill(pid, 0)`, and the process
    started before the lease: a reused pid after a reboot is not the owner).
  * A worker on another machine: on a database, Optuna's own heartbeat (`RDBStorage(heartbeat_interval,
    grace_period)`; the worker records a heartbeat every heartbeat_s() while it measures and
    `fail_stale_trials` fails the trials of silent workers, whoever calls it); a trial killed
    before its first heartbeat is judged by its lease. On a journal, by the lease, which the
    worker renews every heartbeat_s() while it measures.
  * A trial with no owner at all (queued by Optuna's `enqueue_trial` and popped by a process that
    died before writing its lease; journals of schema 1) is judged by its start time.
A dead trial is told FAIL with its record marked interrupted; the campaign retries its configuration.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, TrialState

from tuner import faultpoint
from tuner import result as R
from tuner.history import History, Told
from tuner.result import TrialRecord, TrialStatus
from tuner.storage import grace_s, heartbeat_s, open_storage, sync


def this_host() -> str:
    """The machine name in worker ids ($TUNE_HOST overrides it: containers sharing a hostname)."""
    return os.environ.get("TUNE_HOST") or socket.gethostname()


def worker_id() -> str:
    return f"{this_host()}:{os.getpid()}"


def _process_start(pid: int) -> float | None:
    """When a process started (epoch seconds), on Linux; None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rpartition(")")[2].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def local_owner_alive(worker: str, lease: float | None) -> bool | None:
    """Whether the process named by a worker id on this machine still runs; None if on another."""
    host, _, pid_text = worker.rpartition(":")
    if host != this_host():
        return None
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        pass
    started = _process_start(pid)
    if lease is not None and started is not None and started > lease + 1.0:
        return False          # the pid was reused by a process younger than the lease
    return True


@dataclass(frozen=True)
class Look:
    """One read of the study: what finished is in the history; these are running or dead."""

    running: list[TrialRecord]                 # live, any worker
    dead: list[tuple[int, TrialRecord]]        # (storage trial id, record) of RUNNING trials nobody runs


def _started(t: FrozenTrial) -> float | None:
    return t.datetime_start.timestamp() if t.datetime_start else None


class StudyStore:
    """The campaign's narrow view of an Optuna study (see the module docstring)."""

    def __init__(self, study: optuna.Study, objectives: Sequence[Any], worker: str | None = None) -> None:
        self.study = study
        self.objectives = objectives
        self.worker = worker or worker_id()
        self._storage = study._storage
        self._heartbeat = bool(getattr(self._storage, "heartbeat_interval", None))
        self._finished: dict[int, tuple[TrialRecord, Told]] = {}   # trial id -> never changes again

    @classmethod
    def open(cls, spec: Any, results_dir: Path, url: str | None, sampler: optuna.samplers.BaseSampler | None = None,
             create: bool = True) -> "StudyStore":
        return cls(open_study(spec, results_dir, url, sampler, create), spec.objectives)

    # --- looking ------------------------------------------------------------------------------
    def look(self, history: History, now: float | None = None) -> Look:
        """Read every trial once: finished ones go into `history`; RUNNING ones are live or dead."""
        now = time.time() if now is None else now
        if self._heartbeat:
            optuna.storages.fail_stale_trials(self.study)    # other workers' silent trials
        unbeaten = self._unbeaten() if self._heartbeat else set()
        running: list[TrialRecord] = []
        dead: list[tuple[int, TrialRecord]] = []
        for t in self.study.get_trials(deepcopy=False):
            cached = self._finished.get(t._trial_id)
            if cached is not None:
                history.add(*cached)
                continue
            rec = TrialRecord.from_trial(t, self.objectives)
            if t.state.is_finished():
                told = Told(tuple(t.values) if t.state == TrialState.COMPLETE and t.values else None,
                            tuple(sorted(t.constraints.items())))
                self._finished[t._trial_id] = (rec, told)
                history.add(rec, told)
                continue
            history.add(rec)
            if t.state == TrialState.RUNNING:
                if self._alive(rec, t, now, t._trial_id in unbeaten):
                    running.append(rec)
                else:
                    dead.append((t._trial_id, rec))
        history.set_running(running)
        return Look(running, dead)

    def _alive(self, rec: TrialRecord, t: FrozenTrial, now: float, unbeaten: bool) -> bool:
        if rec.worker == self.worker:
            return True
        local = local_owner_alive(rec.worker, rec.lease) if rec.worker else None
        if local is not None:
            return local
        since = rec.lease if rec.lease is not None else _started(t)
        if rec.worker and self._heartbeat and not unbeaten:
            return True           # Optuna's heartbeat judges it: fail_stale_trials ran above
        return since is None or now - since < grace_s()

    def _unbeaten(self) -> set[int]:
        """RUNNING trials that never recorded a heartbeat (their worker died right after creating
        them, or runs a tune without heartbeats). Optuna's `fail_stale_trials` skips these."""
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        with _create_scoped_session(self._storage.scoped_session) as session:
            rows = (session.query(models.TrialModel.trial_id)
                    .filter(models.TrialModel.study_id == self.study._study_id)
                    .filter(models.TrialModel.state == TrialState.RUNNING)
                    .filter(~models.TrialModel.heartbeats.any()).all())
        return {r[0] for r in rows}

    def recover(self, dead: Sequence[tuple[int, TrialRecord]], detail: str = "its process died") -> int:
        """Mark dead workers' trials interrupted (their configurations get retried). Returns how many."""
        n = 0
        for trial_id, rec in dead:
            try:
                R.write_to_storage(self._storage, trial_id,
                                   replace(rec, status=TrialStatus.INTERRUPTED, detail=detail, lease=None))
                if self._storage.set_trial_state_values(trial_id, TrialState.FAIL):
                    n += 1
            except UpdateFinishedTrialError:
                pass              # another worker recovered it first
        if n:
            self.sync()
        return n

    # --- one trial ------------------------------------------------------------------------------
    def ask(self, rec: TrialRecord, params: dict[str, Any] | None = None,
            distributions: dict[str, Any] | None = None,
            sampler_for: Callable[[int], optuna.samplers.BaseSampler] | None = None) -> optuna.Trial:
        """A new trial, RUNNING and leased to this worker in the same storage write.

        `params` (sampler values, with their `distributions`) fix the configuration (a retry, the
        baseline, a seeded point). `sampler_for(number)` gives the sampler for this trial number
        (a seeded campaign reseeds per trial so that a resumed run continues, not repeats).
        A trial queued with Optuna's `enqueue_trial` (old journals, users' scripts) goes first,
        with its own params and record: then `rec` and `params` wait for the next trial (read the
        trial's record with `tuner.result.pending`).
        """
        leased = rec.running(self.worker)
        popped = self.study._pop_waiting_trial_id()
        if popped is not None:
            trial_id = popped
        else:
            template = FrozenTrial(
                number=-1, state=TrialState.RUNNING, value=None, values=None,
                datetime_start=_dt.datetime.now(), datetime_complete=None, params=dict(params or {}),
                distributions=dict(distributions or {}), user_attrs=leased.to_attrs(), system_attrs={},
                intermediate_values={}, trial_id=-1)
            trial_id = self._storage.create_new_trial(self.study._study_id, template_trial=template)
        faultpoint.hit("created")
        if self._heartbeat:
            self._storage.record_heartbeat(trial_id)
        if sampler_for is not None:
            self.study.sampler = sampler_for(self._storage.get_trial_number_from_id(trial_id))
        self.study._thread_local.cached_all_trials = None      # the sampler sees every trial so far
        trial = optuna.Trial(self.study, trial_id)
        if popped is not None:     # queued with Optuna: its own params and record, leased now
            R.write(trial, R.pending(trial).running(self.worker))
        return trial

    def write(self, trial: optuna.Trial, rec: TrialRecord) -> None:
        R.write(trial, rec)

    def tell(self, trial: optuna.Trial, rec: TrialRecord, values: Sequence[float] | None,
             constraints: Sequence[tuple[str, float]] = ()) -> None:
        """Store the final record, the constraints and the result. A measurement (or an
        interrupted trial) is durable when this returns: the fsync covers every record before it.
        A verdict that measured nothing (skipped by the surrogate, a duplicate, a broken
        constraint, withdrawn) is written but not fsynced: the next measurement's fsync covers it,
        and a power cut before that loses no measurement, only a proposal the campaign makes
        again. In a campaign where the surrogate skips most proposals, that fsync was most of
        the storage's time per trial."""
        faultpoint.hit("tell")
        R.write(trial, rec)
        faultpoint.hit("told-record")
        for name, value in constraints:
            trial.set_constraint(name, value)
        faultpoint.hit("told-constraint")
        # Optuna's `Study.tell` without its deep copy of the finished trial (every parameter,
        # attribute and record: a third of the storage's time per trial at 384 knobs)
        if values is None:
            _tell_with_warning(self.study, trial, state=TrialState.FAIL)
        else:
            _tell_with_warning(self.study, trial, list(values))
        if rec.measured or rec.status == TrialStatus.INTERRUPTED:
            self.sync()

    def number(self, trial: optuna.Trial) -> int:
        return trial.number

    @contextlib.contextmanager
    def beat(self, trial: optuna.Trial, rec: TrialRecord) -> Iterator[None]:
        """While measuring: prove this worker is alive every heartbeat_s() (Optuna's heartbeat on a
        database, a renewed lease on a journal), so other machines do not take the trial over."""
        stop = threading.Event()
        lock = threading.Lock()
        interval = heartbeat_s()

        def renew() -> None:
            while not stop.wait(interval):
                with lock:
                    if stop.is_set():
                        return
                    try:
                        if self._heartbeat:
                            self._storage.record_heartbeat(trial._trial_id)
                        else:
                            R.write(trial, replace(rec, lease=time.time()))
                    except Exception:     # the main thread meets any storage fault itself
                        return

        thread = threading.Thread(target=renew, name=f"tune-lease-{trial.number}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            with lock:
                stop.set()
            thread.join()

    def sync(self) -> None:
        """Everything written so far is durable (fsync on a journal; databases commit per write)."""
        sync(self._storage)


def open_study(spec: Any, results_dir: Path, storage_url: str | None,
               sampler: optuna.samplers.BaseSampler | None = None, create: bool = True) -> optuna.Study:
    """The Optuna study of a campaign (created on first use unless `create` is False: KeyError)."""
    storage = open_storage(results_dir, storage_url)
    directions = [o.direction for o in spec.objectives]
    if create:
        return optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler,
                                   directions=directions, load_if_exists=True)
    return optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler)


__all__ = ["Look", "StudyStore", "local_owner_alive", "open_study", "this_host", "worker_id"]

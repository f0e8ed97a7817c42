"""The trial record: what one trial of a campaign is, typed and versioned.

Every reader (status, Pareto, export, the surrogate, confirm, progress) and every writer (the
campaign) of a trial's data goes through this module; it is the only code that reads or writes
Optuna trial user attributes. Optuna keeps what it needs itself (params, told values, state,
constraints); the rest of a trial lives here, in one JSON user attribute ``"tune"`` holding a
``TrialRecord`` and its schema version. One attribute, because every ``set_user_attr`` is one
journal record (and one database round trip): a trial writes it at most three times (created
with its lease, its configuration once sampled, its result at tell).

Schema versions (``SCHEMA_VERSION``; a record stores the version that wrote it as ``"v"``):

* 1 (before this module, no ``"v"``): an untyped ``user_attrs["result"]`` dict (status,
  metrics, samples_ms, checksum, build_key, timing, detail, reason, surrogate, audit,
  duplicate_of, prior_status, predicted_failure) beside separate attributes ``config``,
  ``config_key``, ``worker``, ``baseline``, ``retry_of`` and ``retry_key``. Still read
  (``tests/data/journal_v1`` is such a journal); never written.
* 2: ``user_attrs["tune"] = {"v": 2, "status": ..., <non-default fields>}``.

Adding a field: add it to ``TrialRecord`` with a default (``None`` or empty), and that is all:
``to_attrs`` writes every non-default field under its own name and ``from_trial`` reads it
back; records written before the field existed read as the default. Bump ``SCHEMA_VERSION``
only when the meaning of an existing field changes, and convert old records in
``_payload``. Keys a newer version wrote that this one does not know are kept in ``extra`` and
written back unchanged, so an older tune never drops them.
"""

from __future__ import annotations

import enum
import time
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Mapping, Sequence

from optuna.trial import FrozenTrial, TrialState

from tuner.records import FailureReason

SCHEMA_VERSION = 2
ATTR = "tune"                      # the one user attribute a record lives in
# A sampler sets this system attribute on a trial it asks to be measured, not judged by the
# surrogate: a deliberate probe (anchored's sweep of an -O level or target option) whose effect
# the model has no data for, as the obvious points (tuner.seeds) are never judged.
UNSCREENED_ATTR = "tune:unscreened"


class TrialStatus(str, enum.Enum):
    """What became of a trial, as users see it (stored by value, so the names are stable).

    Optuna's TrialState says whether Optuna is done with a trial; this says what it means for
    the campaign: `reason` (a FailureReason) refines FAILED and INFEASIBLE.
    """

    COMPLETE = "complete"          # built, run, verified: it has objective values
    FAILED = "failed"              # built or run, and that failed (reason says how)
    INFEASIBLE = "infeasible"      # breaks a constraint (checked before building, or reported by the run)
    DUPLICATE = "duplicate"        # the sampler proposed a configuration measured before (duplicate_of)
    PRUNED = "pruned"              # not measured: the surrogate predicted it cannot reach the front
    INTERRUPTED = "interrupted"    # stopped by the user, a dead process or the machine; retried later
    WITHDRAWN = "withdrawn"        # asked for, then given back unused: another worker took the last
                                   # budget or the same configuration at the same moment; never retried
    RUNNING = "running"            # being measured now (or its process died: the next run recovers it)
    WAITING = "waiting"            # queued in Optuna, not started

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        """Counts toward the campaign's budget (`--trials N` stops when N trials are finished)."""
        return self not in (TrialStatus.INTERRUPTED, TrialStatus.WITHDRAWN, TrialStatus.RUNNING,
                            TrialStatus.WAITING)

    @property
    def measured(self) -> bool:
        """Was built and run (or failed trying): what the surrogate learns from, what costs time."""
        return self in (TrialStatus.COMPLETE, TrialStatus.FAILED)


_DEFAULTS: dict[str, Any] = {}       # filled below: field name -> default value


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the campaign knows it. Frozen: a new record replaces an old one."""

    number: int
    status: TrialStatus
    config: Mapping[str, Any] = field(default_factory=dict)       # knob -> value (the knob's own values)
    config_key: str = ""                                          # tuner.space.config_key(config)
    values: Mapping[str, float] = field(default_factory=dict)     # objective -> value; COMPLETE only
    metrics: Mapping[str, float] = field(default_factory=dict)    # what the run reported
    reason: FailureReason | None = None                           # why FAILED / INFEASIBLE / PRUNED
    detail: str = ""                                              # stderr tail, violated constraint, ...
    timing: Mapping[str, float] = field(default_factory=dict)     # build_s, run_s, total_s, surrogate_s
    worker: str = ""                                              # host:pid of the process that ran it
    baseline: bool = False                                        # the study's baseline configuration
    duplicate_of: int | None = None                               # DUPLICATE: the trial measured first
    retry_of: int | None = None                                   # a retry of this INTERRUPTED trial
    checksum: str | None = None                                   # of the program's output
    build_key: str = ""                                           # content address of the build
    samples_ms: tuple[float, ...] = ()                            # the timed repetitions
    surrogate: Mapping[str, Any] | None = None                    # PRUNED: the predictions and why
    audit: Mapping[str, Any] | None = None                        # an audited prune: was it right?
    lease: float | None = None                                    # RUNNING: epoch s its owner took it
    resampled: bool = False                                       # INFEASIBLE by a declared constraint, found
                                                                  # before building: not counted (#10 item 1)
    uncounted: bool = False                                       # DUPLICATE or PRUNED: told to the sampler,
                                                                  # not counted toward the budget (#10; older
                                                                  # journals' duplicates and prunes counted)
    seeded: bool = False                                          # one of the obvious points (tuner.seeds):
                                                                  # judged by a paired confirmation (#10 item 3)
    measurement: Mapping[str, Any] | None = None                  # issue #9: launches, CIs, confirmation
    environment: Mapping[str, Any] | None = None                  # issue #9: the machine's state
    provenance: Mapping[str, Any] | None = None                   # issue #11: versions, inputs, hashes
    program_key: str = ""                                         # of what runs: the built bytes with the run's
                                                                  # args and env (equal: the same program, #10)
    extra: Mapping[str, Any] = field(default_factory=dict)        # keys a newer schema wrote, kept as is
    version: int = SCHEMA_VERSION                                 # the schema it was read from

    # --- reading --------------------------------------------------------------------------
    @property
    def params(self) -> Mapping[str, Any]:
        """The configuration (the name Optuna, pareto.py and export.py use for it)."""
        return self.config

    @property
    def finished(self) -> bool:
        """Counts toward the budget. A proposal that broke a declared constraint does not, nor one
        that repeated a measured configuration or that the surrogate skipped: none cost a build
        or a run, and the sampler was asked again (`resampled`, `uncounted`). A duplicate or a
        prune stored before that rule (no `uncounted`) still counts, so a resumed campaign counts
        what it counted before."""
        return self.status.finished and not self.resampled and not self.uncounted

    @property
    def measured(self) -> bool:
        """Built and run: COMPLETE or FAILED, or INFEASIBLE as reported by a run."""
        return self.status.measured or (self.status == TrialStatus.INFEASIBLE and bool(self.build_key))

    @property
    def verified(self) -> bool:
        return self.status == TrialStatus.COMPLETE

    # --- storing --------------------------------------------------------------------------
    def to_attrs(self) -> dict[str, Any]:
        """The Optuna user attributes that store this record (JSON-serialisable)."""
        payload: dict[str, Any] = {"v": SCHEMA_VERSION, "status": self.status.value}
        for f in fields(self):
            if f.name in _NOT_STORED:
                continue
            value = getattr(self, f.name)
            if value == _DEFAULTS[f.name]:
                continue
            if isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            payload[f.name] = value
        for k, v in self.extra.items():
            payload.setdefault(k, v)
        return {ATTR: payload}

    @classmethod
    def from_trial(cls, trial: FrozenTrial, objectives: Sequence[Any]) -> "TrialRecord":
        """The record of an Optuna trial, whichever schema wrote it (or none: a plain Optuna trial).

        `objectives` (anything with a `name`, in the study's order) name the told values.
        """
        payload, version = _payload(trial)
        status = _status(trial, payload.pop("status", None))
        known = {f.name for f in fields(cls)} - _NOT_STORED
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in payload.items():
            if key in known:
                kwargs[key] = value
            else:
                extra[key] = value
        reason = kwargs.pop("reason", None)
        if reason is not None:
            try:
                kwargs["reason"] = FailureReason(reason)
            except ValueError:            # a reason a newer version knows: keep it, unparsed
                extra["reason"] = reason
        if "samples_ms" in kwargs:
            kwargs["samples_ms"] = tuple(kwargs["samples_ms"] or ())
        kwargs.setdefault("config", dict(trial.params))
        for name in ("config", "metrics", "timing", "values"):
            if kwargs.get(name) is None:
                kwargs.pop(name, None)
        if status == TrialStatus.COMPLETE and trial.values is not None:
            kwargs["values"] = {o.name: float(v) for o, v in zip(objectives, trial.values)}
        else:
            kwargs.pop("values", None)
        return cls(number=trial.number, status=status, extra=extra, version=version, **kwargs)

    # --- building records in the campaign ----------------------------------------------------
    def running(self, worker: str, now: float | None = None) -> "TrialRecord":
        """This record as taken by `worker` now (its lease)."""
        return replace(self, status=TrialStatus.RUNNING, worker=worker,
                       lease=time.time() if now is None else now)


_NOT_STORED = {"number", "status", "values", "extra", "version"}   # Optuna's, or the envelope's
_DEFAULTS.update({f.name: (f.default_factory() if f.default_factory is not MISSING else f.default)
                  for f in fields(TrialRecord)})


def _payload(trial: FrozenTrial) -> tuple[dict[str, Any], int]:
    """The stored fields of a trial as a plain dict in the current schema, and the version read."""
    attrs = trial.user_attrs
    if ATTR in attrs and isinstance(attrs[ATTR], dict):
        payload = dict(attrs[ATTR])
        version = int(payload.pop("v", SCHEMA_VERSION))
        return payload, version
    return _from_v1(attrs), 1


def _from_v1(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Schema 1: a loose `result` dict and separate attributes (see the module docstring)."""
    result = attrs.get("result") if isinstance(attrs.get("result"), dict) else {}
    out: dict[str, Any] = {}
    for key in ("config", "config_key", "worker", "baseline", "retry_of"):
        if key in attrs:
            out[key] = attrs[key]
    if "config_key" not in out and attrs.get("retry_key"):      # a queued retry
        out["config_key"] = attrs["retry_key"]
    out.update({k: v for k, v in result.items() if k != "predicted_failure"})
    if "predicted_failure" in result and isinstance(out.get("surrogate"), dict):
        # part of the surrogate's verdict; unknown keys (prior_status) stay in `extra`
        out["surrogate"] = {**out["surrogate"], "predicted_failure": bool(result["predicted_failure"])}
    return out


def _status(trial: FrozenTrial, stored: str | None) -> TrialStatus:
    if trial.state == TrialState.RUNNING:
        return TrialStatus.RUNNING
    if trial.state == TrialState.WAITING:
        return TrialStatus.WAITING
    if stored in (None, TrialStatus.RUNNING.value, TrialStatus.WAITING.value):
        if stored is not None:
            # finished by someone else while its record still says running: a stale trial that
            # Optuna's heartbeat (or `recover`) failed because its process died
            return TrialStatus.INTERRUPTED
        return TrialStatus.COMPLETE if trial.state == TrialState.COMPLETE else TrialStatus.FAILED
    try:
        return TrialStatus(stored)
    except ValueError:
        return TrialStatus.COMPLETE if trial.state == TrialState.COMPLETE else TrialStatus.FAILED


def record(trial: FrozenTrial, objectives: Sequence[Any]) -> TrialRecord:
    """Shorthand for `TrialRecord.from_trial`."""
    return TrialRecord.from_trial(trial, objectives)


def counted(trial: FrozenTrial) -> bool:
    """Whether a told trial counts toward the budget N (a measurement), read without building the
    record: the sampler asks this of every told trial at every proposal (tuner.samplers)."""
    payload = trial.user_attrs.get(ATTR)
    return not (isinstance(payload, dict) and (payload.get("uncounted") or payload.get("resampled")))


def pending(trial: Any) -> TrialRecord:
    """The record of a trial being run (an `optuna.Trial`): what was stored when it was created
    or queued (a retry's `retry_of`, the baseline mark), without its told values."""
    frozen = FrozenTrial(number=trial.number, state=TrialState.RUNNING, value=None, values=None,
                         datetime_start=None, datetime_complete=None, params={}, distributions={},
                         user_attrs=dict(trial.user_attrs), system_attrs={}, intermediate_values={},
                         trial_id=0)
    return TrialRecord.from_trial(frozen, ())


def write(trial: Any, rec: TrialRecord) -> None:
    """Store `rec` on a live `optuna.Trial` (one user attribute: one storage write)."""
    for key, value in rec.to_attrs().items():
        trial.set_user_attr(key, value)


def write_to_storage(storage: Any, trial_id: int, rec: TrialRecord) -> None:
    """Store `rec` on any trial of a storage by its id (another process's trial: recovery)."""
    for key, value in rec.to_attrs().items():
        storage.set_trial_user_attr(trial_id, key, value)


def queued_attrs(rec: TrialRecord) -> dict[str, Any]:
    """The user attributes to queue a trial with (`Study.enqueue_trial(user_attrs=...)`)."""
    return rec.to_attrs()


__all__ = ["ATTR", "SCHEMA_VERSION", "TrialRecord", "TrialStatus", "counted", "pending", "queued_attrs", "record",
           "write", "write_to_storage"]

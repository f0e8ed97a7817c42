"""From what happened to a trial to what is stored and what Optuna is told.

One place maps an evaluation's Outcome (or a duplicate, or an interruption) to a `Verdict`: the
final TrialRecord, the values told to the sampler (None: told as failed) and the constraint
values. The rules, and why:

* complete: the objective values, constraint 0 (feasible).
* infeasible: told with the worst values seen and a positive constraint, so constraint-aware
  samplers learn the region is infeasible without a fake "good" value; told as failed while
  nothing is complete yet.
* pruned (the surrogate's verdict: skipped, not measured): told with the predicted values, so
  the sampler learns the region is poor; a predicted failure is told infeasible, a predicted poor
  point feasible. Not counted toward the budget (`uncounted`): N counts measurements, as
  MetaSchedule and OpenTuner do, so the surrogate chooses WHICH N configurations are measured
  instead of shrinking N. An audit (a would-be prune measured anyway) is a measurement and counts.
  A surrogate that skips everything is stopped with the duplicates (`Campaign._exhausted`).
* failed: told as failed (Optuna ignores it; the surrogate's classifier learns from it).
* duplicate: told what the first trial of that configuration was told (its values and
  constraints), so the sampler is not misled; told failed if that trial is still running. Not
  counted toward the budget (`uncounted`): nothing was built or run, and TPE re-proposes
  measured points often (8 of 60 trials in a flagship run); a sampler that only repeats itself
  is stopped by `Campaign._exhausted` (MAX_DUPLICATES_IN_A_ROW).
* interrupted: told as failed; not counted toward the budget; retried.
* resampled (a proposal that breaks a declared constraint, seen before anything is built): told
  like infeasible, so the sampler learns the region, but not counted toward the budget: the
  sampler is asked again (#10 item 1).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from tuner.evaluate import Outcome
from tuner.history import History
from tuner.records import FailureReason
from tuner.result import TrialRecord, TrialStatus
from tuner.samplers import CONSTRAINT

# Outcome.extra keys that name a record field fill it (surrogate, measurement, environment, ...);
# any other key is kept in TrialRecord.extra, never dropped.
RECORD_FIELDS = {f.name for f in fields(TrialRecord)} - {"number", "status", "extra", "version", "values"}
DETAIL_CHARS = 2000          # the tail of a failure's output kept in the record


@dataclass(frozen=True)
class Verdict:
    """What to store and tell for one trial."""

    record: TrialRecord
    values: tuple[float, ...] | None = None            # told to Optuna; None: told as failed
    constraints: tuple[tuple[str, float], ...] = ()


def judge(outcome: Outcome, base: TrialRecord, history: History) -> Verdict:
    """The verdict on an evaluated (or screened) configuration."""
    objectives = history.objectives
    m = outcome.measurement
    named = {k: v for k, v in outcome.extra.items() if k in RECORD_FIELDS}
    others = {k: v for k, v in outcome.extra.items() if k not in RECORD_FIELDS}
    rec = replace(base, status=TrialStatus.COMPLETE, metrics=dict(m.metrics), samples_ms=tuple(m.samples_ms),
                  checksum=m.checksum, build_key=outcome.build_key, timing=dict(outcome.timing),
                  detail=m.detail[-DETAIL_CHARS:], lease=None, **named, extra={**base.extra, **others})

    def told(values: dict[str, float]) -> tuple[float, ...]:
        return tuple(float(values[o.name]) for o in objectives)

    if m.reason == FailureReason.PRUNED and outcome.values is not None:
        predicted_failure = bool((rec.surrogate or {}).get("predicted_failure"))
        return Verdict(replace(rec, status=TrialStatus.PRUNED, reason=FailureReason.PRUNED, uncounted=True),
                       told(outcome.values), ((CONSTRAINT, 1.0 if predicted_failure else 0.0),))
    if outcome.ok and outcome.values is not None:
        return Verdict(replace(rec, values=dict(outcome.values)), told(outcome.values), ((CONSTRAINT, 0.0),))
    reason = m.reason or FailureReason.CRASH
    if reason == FailureReason.INFEASIBLE:
        worst = history.worst_values()
        return Verdict(replace(rec, status=TrialStatus.INFEASIBLE, reason=reason),
                       tuple(worst) if worst is not None else None,
                       ((CONSTRAINT, float(max(1, len(outcome.violated)))),))
    return Verdict(replace(rec, status=TrialStatus.FAILED, reason=reason))


def resampled(base: TrialRecord, violated: list[str], history: History) -> Verdict:
    """A proposal that breaks declared constraints: infeasible, told so, not counted."""
    rec = replace(base, status=TrialStatus.INFEASIBLE, reason=FailureReason.INFEASIBLE, resampled=True,
                  detail="violates " + "; ".join(violated), lease=None)
    worst = history.worst_values()
    return Verdict(rec, tuple(worst) if worst is not None else None, ((CONSTRAINT, float(len(violated))),))


def find_duplicate(key: str, history: History, number: int) -> TrialRecord | None:
    """The trial that measured this configuration, or that is measuring it and was asked before
    trial `number` (deduplication across runs and workers): a configuration is measured at most
    once per study. Trials asked later are the campaign's to wait for (Campaign._prior)."""
    return history.prior(key, before=number)


def duplicate(base: TrialRecord, prior: TrialRecord, history: History) -> Verdict:
    rec = replace(base, status=TrialStatus.DUPLICATE, duplicate_of=prior.number, lease=None, uncounted=True)
    told = history.told.get(prior.config_key) if prior.status != TrialStatus.RUNNING else None
    if told is not None and told.values is not None:
        return Verdict(rec, told.values, told.constraints)
    return Verdict(rec)


def interrupted(base: TrialRecord, detail: str) -> Verdict:
    """Stopped before its result, by the user or the machine: its configuration is retried."""
    return Verdict(replace(base, status=TrialStatus.INTERRUPTED, detail=detail, lease=None))


def withdrawn(base: TrialRecord, detail: str) -> Verdict:
    """Given back unused when two workers reached for the same slot at once. Its own status, not
    `interrupted`: nothing was stopped, nothing is retried, and `tune status` should not suggest
    that a measurement was lost. The configuration is dropped."""
    return Verdict(replace(base, status=TrialStatus.WITHDRAWN, detail=detail, lease=None, config={},
                           config_key="", retry_of=None, baseline=False))


__all__ = ["RECORD_FIELDS", "Verdict", "duplicate", "find_duplicate", "interrupted", "judge", "resampled",
           "withdrawn"]

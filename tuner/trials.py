"""Reading a campaign back: Optuna's trials as plain records for status, Pareto and export."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import optuna
import pandas as pd
from optuna.trial import TrialState

from tuner.objectives import Objective

# Trial kinds shown to users; `reason` refines "failed".
COMPLETE, FAILED, INFEASIBLE, DUPLICATE, PRUNED, INTERRUPTED, RUNNING = (
    "complete", "failed", "infeasible", "duplicate", "pruned", "interrupted", "running")


@dataclass(frozen=True)
class TrialRecord:
    number: int
    status: str
    params: dict[str, Any]
    values: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    detail: str = ""
    timing: dict[str, float] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return self.status == COMPLETE


def record(t: optuna.trial.FrozenTrial, objectives: Sequence[Objective]) -> TrialRecord:
    a = {**t.user_attrs, **t.user_attrs.get("result", {})}
    status = a.get("status")
    if t.state == TrialState.RUNNING:
        status = RUNNING
    elif t.state == TrialState.WAITING:
        status = "waiting"
    elif status is None:
        status = COMPLETE if t.state == TrialState.COMPLETE else FAILED
    values = {}
    if status == COMPLETE and t.values is not None:
        values = {o.name: float(v) for o, v in zip(objectives, t.values)}
    return TrialRecord(t.number, status, dict(a.get("config", t.params)), values,
                       dict(a.get("metrics", {})), a.get("reason", ""), a.get("detail", ""),
                       dict(a.get("timing", {})), dict(a))


def records(study: optuna.Study, objectives: Sequence[Objective]) -> list[TrialRecord]:
    return [record(t, objectives) for t in study.get_trials(deepcopy=False)]


def counts(recs: Sequence[TrialRecord]) -> dict[str, Any]:
    """The stable JSON of `tune status --format json`."""
    by_state = Counter(r.status for r in recs)
    reasons = Counter(r.reason for r in recs if r.status in (FAILED, INFEASIBLE) and r.reason)
    finished = sum(n for s, n in by_state.items() if s not in (RUNNING, "waiting", INTERRUPTED))
    return {"finished": finished, "by_state": dict(sorted(by_state.items())),
            "failures_by_reason": dict(sorted(reasons.items()))}


def dataframe(recs: Sequence[TrialRecord], objectives: Sequence[Objective]) -> pd.DataFrame:
    rows = []
    for r in recs:
        row: dict[str, Any] = {"trial": r.number, "state": r.status.upper() if r.status == COMPLETE else r.status,
                               "reason": r.reason}
        for o in objectives:
            row[o.name] = r.values.get(o.name)
        row.update({f"param.{k}": v for k, v in r.params.items()})
        row.update({f"metric.{k}": v for k, v in r.metrics.items()})
        row.update({f"time.{k}": v for k, v in r.timing.items()})
        rows.append(row)
    return pd.DataFrame(rows)

"""Reading a campaign back: a study's trials as TrialRecords, their counts, and a table.

The records come from `tuner.result` (the only reader of Optuna's user attributes); this module
only aggregates them for `tune status`, the exports and the progress line.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import optuna
import pandas as pd

from tuner.objectives import Objective
from tuner.result import TrialRecord, TrialStatus


def records(study: optuna.Study, objectives: Sequence[Objective]) -> list[TrialRecord]:
    """Every trial of the study, in trial-number order."""
    return [TrialRecord.from_trial(t, objectives) for t in study.get_trials(deepcopy=False)]


def counts(recs: Sequence[TrialRecord]) -> dict[str, Any]:
    """The stable JSON of `tune status --format json`: finished (what the budget counts), measured
    (built and run), skipped (by the surrogate: pruned), same_program (built a program measured
    before: duplicates of that trial), trials by status, failures by reason."""
    by_state = Counter(r.status.value for r in recs)
    reasons = Counter(r.reason.value for r in recs
                      if r.status in (TrialStatus.FAILED, TrialStatus.INFEASIBLE) and r.reason)
    return {"finished": sum(r.finished for r in recs), "measured": sum(r.measured for r in recs),
            "skipped": sum(r.status == TrialStatus.PRUNED for r in recs),
            "same_program": sum(r.status == TrialStatus.DUPLICATE and bool(r.program_key) for r in recs),
            "by_state": dict(sorted(by_state.items())),
            "failures_by_reason": dict(sorted(reasons.items())),
            "most_common_failure": most_common_failure(recs)}


_CAUSE = ("error", "undefined reference", "fatal", "cannot find", "no such file", "killed by")


def failure_message(detail: str) -> str:
    """The line of a failure's output that says what went wrong: the first naming an error (a
    compiler's first error is the cause; the linker's `collect2: error: ld returned 1` is only a
    summary), else the last non-empty line."""
    lines = [ln.strip() for ln in detail.strip().splitlines() if ln.strip()]
    for ln in lines:
        if any(c in ln.lower() for c in _CAUSE) and not ln.startswith("collect2:"):
            return ln[:300]
    return lines[-1][:300] if lines else ""


def most_common_failure(recs: Sequence[TrialRecord]) -> dict[str, Any] | None:
    """The failure seen most often (reason and message), how many trials, and the latest one:
    when every trial fails alike, this line is what to fix."""
    seen: Counter[tuple[str, str]] = Counter()
    last: dict[tuple[str, str], int] = {}
    for r in recs:
        if r.status == TrialStatus.FAILED:
            key = (r.reason.value if r.reason else "", failure_message(r.detail))
            seen[key] += 1
            last[key] = r.number
    if not seen:
        return None
    (reason, message), n = seen.most_common(1)[0]
    return {"reason": reason, "message": message, "trials": n, "last_trial": last[(reason, message)]}


def dataframe(recs: Sequence[TrialRecord], objectives: Sequence[Objective]) -> pd.DataFrame:
    """One row per trial: number, state, reason, objective values, param.*, metric.*, time.*."""
    rows = []
    for r in recs:
        state = r.status.value.upper() if r.status == TrialStatus.COMPLETE else r.status.value
        row: dict[str, Any] = {"trial": r.number, "state": state, "reason": r.reason.value if r.reason else ""}
        for o in objectives:
            row[o.name] = r.values.get(o.name)
        row.update({f"param.{k}": v for k, v in r.config.items()})
        row.update({f"metric.{k}": v for k, v in r.metrics.items()})
        row.update({f"time.{k}": v for k, v in r.timing.items()})
        rows.append(row)
    return pd.DataFrame(rows)

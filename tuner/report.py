"""What a campaign has found: the verified trials, the exact Pareto front, hypervolume, knee,
and where the study's baseline lies. Shared by `tune pareto`, `tune export` and `tune explore`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import optuna

from tuner import trials as T
from tuner.measure.topup import merge   # explore's top-ups of its printed figures
from tuner.result import TrialRecord, TrialStatus
from tuner.pareto import default_reference, hypervolume, knee_index, pareto_front, trial_values
from tuner.space import config_key
from tuner.study import StudySpec


@dataclass(frozen=True)
class Report:
    records: list[TrialRecord]
    verified: list[TrialRecord]
    front: list[TrialRecord]
    reference: list[float]
    hypervolume: float
    knee: TrialRecord | None
    baseline: TrialRecord | None

    def summary(self) -> dict[str, Any]:
        return {"verified": len(self.verified), "front": len(self.front),
                "reference_point": self.reference, "hypervolume": self.hypervolume,
                "knee_trial": self.knee.number if self.knee else None,
                "baseline_trial": self.baseline.number if self.baseline else None}


def baseline_key(spec: StudySpec) -> str | None:
    try:
        return config_key(spec.space.complete(spec.baseline)) if spec.baseline else None
    except ValueError:
        return None


def build_report(spec: StudySpec, study: optuna.Study) -> Report:
    recs = merge(T.records(study, spec.objectives), study.user_attrs)
    verified = [r for r in recs if r.status == TrialStatus.COMPLETE]
    front = pareto_front(verified, spec.objectives)
    directions = [o.direction for o in spec.objectives]
    if verified:
        values = trial_values(verified, spec.objectives)
        if spec.reference_point:
            reference = [float(spec.reference_point[o.name]) for o in spec.objectives]
        else:
            reference = [float(x) for x in default_reference(values, directions)]
        hv = hypervolume(trial_values(front, spec.objectives), directions, reference)
        knee = front[knee_index(trial_values(front, spec.objectives), directions)] if front else None
    else:
        reference, hv, knee = [], 0.0, None
    bkey = baseline_key(spec)
    baseline = next((r for r in verified if r.config_key == bkey), None) if bkey else None
    return Report(recs, verified, front, reference, float(hv), knee, baseline)


def speedups(report: Report, spec: StudySpec) -> dict[str, float]:
    """Best verified value of each objective against the baseline's (>1 is better)."""
    if report.baseline is None or not report.verified:
        return {}
    out = {}
    for o in spec.objectives:
        base = report.baseline.values.get(o.name)
        vals = [r.values[o.name] for r in report.verified if o.name in r.values]
        if base is None or not vals:
            continue
        best = o.best(vals)
        if best <= 0 or base <= 0:      # a ratio means nothing across zero or signs
            continue
        out[o.name] = (base / best) ** o.sign      # > 1: better than the baseline
    return out


def concise(recs: list[TrialRecord], spec: StudySpec) -> list[TrialRecord]:
    """The same records showing only knobs away from their defaults, for a readable table."""
    out = []
    for r in recs:
        config = {k: v for k, v in r.config.items()
                  if k not in spec.space.knobs or v != spec.space.knobs[k].default}
        out.append(replace(r, config=config))
    return out


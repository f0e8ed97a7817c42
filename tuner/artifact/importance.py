"""Knob importance per objective, from Optuna's importance evaluators.

Only verified trials count: a campaign also tells Optuna the surrogate's predictions (pruned
trials), repeated values (duplicates) and placeholder values (infeasible), which would teach
an evaluator what the model believed, not what was measured. The verified trials are copied
into an in-memory study with their distributions, and the evaluator runs on each objective
in turn. fANOVA (Hutter et al., ICML'14: the share of the variance of a random forest's
prediction that each knob explains) is the default, because a paper means "which knobs
matter overall"; PED-ANOVA (Watanabe et al., IJCAI'23) ranks what separates the best 10%
from the rest, and mean decrease in impurity is the quickest.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import optuna
from optuna.trial import TrialState

EVALUATORS = {
    "ped-anova": lambda seed: optuna.importance.PedAnovaImportanceEvaluator(),
    "fanova": lambda seed: optuna.importance.FanovaImportanceEvaluator(seed=seed),
    "mdi": lambda seed: optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=seed),
}
MIN_TRIALS = 4


def importances(study: optuna.Study, verified: Sequence[int], objectives: Sequence[Any],
                evaluator: str = "fanova", seed: int = 0) -> dict[str, Any]:
    """{"evaluator", "trials", "by_objective": {name: {knob: importance}}, "note"?}.

    `verified` holds the numbers of the trials to learn from. Knobs are the study's
    parameters as Optuna sees them (an ordinal's order, a categorical's choice)."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    chosen = [trials[n] for n in verified if n in trials and trials[n].values is not None]
    doc: dict[str, Any] = {"evaluator": evaluator, "trials": len(chosen), "by_objective": {}}
    if len(chosen) < MIN_TRIALS:
        doc["note"] = f"too few verified trials ({len(chosen)} < {MIN_TRIALS}) to rank knobs"
        return doc
    varied = [k for k in chosen[0].distributions
              if len({repr(t.params.get(k)) for t in chosen}) > 1
              and all(k in t.params for t in chosen)]
    if not varied:
        doc["note"] = "no knob varied across the verified trials"
        return doc
    mirror = optuna.create_study(directions=[o.direction for o in objectives])
    for t in chosen:
        mirror.add_trial(optuna.trial.create_trial(
            params={k: t.params[k] for k in varied},
            distributions={k: t.distributions[k] for k in varied}, values=t.values))
    for i, o in enumerate(objectives):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                imp = optuna.importance.get_param_importances(
                    mirror, evaluator=EVALUATORS[evaluator](seed), params=varied,
                    target=lambda t, i=i: t.values[i])
            except (RuntimeError, ValueError) as e:      # a degenerate objective (all equal)
                doc["by_objective"][o.name] = {}
                doc.setdefault("notes", {})[o.name] = str(e)
                continue
        doc["by_objective"][o.name] = {k: float(v) for k, v in imp.items()}
    return doc

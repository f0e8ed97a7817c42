"""Samplers by name. `auto` is one entry of the table and says what it chose."""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.errors import BadInput
from tuner.knobs import dist as D
from tuner.result import counted
from tuner.space import SearchSpace

CONSTRAINT = "violation"   # the campaign sets it on every trial with Trial.set_constraint


def _grid(space: SearchSpace) -> dict[str, list]:
    grid: dict[str, list] = {}
    size = 1
    for knob in space.knobs.values():
        grid[knob.name] = D.values(knob.distribution())
        size *= len(grid[knob.name])
        if size > 10**6:
            raise BadInput("the grid has more than a million points; use another sampler", space.file, "--sampler")
    return grid


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler calls `study.stop()` once the grid is exhausted, which raises
    outside `study.optimize`; the campaign's ask-and-tell loop stops on its own budget, and a
    re-proposed grid point is recorded as a duplicate."""

    def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
        pass


class MeasuredTPESampler(optuna.samplers.TPESampler):
    """TPE whose "good" group is a tenth of the MEASURED trials, not of all told trials.

    Optuna sizes the good group as ceil(0.1 n) (capped at 25 with one objective), n = every
    trial told COMPLETE or PRUNED. The campaign also tells proposals it did not measure: the
    surrogate's skipped ones (with their predicted values), duplicates and constraint breakers
    (`TrialRecord.uncounted` / `resampled`), so that TPE's "bad" density learns those regions.
    Counted in n they grew the good group instead: the session-5 quick start told 131 trials
    for 40 measurements, so 14 trials formed the good density (11 measured, 3 predictions)
    where 4 measured ones are meant, and TPE exploited a third of what it measured. Here n
    counts the told trials that count toward the budget; all told trials still take part in
    the split, so the skipped ones stay in the bad density. Optuna deprecated the `gamma`
    argument in 4.9 (removal in 6.0: pyproject pins optuna < 6); its warning is silenced here
    only.
    """

    def __init__(self, *, n_objectives: int, **kwargs: Any) -> None:
        self._measured = 0
        self._counted_for: int | None = None              # the trial the count was made for
        self._cap = None if n_objectives > 1 else 25       # Optuna's default_gamma / _multiobjective
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="`gamma` has been deprecated", category=FutureWarning)
            super().__init__(gamma=self.good_size, **kwargs)

    def good_size(self, n_told: int) -> int:
        """How many told trials form the good density: a tenth of the measured ones."""
        n = math.ceil(0.1 * min(self._measured, n_told))
        return n if self._cap is None else min(n, self._cap)

    def _count(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self._counted_for == trial.number:          # once per proposal, not once per knob
            return
        told = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        self._measured = sum(1 for t in told if counted(t))
        self._counted_for = trial.number

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, Any]) -> dict[str, Any]:  # noqa: D102
        self._count(study, trial)
        return super().sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: Any) -> Any:  # noqa: D102
        self._count(study, trial)
        return super().sample_independent(study, trial, param_name, param_distribution)


def _tpe(space: SearchSpace, seed: int | None, n_objectives: int) -> optuna.samplers.BaseSampler:
    return MeasuredTPESampler(n_objectives=n_objectives, seed=seed, multivariate=True, group=True,
                              n_startup_trials=min(10, max(4, len(space) // 2)))


def _gp(space: SearchSpace, seed: int | None, n_objectives: int) -> optuna.samplers.BaseSampler:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise BadInput("the gp sampler needs PyTorch (pip install torch)", None, "--sampler") from None
    return optuna.samplers.GPSampler(seed=seed)


def _anchored(space: SearchSpace, seed: int | None, n_objectives: int) -> optuna.samplers.BaseSampler:
    from tuner.anchored import AnchoredSampler
    return AnchoredSampler(space, seed=seed)


FACTORIES: dict[str, Callable[[SearchSpace, int | None, int], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "nsga2": lambda s, seed, n: optuna.samplers.NSGAIISampler(seed=seed),
    "nsga3": lambda s, seed, n: optuna.samplers.NSGAIIISampler(seed=seed),
    "gp": _gp,
    "anchored": _anchored,
    "tpe-independent": lambda s, seed, n: MeasuredTPESampler(n_objectives=n, seed=seed, n_startup_trials=10),
    "random": lambda s, seed, n: optuna.samplers.RandomSampler(seed=seed),
    "grid": lambda s, seed, n: _AskTellGridSampler(_grid(s), seed=seed),
}
NAMES = ("auto", *FACTORIES)


# `auto` picks the anchored sampler above WIDE knobs. Chosen by bench/peers.py (README "Wide
# spaces: why `auto` picks `anchored`") on the 384-knob generated gcc spaces: there its bests were as
# fast as TPE's (geometric mean over four kernels 1.219x -O3 against 1.224x at equal wall time), at a
# fifth of TPE's engine overhead (35 against 194 ms per trial, bench/overhead.py); with its shake and
# random operators (session 7) it is ahead of uniform random search on four of six kernels head to
# head and tied on two. Narrower spaces (conv2d-flags' 109 hand-picked knobs, schedule and hardware
# spaces) were not benchmarked so and keep TPE.
WIDE = 200


def choose(name: str, space: SearchSpace, budget: int) -> tuple[str, str]:
    """(sampler name, why): `auto` picks by the width of the space and the budget."""
    if name != "auto":
        if name not in FACTORIES:
            raise BadInput(f"unknown sampler '{name}' (known: {', '.join(NAMES)})", None, "--sampler")
        return name, "asked for"
    if len(space) > WIDE:
        return "anchored", (f"{len(space)} knobs: local search from the baseline, the -O level and target "
                            "options first, with whole-group redraws and random proposals under a bandit")
    if budget > 1000:
        return "nsga2", "a large budget: NSGA-II's population pays off"
    return "tpe", f"multi-objective TPE: sample-efficient for {budget} measured trials"


def make_sampler(name: str, space: SearchSpace, seed: int | None, n_objectives: int) -> optuna.samplers.BaseSampler:
    return FACTORIES[name](space, seed, n_objectives)


__all__ = ["CONSTRAINT", "NAMES", "MeasuredTPESampler", "choose", "make_sampler"]

"""Samplers by name. `auto` is one entry of the table and says what it chose."""

from __future__ import annotations

from typing import Callable

import optuna

from tuner.errors import BadInput
from tuner.knobs import dist as D
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


def _tpe(space: SearchSpace, seed: int | None, n_objectives: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
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
    "tpe-independent": lambda s, seed, n: optuna.samplers.TPESampler(seed=seed, n_startup_trials=10),
    "random": lambda s, seed, n: optuna.samplers.RandomSampler(seed=seed),
    "grid": lambda s, seed, n: _AskTellGridSampler(_grid(s), seed=seed),
}
NAMES = ("auto", *FACTORIES)


# `auto` picks the anchored sampler above WIDE knobs. Chosen by bench/peers.py (README "Wide
# spaces: why `auto` picks `anchored`") on the 384-knob generated gcc spaces: there its bests were as
# fast as TPE's (geometric mean over four kernels 1.219x -O3 against 1.224x at equal wall time), at a
# fifth of TPE's engine overhead (35 against 194 ms per trial, bench/overhead.py). Narrower spaces
# (conv2d-flags' 109 hand-picked knobs, schedule and hardware spaces) were not benchmarked so and
# keep TPE.
WIDE = 200


def choose(name: str, space: SearchSpace, budget: int) -> tuple[str, str]:
    """(sampler name, why): `auto` picks by the width of the space and the budget."""
    if name != "auto":
        if name not in FACTORIES:
            raise BadInput(f"unknown sampler '{name}' (known: {', '.join(NAMES)})", None, "--sampler")
        return name, "asked for"
    if len(space) > WIDE:
        return "anchored", (f"{len(space)} knobs: anchored local search from the baseline, the -O level "
                            "and target options first (TPE and random move every knob at once)")
    if budget > 1000:
        return "nsga2", "a large budget: NSGA-II's population pays off"
    return "tpe", f"multi-objective TPE: sample-efficient for {budget} measured trials"


def make_sampler(name: str, space: SearchSpace, seed: int | None, n_objectives: int) -> optuna.samplers.BaseSampler:
    return FACTORIES[name](space, seed, n_objectives)


__all__ = ["CONSTRAINT", "NAMES", "choose", "make_sampler"]

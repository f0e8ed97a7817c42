"""The distributions knobs hand to Optuna, as tune uses them: the one place that knows the kinds.

A knob's `distribution()` is an Optuna distribution; the sampler, the grid, the satisfiability
check, a knob's fallback default and the conformance checks all need the same few things from
it (how many values, the i-th value, asking a trial for one). Keeping that here means a new
distribution kind is one entry in `_KINDS`, not an edit in five modules.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution


@dataclass(frozen=True)
class _Kind:
    size: Callable[[Any], int]                                  # how many sampler values
    nth: Callable[[Any, int], Any]                              # the i-th, in order
    suggest: Callable[[optuna.trial.BaseTrial, str, Any], Any]  # ask a trial for one


_KINDS: dict[type, _Kind] = {
    CategoricalDistribution: _Kind(
        size=lambda d: len(d.choices),
        nth=lambda d, i: d.choices[i],
        suggest=lambda trial, name, d: trial.suggest_categorical(name, d.choices)),
    IntDistribution: _Kind(
        size=lambda d: (d.high - d.low) // d.step + 1,
        nth=lambda d, i: d.low + i * d.step,
        suggest=lambda trial, name, d: trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)),
}


def _kind(dist: BaseDistribution) -> _Kind:
    try:
        return _KINDS[type(dist)]
    except KeyError:
        raise TypeError(f"unsupported distribution {dist!r} (supported: "
                        f"{', '.join(k.__name__ for k in _KINDS)})") from None


def size(dist: BaseDistribution) -> int:
    """How many sampler values the distribution has."""
    return _kind(dist).size(dist)


def nth(dist: BaseDistribution, i: int) -> Any:
    """The i-th sampler value (0 = the first: a categorical's first choice, a range's low end)."""
    return _kind(dist).nth(dist, i)


def values(dist: BaseDistribution) -> list[Any]:
    """Every sampler value, in order (the grid sampler's axis)."""
    k = _kind(dist)
    return [k.nth(dist, i) for i in range(k.size(dist))]


def spread(dist: BaseDistribution, limit: int) -> list[Any]:
    """All values, or `limit` of them spread evenly with both ends included."""
    n = size(dist)
    if n <= limit:
        return values(dist)
    return [nth(dist, i) for i in sorted({round(j * (n - 1) / (limit - 1)) for j in range(limit)})]


def draw(dist: BaseDistribution, rng: random.Random) -> Any:
    """One value uniformly at random."""
    return nth(dist, rng.randrange(size(dist)))


def suggest(trial: optuna.trial.BaseTrial, name: str, dist: BaseDistribution) -> Any:
    """Ask an Optuna trial for a value of `name` (define-by-run).

    A live `optuna.Trial` is handed `dist` itself (what its `suggest_*` do after making an equal
    distribution from the arguments): with the space's one distribution object per knob
    (SearchSpace.distribution) the journal reuses its JSON and finds it identical to the
    study's, instead of making, encoding and comparing 384 new ones per trial."""
    if type(trial) is optuna.trial.Trial:
        value = trial._suggest(name, dist)
        return int(value) if isinstance(dist, IntDistribution) else value
    return _kind(dist).suggest(trial, name, dist)


__all__ = ["draw", "nth", "size", "spread", "suggest", "values"]

"""optuna-dashboard on a study's storage, with knobs shown as their values.

Optuna stores what the sampler sees: an ordinal knob is an index (`log_block_in = 1` where
the value is 4). `DecodedStorage` is a read-through view of the real storage whose trials
carry the knob values instead, with a distribution over those values (an integer or float
range for numeric ordinals, so plots keep their order; categorical otherwise). Everything
else, including the dashboard's own writes (notes), goes to the real storage unchanged, and
the view is live: each request reads the storage again.
"""

from __future__ import annotations

from typing import Any, Mapping

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial


def value_distribution(knob: Any) -> BaseDistribution | None:
    """A distribution over a knob's values, for knobs whose sampler value is an encoding."""
    values = getattr(knob, "values", None)
    if not values:
        return None
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return IntDistribution(min(values), max(values))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return FloatDistribution(float(min(values)), float(max(values)))
    return CategoricalDistribution(list(values))


class Decoder:
    """Maps a trial's encoded params to knob values, for the knobs that encode them."""

    def __init__(self, knobs: Mapping[str, Any]) -> None:
        self.knobs = {n: (k, d) for n, k in knobs.items() if (d := value_distribution(k)) is not None}

    def __call__(self, t: FrozenTrial) -> FrozenTrial:
        if not any(n in self.knobs for n in t.params):
            return t
        params, dists = dict(t.params), dict(t.distributions)
        for name, (knob, dist) in self.knobs.items():
            if name in params:
                try:
                    value = knob.decode(params[name])
                except (IndexError, ValueError, TypeError):
                    continue
                params[name] = float(value) if isinstance(dist, FloatDistribution) else value
                dists[name] = dist
        return FrozenTrial(number=t.number, state=t.state, value=None, values=t.values,
                           datetime_start=t.datetime_start, datetime_complete=t.datetime_complete,
                           params=params, distributions=dists, user_attrs=t.user_attrs,
                           system_attrs=t.system_attrs, intermediate_values=t.intermediate_values,
                           trial_id=t._trial_id)


class DecodedStorage(BaseStorage):
    """A view of `inner` whose trials show knob values (see the module docstring)."""

    def __init__(self, inner: BaseStorage, decoder: Decoder) -> None:
        self._inner = inner
        self._decode = decoder

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self._decode(self._inner.get_trial(trial_id))

    def get_all_trials(self, study_id: int, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        return [self._decode(t) for t in self._inner.get_all_trials(study_id, deepcopy=deepcopy, states=states)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _delegate(name: str) -> Any:
    def method(self: DecodedStorage, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._inner, name)(*args, **kwargs)
    method.__name__ = name
    return method


for _name in BaseStorage.__abstractmethods__:
    if _name not in ("get_trial", "get_all_trials"):
        setattr(DecodedStorage, _name, _delegate(_name))
DecodedStorage.__abstractmethods__ = frozenset()


def serve(storage: BaseStorage, knobs: Mapping[str, Any], port: int) -> None:
    """Serve the dashboard on 127.0.0.1:port until interrupted (loopback only)."""
    from optuna_dashboard import run_server

    run_server(DecodedStorage(storage, Decoder(knobs)), host="127.0.0.1", port=port)

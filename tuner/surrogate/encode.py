"""Configurations as numeric feature vectors, for scikit-learn models.

Each knob kind has a natural encoding: unordered choices one-hot, ordered ones by rank, ranges
by value (log for log ranges), loop orders by each item's position. A knob that is inactive in
a configuration (its `when` is false) encodes as -1 with an "active" indicator at 0.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
from optuna.distributions import CategoricalDistribution

from tuner.knobs.categorical import CategoricalKnob
from tuner.knobs.flag import FlagKnob
from tuner.knobs.integer import IntKnob
from tuner.knobs.ordinal import OrdinalKnob
from tuner.knobs.permutation import PermutationKnob
from tuner.space import SearchSpace


def _unordered(knob: Any) -> bool:
    return isinstance(knob.distribution(), CategoricalDistribution)


class Encoder:
    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.columns: list[str] = []
        for knob in space.knobs.values():
            if isinstance(knob, (CategoricalKnob, FlagKnob)):
                choices = knob.choices if isinstance(knob, CategoricalKnob) else knob.states
                self.columns += [f"{knob.name}={c}" for c in choices]
            elif isinstance(knob, PermutationKnob):
                self.columns += [f"{knob.name}.pos({i})" for i in knob.items]
            elif _unordered(knob):
                self.columns += [f"{knob.name}={c}" for c in knob.distribution().choices]
            else:
                self.columns.append(knob.name)
            if knob.when is not None:
                self.columns.append(f"{knob.name}.active")

    @property
    def width(self) -> int:
        return len(self.columns)

    def encode_one(self, config: Mapping[str, Any]) -> list[float]:
        row: list[float] = []
        for knob in self.space.knobs.values():
            active = knob.name in config
            value = config.get(knob.name)
            if isinstance(knob, (CategoricalKnob, FlagKnob)):
                choices = knob.choices if isinstance(knob, CategoricalKnob) else knob.states
                row += [float(active and value == c) for c in choices]
            elif isinstance(knob, PermutationKnob):
                order = str(value).split(",") if active else []
                row += [float(order.index(i)) if i in order else -1.0 for i in knob.items]
            elif isinstance(knob, OrdinalKnob):
                row.append(float(knob.values.index(value)) if active else -1.0)
            elif isinstance(knob, IntKnob):
                v = float(value) if active else -1.0
                row.append(math.log2(v) if active and knob.log and v > 0 else v)
            elif _unordered(knob):    # another kind: one-hot over its sampler values
                raw = knob.encode(value) if active else None
                row += [float(active and raw == c) for c in knob.distribution().choices]
            else:                     # another kind with an ordered sampler value (divisor): its rank
                row.append(float(knob.encode(value)) if active else -1.0)
            if knob.when is not None:
                row.append(float(active))
        return row

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.array([self.encode_one(c) for c in configs], dtype=float).reshape(len(configs), self.width)

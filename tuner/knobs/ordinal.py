"""An ordered list of values (powers of two, tile sizes): the sampler sees the order."""

from __future__ import annotations

from typing import Any

from optuna.distributions import IntDistribution

from tuner.knobs.base import Knob
from tuner.tomlfile import KINDS as _TYPES

_scalar = _TYPES["a string, number or boolean"]


class OrdinalKnob(Knob):
    kind = "ordinal"
    keys = {"values"}

    def setup(self) -> None:
        values = self.need("values")
        if not isinstance(values, list) or not values or not all(_scalar(v) for v in values):
            self.bad("'values' must be a non-empty list of strings, numbers or booleans", "values")
        if len(set(map(repr, values))) != len(values):
            self.bad("'values' has duplicates", "values")
        self.values = tuple(values)

    def distribution(self) -> IntDistribution:
        # An index, so TPE and GP see neighbours as close; stored configs keep the value.
        return IntDistribution(0, len(self.values) - 1)

    def decode(self, raw: Any) -> Any:
        return self.values[int(raw)]

    def encode(self, value: Any) -> int:
        return self.values.index(self.coerce(value))

    def coerce(self, value: Any) -> Any:
        for v in self.values:
            if value == v and not isinstance(value, bool):
                return v
            if isinstance(value, str) and str(v) == value.strip():
                return v
        raise ValueError(f"{value!r} is not one of {list(self.values)}")

    def domain(self) -> str:
        return "<" + ", ".join(map(str, self.values)) + ">"

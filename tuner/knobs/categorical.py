"""One of a few unordered choices: a compiler, an -O level, a quantisation mode."""

from __future__ import annotations

from typing import Any

from optuna.distributions import CategoricalDistribution

from tuner.knobs.base import Knob
from tuner.tomlfile import KINDS as _TYPES

_scalar = _TYPES["a string, number or boolean"]


class CategoricalKnob(Knob):
    kind = "categorical"
    keys = {"choices"}

    def setup(self) -> None:
        choices = self.need("choices")
        if not isinstance(choices, list) or not choices or not all(_scalar(c) for c in choices):
            self.bad("'choices' must be a non-empty list of strings, numbers or booleans", "choices")
        if len(set(map(repr, choices))) != len(choices):
            self.bad("'choices' has duplicates", "choices")
        self.choices = tuple(choices)

    def distribution(self) -> CategoricalDistribution:
        return CategoricalDistribution(self.choices)

    def decode(self, raw: Any) -> Any:
        return raw

    def encode(self, value: Any) -> Any:
        return self.coerce(value)

    def coerce(self, value: Any) -> Any:
        for choice in self.choices:
            if value == choice and type(value) is type(choice):
                return choice
        if isinstance(value, str):  # from the command line: match the text form
            for choice in self.choices:
                if str(choice).lower() == value.lower():
                    return choice
        raise ValueError(f"{value!r} is not one of {list(self.choices)}")

    def domain(self) -> str:
        return "{" + ", ".join('""' if c == "" else str(c) for c in self.choices) + "}"

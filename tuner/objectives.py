"""Objectives: a name, a direction, a unit, and the measurement metric they read.

Which way is better is decided here and only here (`sign`, `Objective.better`, `best`,
`worst`): the campaign, the surrogate, the report, the progress line and the Pareto code ask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from tuner import library
from tuner.errors import BadInput
from tuner.tomlfile import check_keys, get, load_toml


DIRECTIONS = ("minimize", "maximize")


def sign(direction: str) -> float:
    """+1 for a minimised objective, -1 for a maximised one: `sign * value` is always minimised."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; expected one of {DIRECTIONS}")
    return 1.0 if direction == "minimize" else -1.0


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str          # "minimize" | "maximize"
    unit: str
    metric: str
    description: str = ""

    def value(self, metrics: Mapping[str, float]) -> float | None:
        """The objective's value, or None if the measurement lacks the metric."""
        v = metrics.get(self.metric)
        if v is None or not isinstance(v, (int, float)) or math.isnan(v):
            return None
        return float(v)

    @property
    def sign(self) -> float:
        return sign(self.direction)

    def better(self, a: float, b: float) -> bool:
        """Whether value `a` is strictly better than `b`."""
        return self.sign * a < self.sign * b

    def best(self, values: Iterable[float]) -> float:
        return min(values, key=lambda v: self.sign * v)

    def worst(self, values: Iterable[float]) -> float:
        return max(values, key=lambda v: self.sign * v)

    @property
    def label(self) -> str:
        return f"{self.name} [{self.unit}]" if self.unit else self.name


def load_objective(name: str) -> Objective:
    path = library.find("objective", name)
    table = load_toml(path)
    check_keys(table, {"description", "direction", "unit", "metric", "name"}, path, "")
    text = {k: get(table, k, "a string", path, "") for k in ("description", "direction", "unit", "metric", "name")}
    direction = text["direction"] or "minimize"
    if direction not in DIRECTIONS:
        raise BadInput("direction must be 'minimize' or 'maximize'", path, "direction")
    return Objective(name=text["name"] or path.stem, direction=direction, unit=text["unit"] or "",
                     metric=text["metric"] or path.stem, description=text["description"] or "")

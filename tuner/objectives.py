"""Objectives: a name, a direction, a unit, and the measurement metric they read."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from tuner import library
from tuner.errors import BadInput
from tuner.tomlfile import check_keys, load_toml


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
    def label(self) -> str:
        return f"{self.name} [{self.unit}]" if self.unit else self.name


def load_objective(name: str) -> Objective:
    path = library.find("objective", name)
    table = load_toml(path)
    check_keys(table, {"description", "direction", "unit", "metric", "name"}, path, "")
    direction = table.get("direction", "minimize")
    if direction not in ("minimize", "maximize"):
        raise BadInput("direction must be 'minimize' or 'maximize'", path, "direction")
    return Objective(name=table.get("name", path.stem), direction=direction,
                     unit=str(table.get("unit", "")), metric=str(table.get("metric", path.stem)),
                     description=str(table.get("description", "")))

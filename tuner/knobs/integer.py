"""An integer range with a step, optionally on a log scale (thread counts, unroll factors)."""

from __future__ import annotations

from typing import Any

from optuna.distributions import IntDistribution

from tuner.knobs.base import Knob
from tuner.tomlfile import get


def parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip(), 0)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not an integer")


class IntKnob(Knob):
    kind = "int"
    keys = {"low", "high", "step", "log"}

    def setup(self) -> None:
        try:
            self.low = parse_int(self.need("low"))
            self.high = parse_int(self.need("high"))
            self.step = parse_int(self.table.get("step", 1))
        except ValueError as e:
            self.bad(str(e))
        self.log = get(self.table, "log", "a boolean (true or false)", self.file, f"knobs.{self.name}", False)
        if self.low > self.high:
            self.bad(f"low {self.low} > high {self.high}")
        if self.step < 1:
            self.bad("step must be >= 1", "step")
        if self.log and (self.step != 1 or self.low < 1):
            self.bad("log scale needs step = 1 and low >= 1", "log")

    def distribution(self) -> IntDistribution:
        return IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def decode(self, raw: Any) -> int:
        return int(raw)

    def encode(self, value: Any) -> int:
        return self.coerce(value)

    def coerce(self, value: Any) -> int:
        v = parse_int(value)
        if not (self.low <= v <= self.high) or (v - self.low) % self.step:
            raise ValueError(f"{v} is outside {self.domain()}")
        return v

    def domain(self) -> str:
        step = f" step {self.step}" if self.step != 1 else ""
        return f"[{self.low}, {self.high}]{step}{' log' if self.log else ''}"

"""A compiler flag: on/off, or tri-state (-fX, -fno-X, or left to the -O level)."""

from __future__ import annotations

from typing import Any

from optuna.distributions import CategoricalDistribution

from tuner.knobs.base import Knob
from tuner.records import Rendering
from tuner.tomlfile import get

ON, OFF, DEFAULT = "on", "off", "default"
_TRUE = {"on", "1", "true", "yes"}
_FALSE = {"off", "0", "false", "no"}


def negate(flag: str) -> str:
    """-fX -> -fno-X, -fno-X -> -fX (likewise -m)."""
    for prefix in ("-f", "-m"):
        if flag.startswith(prefix + "no-"):
            return prefix + flag[len(prefix) + 3:]
        if flag.startswith(prefix):
            return prefix + "no-" + flag[len(prefix):]
    raise ValueError(f"cannot negate {flag}")


class FlagKnob(Knob):
    kind = "flag"
    keys = {"flag", "tristate", "off_flag"}
    default_to = "cflag"

    def setup(self) -> None:
        where = f"knobs.{self.name}"
        self.need("flag")
        self.flag = get(self.table, "flag", "a string", self.file, where)
        if not self.flag.startswith("-") or " " in self.flag:
            self.bad("'flag' must be one compiler argument starting with '-'", "flag")
        self.tristate = get(self.table, "tristate", "a boolean (true or false)", self.file, where, False)
        if "off_flag" in self.table:
            self.off_flag: str | None = get(self.table, "off_flag", "a string", self.file, where) or None
            if self.off_flag and (not self.off_flag.startswith("-") or " " in self.off_flag):
                self.bad("'off_flag' must be one compiler argument starting with '-'", "off_flag")
        elif self.tristate:
            try:
                self.off_flag = negate(self.flag)
            except ValueError:
                self.bad("tri-state needs an -f/-m flag or an explicit 'off_flag'", "flag")
        else:
            self.off_flag = None
        self.states = (DEFAULT, ON, OFF) if self.tristate else (OFF, ON)

    def distribution(self) -> CategoricalDistribution:
        return CategoricalDistribution(self.states)

    def decode(self, raw: Any) -> str:
        return str(raw)

    def encode(self, value: Any) -> str:
        return self.coerce(value)

    def coerce(self, value: Any) -> str:
        text = str(value).strip().lower() if not isinstance(value, bool) else ("on" if value else "off")
        state = ON if text in _TRUE else OFF if text in _FALSE else DEFAULT if text == DEFAULT else None
        if state is None or state not in self.states:
            raise ValueError(f"{value!r} is not one of {list(self.states)}")
        return state

    def fallback_default(self) -> str:
        return DEFAULT if self.tristate else OFF

    def flag_argv(self, value: Any) -> list[str]:
        state = self.coerce(value)
        if state == ON:
            return [self.flag]
        if state == OFF and self.off_flag:
            return [self.off_flag]
        return []

    def text(self, value: Any) -> str:
        return "1" if self.coerce(value) == ON else "0"

    def render(self, value: Any) -> Rendering:
        # 'default' leaves the choice to the -O level or the program: nothing is passed, so a
        # tri-state define/env/arg does not render 'default' exactly like 'off'.
        if self.coerce(value) == DEFAULT:
            return Rendering()
        return super().render(value)

    def domain(self) -> str:
        return f"{self.flag}: {'/'.join(self.states)}"

"""A compiler `--param name=value` over an integer range; its default value passes nothing."""

from __future__ import annotations

from typing import Any

from tuner.knobs.integer import IntKnob
from tuner.tomlfile import get


class ParamKnob(IntKnob):
    kind = "param"
    keys = IntKnob.keys | {"param"}
    default_to = "cflag"

    def setup(self) -> None:
        self.need("param")
        self.param = get(self.table, "param", "a string", self.file, f"knobs.{self.name}")
        if not self.param or " " in self.param or "=" in self.param:
            self.bad("'param' must be a bare parameter name", "param")
        super().setup()

    def flag_argv(self, value: Any) -> list[str]:
        # The default passes nothing: GCC sets several params by -O level (-O3 raises
        # max-inline-insns-auto from 15 to 30, for one), and pinning the value `gcc -Q
        # --help=params` prints would turn plain -O3 into -O3 with -O2's inlining limits.
        value = self.coerce(value)
        return [] if value == self.default else [f"--param={self.param}={value}"]

    def domain(self) -> str:
        return f"--param {self.param} in {super().domain()}"

"""A compiler `--param name=value` over an integer range."""

from __future__ import annotations

from typing import Any

from tuner.knobs.integer import IntKnob


class ParamKnob(IntKnob):
    kind = "param"
    keys = IntKnob.keys | {"param"}
    default_to = "cflag"

    def setup(self) -> None:
        self.param = str(self.need("param"))
        if not self.param or " " in self.param or "=" in self.param:
            self.bad("'param' must be a bare parameter name", "param")
        super().setup()

    def flag_argv(self, value: Any) -> list[str]:
        return [f"--param={self.param}={self.coerce(value)}"]

    def domain(self) -> str:
        return f"--param {self.param} in {super().domain()}"

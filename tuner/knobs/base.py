"""The knob protocol: one small class per kind, declared in TOML.

A knob maps between three worlds: Optuna's distribution (what the sampler sees), the
knob's own values (what users write and read), and a Rendering (what the build and run
see: argv pieces and environment, never a shell string).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from optuna.distributions import BaseDistribution

from tuner.errors import BadInput
from tuner.knobs import dist as D
from tuner.expr import Expr, ExprError
from tuner.records import Rendering
from tuner.tomlfile import describe, get

COMMON_KEYS = {"kind", "to", "define", "env", "arg", "when", "default", "description", "tags", "fp_unsafe"}
DESTINATIONS = {"cflag", "define", "env", "arg", "compiler", "none"}
_MACRO = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Knob(ABC):
    """A named dimension of a search space."""

    kind: ClassVar[str]
    keys: ClassVar[set[str]] = set()      # kind-specific TOML keys
    default_to: ClassVar[str] = "define"

    def __init__(self, name: str, table: dict[str, Any], file: Path | str = "<knob>") -> None:
        self.name = name
        self.file = file
        self.table = table
        where = f"knobs.{name}"
        self.description = str(get(table, "description", "a string", file, where, ""))
        self.tags = tuple(get(table, "tags", "a list of strings", file, where, ()))
        self.to = get(table, "to", "a string", file, where, self.default_to)
        if self.to not in DESTINATIONS:
            self.bad(f"'to' must be one of {', '.join(sorted(DESTINATIONS))}", "to")
        self.define = get(table, "define", "a string", file, where, name.upper())
        if self.to == "define" and not _MACRO.fullmatch(self.define):
            self.bad(f"'define' must be a C macro name, got {describe(self.define)}", "define")
        self.env = get(table, "env", "a string", file, where, name.upper())
        if self.to == "env" and (not self.env or "=" in self.env or "\0" in self.env):
            self.bad(f"'env' must be an environment variable name (no '='), got {describe(self.env)}", "env")
        self.arg = get(table, "arg", "a string", file, where, f"--{name.replace('_', '-')}={{}}")
        try:
            if self.to == "arg":
                self.arg.format("value")
        except (IndexError, KeyError, ValueError) as e:
            self.bad(f"'arg' must hold one '{{}}' for the value, got {describe(self.arg)} ({type(e).__name__}: {e})",
                     "arg")
        get(table, "fp_unsafe", "a boolean (true or false)", file, where)
        try:
            self.when = Expr(table["when"]) if "when" in table else None
        except ExprError as e:
            self.bad(str(e), "when")
        self.setup()
        if "default" in table:
            try:
                self.default = self.coerce(table["default"])
            except (ValueError, TypeError) as e:
                self.bad(str(e), "default")
        else:
            self.default = self.fallback_default()
        self._check_rendering()

    def _check_rendering(self) -> None:
        """Render the default once, now: a mistake in how values reach the build or the run
        (a malformed 'arg', a bad flag) fails at load time, not after a build."""
        try:
            r = self.render(self.default)
        except (ValueError, TypeError, IndexError, KeyError) as e:
            self.bad(f"cannot render the default value {describe(self.default)}: {e}")
        for piece in (*r.cflags, *r.args, *r.env.values(), *((r.compiler,) if r.compiler else ())):
            if not isinstance(piece, str) or "\0" in piece:
                self.bad(f"renders {describe(piece)}, which is not a NUL-free string")

    def bad(self, message: str, key: str | None = None) -> None:
        raise BadInput(message, self.file, f"knobs.{self.name}" + (f".{key}" if key else ""))

    def need(self, key: str) -> Any:
        if key not in self.table:
            self.bad(f"kind '{self.kind}' needs '{key}'")
        return self.table[key]

    # --- what a kind implements -------------------------------------------------------
    @abstractmethod
    def setup(self) -> None:
        """Read and check the kind-specific keys of self.table."""

    @abstractmethod
    def distribution(self) -> BaseDistribution:
        """What the sampler sees."""

    @abstractmethod
    def decode(self, raw: Any) -> Any:
        """Sampler value -> knob value."""

    @abstractmethod
    def encode(self, value: Any) -> Any:
        """Knob value -> sampler value (for pinned and enqueued configurations)."""

    @abstractmethod
    def coerce(self, value: Any) -> Any:
        """A value from TOML or the command line -> a knob value; ValueError if outside the domain."""

    @abstractmethod
    def domain(self) -> str:
        """The domain in one short line, for `tune spaces STUDY`."""

    def fallback_default(self) -> Any:
        return self.decode(D.nth(self.distribution(), 0))

    def contains(self, value: Any) -> bool:
        try:
            self.coerce(value)
            return True
        except (ValueError, TypeError):
            return False

    def flag_argv(self, value: Any) -> list[str]:
        """The compiler arguments of a `to = "cflag"` value (kinds like flag/param override)."""
        return str(value).split()

    def template_value(self, value: Any) -> Any:
        """The value as a code template sees it."""
        return value

    def text(self, value: Any) -> str:
        """How a value appears in a define, an env var or an argument."""
        if isinstance(value, bool):
            return "1" if value else "0"
        return str(value)

    def render(self, value: Any) -> Rendering:
        if self.to == "cflag":
            return Rendering(cflags=tuple(self.flag_argv(value)))
        if self.to == "define":
            return Rendering(cflags=(f"-D{self.define}={self.text(value)}",))
        if self.to == "env":
            return Rendering(env={self.env: self.text(value)})
        if self.to == "arg":
            return Rendering(args=(self.arg.format(self.text(value)),))
        if self.to == "compiler":
            return Rendering(compiler=str(value))
        return Rendering()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.domain()})"


"""A tile size that divides an extent: `kind = "divisor"`, `of = 512` (optionally `min`, `max`).

Why a kind of its own: a schedule space written as a list of tile sizes holds illegal tiles as
soon as the list and the loop extent disagree (a typo, a shape changed later), and every
illegal tile costs a trial that comes back infeasible. A divisor knob derives its values from
the extent, so the space holds only legal tiles. `of` is an integer or an expression of
constants (`"14 * 14"`, `"2 ** 9"`); the sampler sees the divisors in order, as an index (like
`ordinal`), so neighbouring tiles are close.
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import IntDistribution

from tuner.expr import Expr, ExprError
from tuner.knobs.base import Knob
from tuner.knobs.integer import parse_int

MAX_EXTENT = 1 << 40      # divisors are found by trial division up to the square root


def divisors(n: int) -> list[int]:
    """The divisors of n >= 1, ascending."""
    small, large = [], []
    d = 1
    while d * d <= n:
        if n % d == 0:
            small.append(d)
            if d * d != n:
                large.append(n // d)
        d += 1
    return small + large[::-1]


class DivisorKnob(Knob):
    kind = "divisor"
    keys = {"of", "min", "max"}

    def setup(self) -> None:
        self.of = self._extent(self.need("of"))
        try:
            self.min = parse_int(self.table.get("min", 1))
            self.max = parse_int(self.table.get("max", self.of))
        except ValueError as e:
            self.bad(str(e))
        self.values = tuple(d for d in divisors(self.of) if self.min <= d <= self.max)
        if not self.values:
            self.bad(f"no divisor of {self.of} lies in [{self.min}, {self.max}]")

    def _extent(self, raw: Any) -> int:
        if isinstance(raw, str):
            try:
                expr = Expr(raw)
                if expr.names:
                    self.bad(f"'of' may use constants only, not {sorted(expr.names)[0]!r}", "of")
                raw = expr({})
            except (ExprError, TypeError, ZeroDivisionError, ValueError) as e:
                self.bad(f"cannot evaluate {raw!r}: {e}", "of")
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_EXTENT:
            self.bad(f"'of' must be an integer in [1, 2**40], got {raw!r}", "of")
        return raw

    def distribution(self) -> IntDistribution:
        return IntDistribution(0, len(self.values) - 1)

    def decode(self, raw: Any) -> int:
        return self.values[int(raw)]

    def encode(self, value: Any) -> int:
        return self.values.index(self.coerce(value))

    def coerce(self, value: Any) -> int:
        v = parse_int(value)
        if v not in self.values:
            raise ValueError(f"{v} is not in {self.domain()}")
        return v

    def domain(self) -> str:
        bounds = "" if (self.min, self.max) == (1, self.of) else f" in [{self.min}, {self.max}]"
        return f"divisors of {self.of}{bounds}: <" + ", ".join(map(str, self.values)) + ">"

"""An ordering of items (a loop order), e.g. "co,h,w,ci"."""

from __future__ import annotations

import itertools
import math
from typing import Any

from optuna.distributions import CategoricalDistribution

from tuner.knobs.base import Knob

MAX_ITEMS = 7   # 5040 orders: beyond that a categorical over all orders is unwieldy


class PermutationKnob(Knob):
    kind = "permutation"
    keys = {"items"}

    def setup(self) -> None:
        items = self.need("items")
        if not isinstance(items, list) or len(items) < 2 or not all(isinstance(i, str) for i in items):
            self.bad("'items' must be a list of at least two names", "items")
        if len(set(items)) != len(items) or any("," in i for i in items):
            self.bad("'items' must be distinct names without commas", "items")
        if len(items) > MAX_ITEMS:
            self.bad(f"at most {MAX_ITEMS} items ({math.factorial(MAX_ITEMS)} orders)", "items")
        self.items = tuple(items)
        self.orders = tuple(",".join(p) for p in itertools.permutations(self.items))

    def distribution(self) -> CategoricalDistribution:
        return CategoricalDistribution(self.orders)

    def decode(self, raw: Any) -> str:
        return str(raw)

    def encode(self, value: Any) -> str:
        return self.coerce(value)

    def coerce(self, value: Any) -> str:
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        text = ",".join(part.strip() for part in str(value).split(","))
        if text not in self.orders:
            raise ValueError(f"{value!r} is not an order of {list(self.items)}")
        return text

    def template_value(self, value: Any) -> list[str]:
        return self.coerce(value).split(",")

    def fallback_default(self) -> str:
        return self.orders[0]

    def domain(self) -> str:
        return f"orders of ({', '.join(self.items)}): {len(self.orders)}"

"""Knob kinds by name. A new kind is one module plus one line here."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from tuner.errors import BadInput
from tuner.knobs.base import COMMON_KEYS, Knob
from tuner.tomlfile import check_keys

KINDS: dict[str, str] = {
    "categorical": "tuner.knobs.categorical:CategoricalKnob",
    "int": "tuner.knobs.integer:IntKnob",
    "ordinal": "tuner.knobs.ordinal:OrdinalKnob",
    "flag": "tuner.knobs.flag:FlagKnob",
    "param": "tuner.knobs.param:ParamKnob",
    "permutation": "tuner.knobs.permutation:PermutationKnob",
    "divisor": "tuner.knobs.divisor:DivisorKnob",
}


def knob_class(kind: str) -> type[Knob]:
    module, cls = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), cls)


def make_knob(name: str, table: Any, file: Path | str) -> Knob:
    """A knob from its TOML table, with every key checked."""
    if not isinstance(table, dict):
        raise BadInput("a knob must be a table", file, f"knobs.{name}")
    kind = table.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise BadInput(f"unknown kind {kind!r} (known: {', '.join(KINDS)})", file, f"knobs.{name}.kind")
    cls = knob_class(kind)
    check_keys(table, COMMON_KEYS | cls.keys, file, f"knobs.{name}")
    return cls(name, table, file)


__all__ = ["KINDS", "Knob", "knob_class", "make_knob"]

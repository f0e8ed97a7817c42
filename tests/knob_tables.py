"""Small `[knobs.*]` TOML tables for the tests' throw-away studies (`lab.study(name, KNOBS)`).

Why: the artifact, reduce, bundle, dashboard, provenance, stray and machine-fault tests each
wrote the same few tables out by hand; one builder per knob kind keeps them from drifting and
says, where a test uses one, only what differs (a range, the values, a default).
"""

from __future__ import annotations

from typing import Any


def _value(v: Any) -> str:
    return f'"{v}"' if isinstance(v, str) else str(v)


def _table(name: str, kind: str, **keys: Any) -> str:
    lines = [f"[knobs.{name}]", f'kind = "{kind}"']
    for key, v in keys.items():
        if v is None:
            continue
        shown = "[" + ", ".join(map(_value, v)) + "]" if isinstance(v, (list, tuple)) else _value(v)
        lines.append(f"{key} = {shown}")
    return "\n" + "\n".join(lines) + "\n"


def int_knob(name: str, low: int = 0, high: int = 9, define: str = "X") -> str:
    """An int knob passed to the kernel as `-D<define>=value`."""
    return _table(name, "int", low=low, high=high, define=define)


def ordinal_knob(name: str, values: list[int], define: str = "Y", default: int | None = None) -> str:
    """An ordinal knob (stored as its index, shown as its value) passed as `-D<define>=value`."""
    return _table(name, "ordinal", values=values, default=default, define=define)


def categorical_knob(name: str, choices: list[Any], define: str | None = None,
                     to: str | None = None) -> str:
    """A categorical knob: a define (`define=`) or a compiler flag (`to="cflag"`)."""
    return _table(name, "categorical", choices=choices, define=define, to=to)


def opt_knob(name: str = "opt") -> str:
    """The optimisation level as a compiler flag: -O1 or -O2."""
    return categorical_knob(name, ["-O1", "-O2"], to="cflag")


AB = int_knob("a") + ordinal_knob("b", [0, 1, 2, 3])     # a = 0..9 (X), b in [0, 1, 2, 3] (Y)
X4 = int_knob("x", high=3)                               # x = 0..3 (X): four grid points

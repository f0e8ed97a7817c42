"""Delta debugging of a configuration: the smallest set of non-default knobs that keeps every
objective within a tolerance of the point (see `tune reduce`). Results are stored in the
study, so `tune export` shows each point as its reduced knob set."""

from __future__ import annotations

from typing import Any

REDUCED_PREFIX = "tune.reduce."


def store_reduction(study: Any, trial: int, doc: dict[str, Any]) -> None:
    study.set_user_attr(f"{REDUCED_PREFIX}{trial}", doc)


def load_reductions(study: Any) -> dict[int, dict[str, Any]]:
    """trial number -> its reduced knob set (knob -> value), from `tune reduce`."""
    out = {}
    for k, v in study.user_attrs.items():
        if k.startswith(REDUCED_PREFIX) and isinstance(v, dict) and isinstance(v.get("reduced"), dict):
            try:
                out[int(k[len(REDUCED_PREFIX):])] = v["reduced"]
            except ValueError:
                continue
    return out

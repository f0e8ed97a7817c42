"""Target drivers by name. A new transport is one module plus one line here;
a new target that reuses a transport is only a file in targets/."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from tuner.errors import BadInput
from tuner.targets.base import Target
from tuner.targets.spec import TargetSpec, load_target

DRIVERS: dict[str, str] = {
    "local": "tuner.targets.local:LocalTarget",
    "python": "tuner.targets.python:PythonTarget",
    "qemu": "tuner.targets.qemu:QemuTarget",
    "ssh": "tuner.targets.ssh:SshTarget",
    "android": "tuner.targets.android:AndroidTarget",
    "replay": "tuner.targets.replay:ReplayTarget",
}


def make_target(spec: TargetSpec, cache_root: Path) -> Target:
    if spec.driver not in DRIVERS:
        raise BadInput(f"unknown driver '{spec.driver}' (known: {', '.join(DRIVERS)})", spec.file, "driver")
    module, cls = DRIVERS[spec.driver].split(":")
    try:
        driver: Any = getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise BadInput(f"driver '{spec.driver}' needs a package that is not installed: {e.name}",
                       spec.file, "driver") from None
    try:
        return driver(spec, cache_root)
    except (TypeError, ValueError, OverflowError) as e:   # a [transport] value of the wrong type (int("x"), ...)
        raise BadInput(f"a [transport] value (or --target-opt) has the wrong type: {e}", spec.file,
                       "transport") from None


__all__ = ["DRIVERS", "Target", "TargetSpec", "load_target", "make_target"]

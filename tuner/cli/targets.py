"""`tune targets`: every defined target and whether it is usable here now, with the reason."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tuner import library
from tuner.errors import BadInput
from tuner.targets import load_target, make_target


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for name in library.names("target"):
            try:
                spec = load_target(name)
                avail = make_target(spec, Path(tmp)).probe()
            except BadInput as e:
                print(f"{name:<16} broken      {e}")
                continue
            state = "usable" if avail.usable else "unusable"
            why = "" if avail.usable else f"  ({avail.reason})"
            print(f"{name:<16} {state:<10} {spec.driver:<8} {spec.measure.method:<12} {spec.description}{why}")
    return 0

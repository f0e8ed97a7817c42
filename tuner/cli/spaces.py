"""`tune spaces [STUDY]`: the studies that can be explored, or one study's knobs."""

from __future__ import annotations

import argparse

from tuner import library
from tuner.errors import BadInput
from tuner.study import load_study


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", nargs="?", help="show this study's knobs with their domains")


def run(args: argparse.Namespace) -> int:
    if args.study:
        spec = load_study(args.study)
        print(f"{spec.name}: {spec.description}")
        print(f"target {spec.target}; objectives " + ", ".join(f"{o.name} ({o.direction})" for o in spec.objectives))
        width = max((len(n) for n in spec.space.knobs), default=4)
        for knob in spec.space.knobs.values():
            cond = f"  [when {knob.when.text}]" if knob.when else ""
            print(f"  {knob.name:<{width}}  {knob.kind:<11} {knob.domain()}  -> {knob.to}{cond}")
        for c in spec.space.constraints:
            print(f"  constraint: {c.name}")
        return 0
    for name in library.names("study"):
        try:
            spec = load_study(name)
        except BadInput as e:
            print(f"{name:<20} (broken: {e})")
            continue
        objs = ",".join(o.name for o in spec.objectives)
        print(f"{name:<20} {len(spec.space):>4} knobs  target {spec.target:<13} objectives {objs:<34} {spec.description}")
    return 0

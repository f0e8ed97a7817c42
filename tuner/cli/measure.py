"""`tune measure STUDY --set knob=value ...`: build and measure one configuration."""

from __future__ import annotations

import argparse
import json

from tuner.cli.common import add_format, add_study, add_target, open_target, results_dir
from tuner.evaluate import Evaluator
from tuner.study import load_study


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study(p)
    add_target(p)
    p.add_argument("--set", dest="pins", metavar="KNOB=VALUE", action="append", default=[],
                   help="a knob value (repeatable); knobs not set take their defaults")
    add_format(p, ("table", "json"), "table")


def run(args: argparse.Namespace) -> int:
    spec = load_study(args.study)
    config = spec.space.complete(spec.space.parse_pins(args.pins))
    out = results_dir(args, spec)
    target = open_target(args, spec, out)
    outcome = Evaluator(spec, target, out).evaluate(config)
    m = outcome.measurement
    doc = {"config": config, "ok": outcome.ok, "values": outcome.values or {},
           "reason": str(m.reason) if m.reason else None, "detail": m.detail,
           "metrics": dict(m.metrics), "samples_ms": list(m.samples_ms), "checksum": m.checksum,
           "timing": outcome.timing}
    if args.format == "json":
        print(json.dumps(doc, indent=2, default=str))
    else:
        changed = {k: v for k, v in config.items() if v != spec.space.knobs[k].default}
        print("config:  " + (" ".join(f"{k}={v}" for k, v in changed.items()) or "all knobs at their defaults")
              + (f" (the other {len(config) - len(changed)} knobs at their defaults)" if changed else ""))
        if outcome.ok:
            for o in spec.objectives:
                print(f"{o.name:>16} = {outcome.values[o.name]:.6g} {o.unit}")
            extra = {k: v for k, v in m.metrics.items() if k not in {o.metric for o in spec.objectives}}
            print("metrics: " + " ".join(f"{k}={v:.4g}" for k, v in sorted(extra.items())))
            if m.samples_ms:
                print(f"samples: {len(m.samples_ms)} repetitions (ms): "
                      + " ".join(f"{s:.3f}" for s in m.samples_ms[:10]) + (" ..." if len(m.samples_ms) > 10 else ""))
        else:
            print(f"failed:  {m.reason}: {m.detail}")
    return 0 if outcome.ok else 1



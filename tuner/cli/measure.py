"""`tune measure STUDY --set knob=value ...`: build and measure one configuration."""

from __future__ import annotations

import argparse
import json
import sys

from tuner.cli.common import add_format, add_study, add_target, open_target, results_dir
from tuner.evaluate import Evaluator
from tuner.measure import launches
from tuner.measure.environment import describe
from tuner.study import load_study


STOPPED = {"ci": "interval within ci_rel", "max": "max_launches reached", "raced": "raced out",
           "single": "one launch", "failed": "a launch failed", "min": "min_launches (no latency to adapt on)"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study(p)
    add_target(p)
    p.add_argument("--set", dest="pins", metavar="KNOB=VALUE", action="append", default=[],
                   help="a knob value (repeatable); knobs not set take their defaults")
    add_format(p, ("table", "json"), "table")


def run(args: argparse.Namespace) -> int:
    spec = load_study(args.study)
    config = spec.space.complete(spec.space.parse_pins(args.pins), where="--set")
    out = results_dir(args, spec)
    target = open_target(args, spec, out)
    outcome = Evaluator(spec, target, out).evaluate(config)
    m = outcome.measurement
    doc = {"config": config, "ok": outcome.ok, "values": outcome.values or {},
           "reason": str(m.reason) if m.reason else None, "detail": m.detail,
           "metrics": dict(m.metrics), "samples_ms": list(m.samples_ms), "checksum": m.checksum,
           "measurement": launches.record(m), "environment": dict(m.environment),
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
            if len(m.launches) > 1:
                lo, hi = m.metrics.get("latency_ci_low_ms"), m.metrics.get("latency_ci_high_ms")
                cover = m.metrics.get("latency_ci_coverage", 0.0)
                print(f"launches: {len(m.launches)} processes (stopped: {STOPPED.get(m.stopped, m.stopped)}); "
                      f"latency_ms {m.metrics['latency_ms']:.4g} [{lo:.4g}, {hi:.4g}] "
                      f"({100 * cover:.1f}% interval across launches)")
                print("per-launch medians (ms): " + " ".join(f"{x.value:.3f}" for x in m.launches))
            elif m.samples_ms:
                print(f"samples: {len(m.samples_ms)} repetitions (ms): "
                      + " ".join(f"{s:.3f}" for s in m.samples_ms[:10]) + (" ..." if len(m.samples_ms) > 10 else ""))
        else:
            print(f"failed:  {m.reason}: {m.detail}")
        env = m.environment
        if env.get("run_cpus"):
            print(f"cores: runs on {env['run_cpus']}, builds on {env.get('build_cpus', 'any')}"
                  + (f"; {describe(env)}" if "other_frac" in env else ""))
        if env.get("contended"):
            print(f"warning: the measurement was contended: {describe(env)}", file=sys.stderr)
    return 0 if outcome.ok else 1



"""`tune measure STUDY --set knob=value ... [--against baseline]`: build and measure one
configuration, and with `--against`, what it is worth over the study's baseline (or the knobs'
defaults): the time in ABBA pairs of fresh processes, as `tune reduce` measures it, because one
measurement's latency cannot say whether a hand-picked flag beats -O3 on a machine whose
launches of one binary differ by 2x."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tuner.cli.common import add_format, add_study, add_target, fmt_ratios, fmt_reference, open_target, results_dir
from tuner.errors import BadInput
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
    p.add_argument("--against", choices=("baseline", "defaults"),
                   help="also measure the configuration against the study's baseline or the knobs' defaults "
                        "(the time in ABBA pairs of fresh processes)")
    p.add_argument("--pairs", type=int, metavar="K",
                   help="with --against: ABBA pairs (default: the target's confirm_* policy)")
    add_format(p, ("table", "json"), "table")


def run(args: argparse.Namespace) -> int:
    spec = load_study(args.study)
    config = spec.space.complete(spec.space.parse_pins(args.pins), where="--set")
    if args.against == "baseline" and not spec.baseline:
        raise BadInput(f"'{spec.name}' declares no baseline (use --against defaults)", None, "--against")
    if args.pairs is not None and (args.pairs < 1 or not args.against):
        raise BadInput("must be at least 1, and goes with --against", None, "--pairs")
    out = results_dir(args, spec)
    target = open_target(args, spec, out)
    evaluator = Evaluator(spec, target, out)
    outcome = evaluator.evaluate(config)
    m = outcome.measurement
    against = _against(args, spec, target, evaluator, config, outcome.values) if args.against and outcome.ok else None
    doc = {"config": config, "ok": outcome.ok, "values": outcome.values or {},
           "reason": str(m.reason) if m.reason else None, "detail": m.detail,
           "metrics": dict(m.metrics), "samples_ms": list(m.samples_ms), "checksum": m.checksum,
           "measurement": launches.record(m), "environment": dict(m.environment),
           "timing": outcome.timing}
    if against is not None:
        doc["against"] = against
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
            if against is not None:
                print(f"against {fmt_reference(against)}: " + (fmt_ratios(against["ratios"]) or against["why"]))
        else:
            print(f"failed:  {m.reason}: {m.detail}")
        env = m.environment
        if env.get("run_cpus"):
            print(f"cores: runs on {env['run_cpus']}, builds on {env.get('build_cpus', 'any')}"
                  + (f"; {describe(env)}" if "other_frac" in env else ""))
        if env.get("contended"):
            print(f"warning: the measurement was contended: {describe(env)}", file=sys.stderr)
    return 0 if outcome.ok else 1


def _against(args: argparse.Namespace, spec: Any, target: Any, evaluator: Evaluator, config: dict,
             values: dict | None) -> dict:
    """The configuration over the reference, objective by objective (tuner.artifact.probe)."""
    from tuner.artifact.probe import Probe, measure_against

    reference = dict(spec.baseline or {}) if args.against == "baseline" else {}
    probe = Probe(spec, target, evaluator, args.pairs)
    return {"reference": args.against, "config": reference,
            **measure_against(probe, spec.space, spec.objectives, config, reference, values or {})}

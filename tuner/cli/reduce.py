"""`tune reduce STUDY --trial N`: the smallest set of non-default knobs that keeps every
objective within a tolerance of trial N, by delta debugging with every step measured
(see tuner.artifact.reduce). The result is stored in the study; `tune export` shows it."""

from __future__ import annotations

import argparse
import json
import sys

from tuner.cli.common import add_format, add_study, add_target, fmt_ratios, fmt_reference, open_target, results_dir
from tuner.engine import load_campaign
from tuner.errors import BadInput


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study(p)
    add_target(p)
    p.add_argument("--trial", type=int, required=True, metavar="N", help="the verified trial to reduce")
    p.add_argument("--tolerance", type=float, default=0.02, metavar="REL",
                   help="how much worse than the point an objective may get (default: 0.02)")
    p.add_argument("--pairs", type=int, metavar="K",
                   help="ABBA pairs per test (default: the target's confirm_* policy; none on a deterministic target)")
    p.add_argument("--max-tests", type=int, default=200, metavar="N", help="stop after N tests (default: 200)")
    add_format(p, ("table", "json"), "table")


def run(args: argparse.Namespace) -> int:
    from tuner.artifact.probe import Probe
    from tuner.artifact.reduce import Reducer, store_reduction
    from tuner.evaluate import Evaluator
    from tuner.report import build_report

    spec, study = load_campaign(args.study, args.results, args.storage)
    report = build_report(spec, study)
    point = next((r for r in report.verified if r.number == args.trial), None)
    if point is None:
        raise BadInput(f"trial {args.trial} is not a verified trial of '{spec.name}'", None, "--trial")
    if args.tolerance < 0 or (args.pairs is not None and args.pairs < 1) or args.max_tests < 1:
        raise BadInput("--tolerance must not be negative, --pairs and --max-tests at least 1", None, "--tolerance")
    out = results_dir(args, spec)
    target = open_target(args, spec, out)
    evaluator = Evaluator(spec, target, out)
    probe = Probe(spec, target, evaluator, args.pairs)
    say = (lambda m: print(m, file=sys.stderr)) if args.format == "table" else (lambda m: None)
    reducer = Reducer(spec.space, spec.objectives, point.params, probe, tolerance=args.tolerance,
                      max_tests=args.max_tests, log=say)
    say(f"reducing trial {point.number}: {len(reducer.changes)} knobs away from their defaults, "
        f"tolerance {args.tolerance:.1%}" + ("" if probe.deterministic else ", timed objectives in ABBA pairs"))
    reference = spec.baseline or {}
    try:
        doc = reducer.run()
        doc["against"] = {"reference": "baseline" if spec.baseline else "defaults", "config": dict(reference),
                          **reducer.against(list(doc["reduced"]), reference)}
    finally:
        target.cleanup()
    doc.update(study=spec.name, trial=point.number, target=target.spec.name, values=point.values)
    store_reduction(study, point.number, doc)
    if args.format == "json":
        print(json.dumps(doc, indent=1))
        return 0
    print(f"trial {point.number}: {doc['changes']} non-default knobs -> {len(doc['reduced'])} "
          f"({doc['tests']} tests, {doc['launches']} launches{', budget exhausted' if doc['exhausted'] else ''})")
    print("reduced configuration: " + (" ".join(f"{k}={v}" for k, v in doc["reduced"].items()) or "(defaults)"))
    against = doc["against"]
    print(f"  measured against {fmt_reference(against)}: " + (fmt_ratios(against["ratios"]) or against["why"] or "n/a"))
    for i, step in enumerate(doc["steps"], 1):
        print(f"  step {i}: back to defaults: {' '.join(f'{k}={v}' for k, v in step['removed'].items())}")
        print(f"          kept {step['kept']}; measured against the point: {fmt_ratios(step['ratios'])}")
    return 0

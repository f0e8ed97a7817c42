"""`tune reproduce STUDY [--trial N ... | --front]`: rebuild and re-measure recorded points in
ABBA pairs with the baseline; per point and objective the recorded value, the new value with
its 95% CI and a verdict. Exit 0 only if every point reproduced (see tuner.artifact.reproduce)."""

from __future__ import annotations

import argparse
import json
import sys

from tuner.cli.common import add_format, add_study, add_target, open_target, results_dir
from tuner.engine import load_campaign
from tuner.errors import BadInput


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study(p)
    add_target(p)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, action="append", metavar="N", help="a trial to reproduce (repeatable)")
    which.add_argument("--front", action="store_true", help="every point of the Pareto front (the default)")
    p.add_argument("--pairs", type=int, metavar="K",
                   help="ABBA pairs against the baseline per point (default: the target's confirm_min_pairs.."
                        "confirm_max_pairs, until the ratio's interval is narrow; none on a deterministic target)")
    p.add_argument("--tolerance", type=float, default=0.05, metavar="REL",
                   help="relative difference accepted besides the CI (default: 0.05)")
    add_format(p, ("table", "json"), "table")


def run(args: argparse.Namespace) -> int:
    from tuner import provenance
    from tuner.artifact.probe import Probe
    from tuner.artifact.reproduce import reproduce
    from tuner.evaluate import Evaluator
    from tuner.report import build_report

    spec, study = load_campaign(args.study, args.results, args.storage)
    report = build_report(spec, study)
    by_number = {r.number: r for r in report.verified}
    if args.trial:
        missing = [n for n in args.trial if n not in by_number]
        if missing:
            raise BadInput(f"trial {missing[0]} is not a verified trial of '{spec.name}' "
                           f"(verified: {', '.join(map(str, sorted(by_number))) or 'none'})", None, "--trial")
        points = [by_number[n] for n in args.trial]
    else:
        points = list(report.front)
    if not points:
        raise BadInput(f"'{spec.name}' has no verified trial to reproduce", None, "--front")
    if report.baseline is not None and all(p.number != report.baseline.number for p in points):
        points = [report.baseline, *points]
    out = results_dir(args, spec)
    target = open_target(args, spec, out)
    evaluator = Evaluator(spec, target, out)
    if (args.pairs is not None and args.pairs < 1) or args.tolerance < 0:
        raise BadInput("--pairs must be at least 1 and --tolerance not negative", None, "--pairs")
    probe = Probe(spec, target, evaluator, args.pairs)
    say = (lambda m: print(m, file=sys.stderr)) if args.format == "table" else (lambda m: None)
    try:
        doc = reproduce(points, report.baseline, spec.objectives, probe, runs=provenance.load_runs(study),
                        tolerance=args.tolerance, force_relative=target.spec.name != spec.target, log=say)
    finally:
        target.cleanup()
    doc.update(study=spec.name, target=target.spec.name)
    (out / "reproduce.json").write_text(json.dumps(doc, indent=1))
    if args.format == "json":
        print(json.dumps(doc, indent=1))
    else:
        _table(doc, spec)
    return 0 if doc["reproduced"] else 1


def _table(doc: dict, spec) -> None:
    from tuner.artifact.table import fmt_value

    print(f"{'trial':<14} {'objective':<16} {'recorded':>12} {'new [95% CI]':>30}  verdict")
    for p in doc["points"]:
        label = f"{p['trial']}{' (baseline)' if p['baseline'] else ''}"
        for o in spec.objectives:
            r = p["objectives"][o.name]
            ci = tuple(r["ci"]) if r["ci"] else None
            new, _ = fmt_value(r["new"], ci)
            lo_hi = f"[{_fmt(ci[0], ci)}, {_fmt(ci[1], ci)}]" if ci else ""
            rec = fmt_value(r["recorded"])[0]
            extra = ""
            ratio = r.get("ratio")
            if ratio and ratio["new"] is not None and (p["relative"] or ratio["paired"]):
                rci = f" [{ratio['ci'][0]:.3f}, {ratio['ci'][1]:.3f}]" if ratio["ci"] else ""
                extra = f"  (vs baseline: {ratio['recorded']:.3f} -> {ratio['new']:.3f}{rci})"
            print(f"{label:<14} {o.name:<16} {rec:>12} {new + ' ' + lo_hi:>30}  {r['verdict']}{extra}")
            label = ""
        if p["failure"]:
            print(f"{'':<14} failed: {p['failure'].splitlines()[0]}")
    n = sum(p["reproduced"] for p in doc["points"])
    print(f"{n} of {len(doc['points'])} points reproduced on {doc['target']} ({doc['launches']} launches)"
          + ("" if doc["reproduced"] else "; exit 1"))


def _fmt(x: float, ci: tuple) -> str:
    """A CI bound with the decimals of the value it brackets."""
    from tuner.artifact.table import decimals_for, fmt_fixed
    return fmt_fixed(x, decimals_for((ci[1] - ci[0]) / 2)) if ci[1] > ci[0] else f"{x:.4g}"

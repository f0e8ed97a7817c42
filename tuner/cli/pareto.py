"""`tune pareto STUDY`: the exact non-dominated set of finished, verified trials."""

from __future__ import annotations

import argparse

from tuner.cli.common import add_format, add_study
from tuner.engine import load_campaign
from tuner.export import FORMATS, format_front
from tuner.report import build_report, concise


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study(p)
    add_format(p, FORMATS, "table")


def run(args: argparse.Namespace) -> int:
    spec, study = load_campaign(args.study, args.results, args.storage)
    report = build_report(spec, study)
    front = concise(report.front, spec) if args.format == "table" else report.front
    print(format_front(front, spec.objectives, args.format))
    if args.format == "table":
        print(f"{len(report.front)} Pareto points of {len(report.verified)} verified trials; "
              f"hypervolume {report.hypervolume:.6g} against reference "
              + "(" + ", ".join(f"{o.name}={x:.4g}" for o, x in zip(spec.objectives, report.reference)) + ")")
    return 0

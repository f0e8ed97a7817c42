"""`tune export STUDY --out DIR`: Pareto CSV/JSON, all trials CSV, LaTeX table, plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from tuner import trials as T
from tuner.cli.common import add_study, results_dir
from tuner.cli.status import load_campaign
from tuner.export import write_exports
from tuner.report import build_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default: RESULTS/STUDY/export)")


def run(args: argparse.Namespace) -> int:
    spec, study = load_campaign(args)
    report = build_report(spec, study)
    out = Path(args.out) if args.out else results_dir(args, spec) / "export"
    files = write_exports(out, T.dataframe(report.records, spec.objectives), report.front,
                          spec.objectives, report.baseline, spec.name)
    for f in files:
        print(f)
    return 0

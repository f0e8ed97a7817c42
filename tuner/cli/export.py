"""`tune export STUDY --out DIR`: the paper bundle (see tuner.artifact.bundle): the classic
pareto.csv/json/tex/png/pdf and trials.csv, plus a table rounded to its CIs, figures in
PDF/PGF/PNG, front.csv/json with provenance, and the artifact appendix (Markdown, LaTeX)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tuner.artifact.importance import EVALUATORS
from tuner.artifact.table import MAX_KNOBS
from tuner.cli.common import add_study, results_dir
from tuner.engine import load_campaign
from tuner.report import build_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default: RESULTS/STUDY/export)")
    p.add_argument("--columns", metavar="LIST",
                   help="table columns, comma-separated: trial, objectives (all), an objective's name, "
                        "speedup.OBJECTIVE, metric.NAME, config (default: trial,objectives,config)")
    p.add_argument("--importance", choices=sorted(EVALUATORS), default="fanova",
                   help="Optuna importance evaluator for the knob-importance figure (default: fanova)")
    p.add_argument("--max-knobs", type=int, default=MAX_KNOBS, metavar="N",
                   help=f"knobs shown per configuration in the table (default: {MAX_KNOBS})")


def run(args: argparse.Namespace) -> int:
    from tuner.artifact.bundle import write_bundle

    spec, study = load_campaign(args.study, args.results, args.storage)
    report = build_report(spec, study)
    out = Path(args.out) if args.out else results_dir(args, spec) / "export"
    for f in write_bundle(out, spec, study, report, columns=args.columns, evaluator=args.importance,
                          max_knobs=args.max_knobs):
        print(f)
    return 0

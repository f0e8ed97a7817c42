"""`tune confirm STUDY`: re-measure the Pareto front and the baseline, interleaved.

The best of many noisy measurements is biased low (the winner's curse): a front point may be
there by luck. Confirming re-measures every front point and the baseline `--repeats` times,
round-robin so that drifts in machine load hit all of them alike, and reports the median and
range of each objective and whether each point is still non-dominated on the medians. Results
go to RESULTS/STUDY/confirm.json; the campaign itself is not changed.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

import numpy as np

from tuner.cli.common import add_format, add_study, add_target, open_target, results_dir
from tuner.engine import load_campaign
from tuner.evaluate import Evaluator
from tuner.pareto import nondominated_mask
from tuner.report import build_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study(p)
    add_target(p)
    p.add_argument("--repeats", type=int, default=5, metavar="K", help="measurements per point (default: 5)")
    add_format(p, ("table", "json"), "table")


def run(args: argparse.Namespace) -> int:
    spec, study = load_campaign(args.study, args.results, args.storage)
    report = build_report(spec, study)
    points = list(report.front)
    if report.baseline is not None and all(p.number != report.baseline.number for p in points):
        points.append(report.baseline)
    out = results_dir(args, spec)
    evaluator = Evaluator(spec, open_target(args, spec, out), out)
    samples: dict[int, dict[str, list[float]]] = {p.number: {o.name: [] for o in spec.objectives} for p in points}
    failures: dict[int, list[str]] = {p.number: [] for p in points}
    for _ in range(max(args.repeats, 1)):
        for p in points:
            outcome = evaluator.evaluate(dict(p.params))
            if outcome.ok and outcome.values:
                for name, v in outcome.values.items():
                    samples[p.number][name].append(v)
            else:
                failures[p.number].append(str(outcome.reason))
    doc = _document(spec, report, points, samples, failures)
    (out / "confirm.json").write_text(json.dumps(doc, indent=2))
    if args.format == "json":
        print(json.dumps(doc, indent=2))
    else:
        _print_table(spec, doc)
    return 0


def _document(spec: Any, report: Any, points: list, samples: dict, failures: dict) -> list[dict[str, Any]]:
    rows = []
    for p in points:
        confirmed = {name: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
                     for name, v in samples[p.number].items() if v}
        rows.append({"trial": p.number, "baseline": report.baseline is not None and p.number == report.baseline.number,
                     "campaign": p.values, "confirmed": confirmed, "failures": failures[p.number]})
    complete = [r for r in rows if len(r["confirmed"]) == len(spec.objectives)]
    if complete:
        medians = np.array([[r["confirmed"][o.name]["median"] for o in spec.objectives] for r in complete])
        mask = nondominated_mask(medians, [o.direction for o in spec.objectives])
        for r, on in zip(complete, mask):
            r["on_confirmed_front"] = bool(on)
    return rows


def _print_table(spec: Any, doc: list[dict[str, Any]]) -> None:
    print(f"{'trial':<13} " + "  ".join(f"{o.name + ' campaign -> median [min, max]':<44}" for o in spec.objectives)
          + "  on front")
    for r in doc:
        cells = []
        for o in spec.objectives:
            c = r["confirmed"].get(o.name)
            camp = r["campaign"].get(o.name, float("nan"))
            cells.append(f"{camp:.4g} -> {c['median']:.4g} [{c['min']:.4g}, {c['max']:.4g}]" if c else f"{camp:.4g} -> failed")
        label = f"{r['trial']}{' (baseline)' if r['baseline'] else ''}"
        front = {True: "yes", False: "no"}.get(r.get("on_confirmed_front"), "-")
        print(f"{label:<13} " + "  ".join(f"{c:<44}" for c in cells) + f"  {front}")
        if r["failures"]:
            print(f"{'':<13} failed re-measurements: {', '.join(r['failures'])}")

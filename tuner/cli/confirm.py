"""`tune confirm STUDY`: a deeper check of a finished front, against the baseline, in pairs.

`tune explore` already confirms every point before admitting it to the front (paired ABBA
launches against the baseline, tuner.measure.confirm). This re-checks the finished front later,
with more pairs and no racing: each front point and the baseline run alternately in fresh
processes (A B, B A, ...) `--pairs` times (tuner.measure.paired.compare_builds), and for each
point it reports, per objective, the median and range over its launches and, for a timed
objective, the paired speed-up over the baseline with its 95% interval; and whether the point
is still non-dominated on the medians. Results go to RESULTS/STUDY/confirm.json; the campaign
itself is not changed.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

import numpy as np

from tuner.cli.common import add_format, add_study, add_target, open_target, results_dir
from tuner.engine import load_campaign
from tuner.evaluate import bind_target
from tuner.measure.front import timed
from tuner.measure.paired import PairPolicy, compare_builds
from tuner.pareto import nondominated_mask
from tuner.records import Measurement
from tuner.report import build_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study(p)
    add_target(p)
    p.add_argument("--pairs", "--repeats", dest="pairs", type=int, default=20, metavar="N",
                   help="ABBA pairs per front point against the baseline (default: 20; --repeats is the old name)")
    add_format(p, ("table", "json"), "table")


def run(args: argparse.Namespace) -> int:
    spec, study = load_campaign(args.study, args.results, args.storage)
    report = build_report(spec, study)
    out = results_dir(args, spec)
    target = open_target(args, spec, out)
    bind_target(spec, target)
    base = report.baseline
    points = [p for p in report.front if base is None or p.number != base.number]
    pairs = max(args.pairs, 1)
    pol = target.spec.measure.pair_policy()
    policy = PairPolicy(pairs, pairs, pol.ci_rel, pol.level, pol.contention, pol.exclude_contended)
    base_runs: list[Measurement] = []
    rows = []
    base_build = None
    if base is not None:
        base_r = spec.space.render(dict(base.params))
        base_build = target.build(spec.program, base_r)
    for p in points:
        row: dict[str, Any] = {"trial": p.number, "baseline": False, "campaign": dict(p.values), "failures": []}
        r = spec.space.render(dict(p.params))
        built = target.build(spec.program, r)
        if isinstance(built, Measurement) or base_build is None or isinstance(base_build, Measurement):
            why = built.detail if isinstance(built, Measurement) else "no baseline to compare with"
            row.update(confirmed={}, failures=[why])
            rows.append(row)
            continue
        c = compare_builds(target, spec.program, (built, r), (base_build, base_r), policy=policy)
        base_runs.extend(c.runs_b)
        row["confirmed"] = _spread(spec, c.runs_a)
        if c.failure is not None:
            row["failures"].append(f"{'this point' if c.which_failed == 'a' else 'the baseline'}: "
                                   f"{c.failure.reason}: {c.failure.detail[-200:]}")
        if c.ratio.n and any(timed(o) for o in spec.objectives):
            sp = c.speedup
            row["speedup"] = {o.name: {"value": sp.value, "low": sp.low, "high": sp.high, "pairs": c.pairs,
                                       "counted": sp.n, "coverage": sp.coverage}
                              for o in spec.objectives if timed(o)}
        rows.append(row)
    if base is not None:
        rows.append({"trial": base.number, "baseline": True, "campaign": dict(base.values),
                     "confirmed": _spread(spec, base_runs), "failures": []})
    _front(spec, rows)
    (out / "confirm.json").write_text(json.dumps(rows, indent=2))
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        _print_table(spec, rows, pairs)
    return 0


def _spread(spec: Any, runs: tuple[Measurement, ...] | list[Measurement]) -> dict[str, dict[str, float]]:
    """Per objective: median, min, max and n over the launches' own values."""
    out = {}
    for o in spec.objectives:
        v = [x for x in (o.value(m.metrics) for m in runs) if x is not None]
        if v:
            out[o.name] = {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
    return out


def _front(spec: Any, rows: list[dict[str, Any]]) -> None:
    complete = [r for r in rows if len(r["confirmed"]) == len(spec.objectives)]
    if complete:
        medians = np.array([[r["confirmed"][o.name]["median"] for o in spec.objectives] for r in complete])
        mask = nondominated_mask(medians, [o.direction for o in spec.objectives])
        for r, on in zip(complete, mask):
            r["on_confirmed_front"] = bool(on)


def _print_table(spec: Any, rows: list[dict[str, Any]], pairs: int) -> None:
    print(f"each front point against the baseline, {pairs} ABBA pairs of fresh processes; "
          "per objective: campaign value -> median [min, max] over the launches")
    print(f"{'trial':<13} " + "  ".join(f"{o.name:<40}" for o in spec.objectives) + "  speed-up (95% CI)      on front")
    for r in rows:
        cells = []
        for o in spec.objectives:
            c = r["confirmed"].get(o.name)
            camp = r["campaign"].get(o.name, float("nan"))
            cells.append(f"{camp:.4g} -> {c['median']:.4g} [{c['min']:.4g}, {c['max']:.4g}]" if c else f"{camp:.4g} -> failed")
        sp = next(iter((r.get("speedup") or {}).values()), None)
        speed = f"{sp['value']:.3f}x [{sp['low']:.3f}, {sp['high']:.3f}]" if sp else "-"
        label = f"{r['trial']}{' (baseline)' if r['baseline'] else ''}"
        front = {True: "yes", False: "no"}.get(r.get("on_confirmed_front"), "-")
        print(f"{label:<13} " + "  ".join(f"{c:<40}" for c in cells) + f"  {speed:<22} {front}")
        for f in r["failures"]:
            print(f"{'':<13} failed: {f}")

"""`tune status STUDY`: trials by state, failures by reason, engine overhead."""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

from tuner import trials as T
from tuner.measure import summary as measure_summary
from tuner.measure.topup import merge   # explore's top-ups of its printed figures
from tuner.result import TrialRecord, TrialStatus
from tuner.cli.common import add_format, add_study
from tuner.engine import load_campaign


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study(p)
    add_format(p, ("table", "json"), "table")


def timing_summary(recs: list[TrialRecord]) -> dict[str, float]:
    """Median seconds per measured trial: build, run, and the engine's own overhead."""
    measured = [r for r in recs if r.timing.get("total_s") and r.status.measured]
    if not measured:
        return {}
    build = [r.timing.get("build_s", 0.0) for r in measured]
    runs = [r.timing.get("run_s", 0.0) for r in measured]
    total = [r.timing.get("total_s", 0.0) for r in measured]
    verify = [max(t - b - x, 0.0) for t, b, x in zip(total, build, runs)]
    return {"build_s": statistics.median(build), "run_s": statistics.median(runs),
            "evaluate_overhead_s": statistics.median(verify)}


def surrogate_summary(recs: list[TrialRecord]) -> dict[str, Any]:
    """Trials pruned, measurements saved, estimated time saved, audited false-prune rate, and the
    trials measured unpruned because screening did not pay (stood aside) or because the audits
    showed it prunes good points (gated)."""
    pruned = [r for r in recs if r.status == TrialStatus.PRUNED]
    audits = [r.audit for r in recs if r.audit]
    false = sum(1 for a in audits if a.get("false_prune"))
    t = timing_summary(recs)
    per_trial = t.get("build_s", 0.0) + t.get("run_s", 0.0)
    cost = sum(r.timing.get("surrogate_s", 0.0) for r in recs)
    # measured without screening: a measurement cost less than screening would save (policy.py)
    aside = [r.surrogate for r in recs if r.surrogate and r.surrogate.get("stood_aside")
             and r.surrogate.get("gate") != "audits"]
    # screened, judged poor, measured anyway: the audits showed the surrogate prunes good points
    gated = [r.surrogate for r in recs if r.surrogate and r.surrogate.get("gate") == "audits"]
    return {"pruned": len(pruned), "measurements_saved": len(pruned),
            "estimated_seconds_saved": round(len(pruned) * per_trial - cost, 3),
            "surrogate_seconds": round(cost, 3), "audits": len(audits), "false_prunes": false,
            "false_prune_rate": (false / len(audits)) if audits else None,
            "stood_aside": len(aside), "stood_aside_why": aside[-1]["why"] if aside else None,
            "gated": len(gated), "gated_why": gated[-1]["why"] if gated else None}


def run(args: argparse.Namespace) -> int:
    spec, study = load_campaign(args.study, args.results, args.storage)
    recs = merge(T.records(study, spec.objectives), study.user_attrs)
    doc = T.counts(recs)
    doc["study"] = spec.name
    doc["median_seconds_per_trial"] = timing_summary(recs)
    doc["surrogate"] = surrogate_summary(recs)
    doc["measurement"] = measure_summary.savings(recs)
    if args.format == "json":
        print(json.dumps(doc, indent=2))
        return 0
    same = f", {doc['same_program']} built a program measured before" if doc["same_program"] else ""
    print(f"study {spec.name}: {doc['finished']} trials finished ({doc['measured']} measured, "
          f"{doc['skipped']} skipped by the surrogate{same})")
    for state, n in doc["by_state"].items():
        print(f"  {state:<12} {n}")
    if doc["failures_by_reason"]:
        print("failures by reason:")
        for reason, n in doc["failures_by_reason"].items():
            print(f"  {reason:<14} {n}")
    common = doc["most_common_failure"]
    if common:
        print(f"most common failure ({common['trials']} trials, {common['reason']}, last in trial "
              f"{common['last_trial']}): {common['message'] or '(no output)'}")
    sg = doc["surrogate"]
    if sg["pruned"] or sg["audits"]:
        rate = "n/a" if sg["false_prune_rate"] is None else f"{sg['false_prune_rate']:.0%}"
        print(f"surrogate: {sg['pruned']} trials pruned (measurements saved), about "
              f"{sg['estimated_seconds_saved']:.1f}s saved net of {sg['surrogate_seconds']:.1f}s of modelling; "
              f"{sg['audits']} audits, false-prune rate {rate}")
    if sg["stood_aside"]:
        print(f"surrogate stood aside for {sg['stood_aside']} trials (measured without screening); "
              f"last: {sg['stood_aside_why']}")
    if sg["gated"]:
        print(f"surrogate stopped pruning for {sg['gated']} trials (measured and audited); last: {sg['gated_why']}")
    ms = doc["measurement"]
    if ms["measured"] and (ms["raced"] or ms["confirmed"] or ms["baseline_checks"]):
        print(measure_summary.format_savings(ms))
    t = doc["median_seconds_per_trial"]
    if t:
        print(f"median per measured trial: build {t['build_s']:.3f}s, run {t['run_s']:.3f}s, "
              f"other evaluation work (reference, verify) {t['evaluate_overhead_s'] * 1e3:.1f} ms")
    return 0

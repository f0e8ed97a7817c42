"""`tune explore STUDY`: run or resume a campaign, then print the Pareto front."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from tuner import engine, jobs
from tuner import trials as T
from tuner.campaign import Campaign, Options
from tuner.cli.common import add_study, add_target, fmt_config, open_target, results_dir
from tuner.errors import BadInput
from tuner.export import format_front, write_exports
from tuner.measure import summary as measure_summary
from tuner.measure.environment import describe
from tuner.measure.front import timed
from tuner.progress import Progress
from tuner.report import Report, build_report, concise
from tuner.samplers import NAMES, choose
from tuner.study import load_study


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study(p)
    add_target(p)
    p.add_argument("--trials", type=int, metavar="N",
                   help="stop when N configurations have been measured in this study (built and run, "
                        "failures included); a proposal the surrogate skips, one that repeats a measured "
                        "configuration or breaks a declared constraint does not count (default: the "
                        "study's own budget)")
    p.add_argument("--sampler", choices=NAMES, default=None, help="search strategy (default: the study's, else auto)")
    p.add_argument("--seed", type=int, default=None, help="sampler seed, for a reproducible search")
    p.add_argument("--set", dest="pins", metavar="KNOB=VALUE", action="append", default=[],
                   help="pin a knob to one value (repeatable)")
    p.add_argument("--surrogate", choices=("on", "off", "always"), default="on",
                   help="skip candidates a surrogate model predicts cannot reach the Pareto front; 'on' "
                        "stands aside while a measurement costs less than screening saves, 'always' "
                        "screens whatever it costs (default: on)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="trials in flight at once: builds overlap the measured run; runs timed on this "
                        "machine are still measured one at a time (default: 1)")
    p.add_argument("--no-seeds", action="store_true",
                   help="do not measure the obvious points (-O2, -O3, -Os, -O3 -march=native or the study's "
                        "seeds) after the baseline: the sampler alone decides")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    p.add_argument("--no-export", action="store_true", help="do not write CSV/JSON/LaTeX/plots at the end")
    p.add_argument("--warm-start", metavar="STUDY", help="start a new campaign from a finished study's front "
                   "(found in --warm-results, default: --results)")
    p.add_argument("--warm-results", metavar="DIR", help="results root of the --warm-start study")


def run(args: argparse.Namespace) -> int:
    spec = load_study(args.study)
    pins = spec.space.parse_pins(args.pins)
    trials = args.trials if args.trials is not None else spec.trials
    if trials < 1:
        raise BadInput("--trials must be at least 1", None, "--trials")
    if args.jobs < 1:
        raise BadInput("--jobs must be at least 1", None, "--jobs")
    sampler, why = choose(args.sampler or spec.sampler, spec.space, trials)
    out = results_dir(args, spec)
    target = open_target(args, spec, out)
    screen = None
    if args.surrogate != "off":
        from tuner.surrogate import PruningPolicy, Settings   # scikit-learn: a second of imports, when used
        screen = PruningPolicy(spec, Settings(stand_aside=args.surrogate == "on"), seed=args.seed)
    campaign = engine.start(spec, target, Options(trials, sampler, args.seed, pins, args.storage, out,
                                                  not args.no_progress), screen, seeds=not args.no_seeds)
    record_provenance(campaign, sampler, args.seed, screen)
    if args.warm_start:
        from pathlib import Path

        from tuner.artifact.warmstart import warm_start
        note = warm_start(campaign, args.warm_start, Path(args.warm_results or args.results))
        if not args.no_progress:
            print(note, file=sys.stderr)
    before = campaign.finished()
    say = (lambda m: None) if args.no_progress else (lambda m: print(m, file=sys.stderr))
    say(f"study {spec.name}: {len(spec.space)} knobs, target {target.spec.name}, "
        f"objectives {', '.join(o.name for o in spec.objectives)}")
    say(f"sampler: {sampler} ({why}); surrogate pruning {args.surrogate}; results in {out}/")
    if args.jobs > 1:
        say(f"jobs: {args.jobs} trials in flight, {jobs.concurrent_runs(campaign, args.jobs)} measured at once")
    if before:
        say(f"resuming: {before} of {trials} trials already finished")
    progress = Progress(trials, min(before, trials), spec.objectives, not args.no_progress)
    progress.seed(campaign.records())
    campaign.observers.append(progress)
    t0 = time.perf_counter()
    try:
        jobs.run(campaign, args.jobs)
        report = top_up(campaign, spec, target, say)
    except KeyboardInterrupt:
        progress.close()
        print(f"\ninterrupted: {campaign.finished()} trials finished and stored; run the same command to resume",
              file=sys.stderr)
        return 130
    finally:
        progress.close()
        target.cleanup()
    elapsed = time.perf_counter() - t0
    if report is None:
        report = build_report(spec, campaign.study)
    overhead = progress.overhead()
    if overhead:
        say(overhead)
    counts = T.counts(report.records)
    same = f", {counts['same_program']} built a program measured before" if counts["same_program"] else ""
    print(f"\n{spec.name}: {campaign.finished()} trials finished ({counts['measured']} measured, "
          f"{len(report.verified)} verified; {counts['skipped']} skipped by the surrogate{same}, not counted) "
          f"in {elapsed:.1f}s this run")
    if not report.front:
        print("no verified configuration yet: see `tune status " + spec.name + "` for the failures")
        return 0
    print(f"Pareto front ({len(report.front)} points, hypervolume {report.hypervolume:.6g} "
          f"against reference {fmt_point(report.reference)}; * = knee):")
    print(format_front(concise(report.front, spec), spec.objectives, "table"))
    print("(params: knobs away from their defaults; `tune pareto --format json` has them all)")
    noisy = target.spec.measure.noisy       # a deterministic target (a simulator): times are exact
    if noisy:
        print_confirmed(report, spec)
    if report.baseline is not None:
        base = ", ".join(f"{k}={v:.4g}" for k, v in report.baseline.values.items())
        on_front = any(r.number == report.baseline.number for r in report.front)
        print(f"baseline (trial {report.baseline.number}: {fmt_config(spec.baseline)}): {base}"
              f" -- {'on' if on_front else 'dominated by'} the front")
        for name, s in measure_summary.speedups(report.verified, report.baseline, spec.objectives, noisy).items():
            print("  " + measure_summary.format_speedup(name, s, [r.number for r in report.front]))
    saved = measure_summary.savings(report.records)
    if saved["measured"] and (saved["raced"] or saved["confirmed"] or saved["baseline_checks"]):
        say(measure_summary.format_savings(saved))
    contended = [r for r in campaign.told_here if noisy and (r.environment or {}).get("contended")]
    if contended:
        worst = max(contended, key=lambda r: r.environment.get("other_frac", 0.0))
        print(f"warning: {len(contended)} of {len(campaign.told_here)} trials measured in this run shared their "
              f"run core with other processes ({describe(worst.environment)} at worst); contended launches were "
              f"left out where enough clean ones remained, but a quieter machine gives tighter figures",
              file=sys.stderr)
    if not args.no_export:
        files = write_exports(out / "export", T.dataframe(report.records, spec.objectives), report.front,
                              spec.objectives, report.baseline, spec.name)
        print("wrote: " + ", ".join(str(f) for f in files))
    return 0


def print_confirmed(report: Any, spec: Any) -> None:
    """Each front point's timed objectives against the baseline: the paired ABBA ratio with its
    95% interval (tuner.measure.confirm), or that it was not confirmed; never a ratio of values
    measured at different times."""
    names = [o.name for o in spec.objectives if timed(o)]
    if not names or report.baseline is None:
        return
    lines = []
    for r in report.front:
        if r.number == report.baseline.number:
            continue
        conf = measure_summary.confirmation(r)
        if conf is None:
            lines.append(f"  trial {r.number}: not confirmed")
            continue
        sp = conf["speedup"]
        lines.append(f"  trial {r.number}: {sp['value']:.3f}x [{sp['low']:.3f}, {sp['high']:.3f}] "
                     f"({conf['pairs']} pairs: {conf['candidate_ms']:.4g} ms against {conf['baseline_ms']:.4g} ms)"
                     + _topped(conf))
    if lines:
        print(f"speed-up of each front point over the baseline ({', '.join(names)}; paired ABBA launches in "
              "fresh processes, 95% CI):")
        print("\n".join(lines))


def top_up(campaign: Campaign, spec: Any, target: Any, say: Any) -> Report | None:
    """More pairs for the figures printed next (tuner.measure.topup): the best point of each
    timed objective and the knee, when the campaign confirmed them and the target asks for it.
    Returns the report it chose them from when nothing changed, so explore need not build it twice."""
    ms = target.spec.measure
    if not (ms.noisy and ms.confirm and ms.confirm_topup and getattr(campaign.evaluator, "active", False)):
        return None
    from tuner.measure.topup import top_up_all
    t0 = time.perf_counter()
    report = build_report(spec, campaign.study)
    done = top_up_all(campaign.study, spec, target, report, say)
    if done:
        say(f"topped up {len(done)} figure{'s' if len(done) != 1 else ''} in {time.perf_counter() - t0:.1f}s")
    for number, doc in done.items():
        if doc.get("stopped") in ("failed", "wrong output"):
            print(f"warning: trial {number}'s top-up stopped ({doc['stopped']}: {doc.get('detail', '')[-200:]}); "
                  f"its figure is the one from admission: check it with `tune confirm {spec.name}`", file=sys.stderr)
    return None if done else report     # a top-up stored pairs: the figures printed next changed


def _topped(conf: Any) -> str:
    up = conf.get("topped_up") or {}
    if up.get("stopped") in ("failed", "wrong output"):
        return f"; top-up stopped: {up['stopped']} ({up.get('detail', '')[-120:]})"
    if up.get("added"):
        return f"; {up['from']} at admission, {up['added']} more at the end"
    return ""


def fmt_point(p: list[float]) -> str:
    return "(" + ", ".join(f"{x:.4g}" for x in p) + ")"


def record_provenance(campaign: Campaign, sampler: str, seed: int | None, screen: object) -> None:
    """Store this run's provenance in the study once; every measured trial then carries its own."""
    from dataclasses import asdict, is_dataclass

    from tuner import provenance

    settings = getattr(screen, "settings", None)
    surrogate = asdict(settings) if is_dataclass(settings) else ({"enabled": True} if screen else None)
    run = provenance.run_provenance(campaign.spec, campaign.target, sampler=sampler, seed=seed,
                                    surrogate=surrogate)
    provenance.store_run(campaign.study, run)
    campaign.evaluator.provenance = run


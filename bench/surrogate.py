"""Surrogate pruning: measurements, wall time and hypervolume with and without it.

Runs each study with `--surrogate off` and `on` for several seeds and the same number of
proposals (trials asked of the sampler), in-process through the Campaign API, and prints:
measurements performed, wall time, final hypervolume, and the measurements each run needed
to reach 99% of the surrogate-off run's final hypervolume (same seed). Writes a plot of
hypervolume against measurements.

    python bench/surrogate.py                       # resnet18-vta and conv2d-flags, 3 seeds
    python bench/surrogate.py --studies resnet18-vta --seeds 5 --proposals 100
    python bench/surrogate.py --studies resnet18-vta --always   # screen even when it does not pay

By default the policy stands aside while a measurement costs less than screening would save
(resnet18-vta's ~50 ms simulations: then "on" measures nearly everything); `--always` screens
every candidate after the warm-up, which measures the pruning itself.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import optuna

from tuner import trials as T
from tuner.result import TrialStatus
from tuner.campaign import Campaign, Options
from tuner.pareto import default_reference, hypervolume, nondominated_mask
from tuner.study import load_study
from tuner.surrogate import PruningPolicy, Settings
from tuner.targets import load_target, make_target



def run_one(study: str, seed: int, proposals: int, surrogate: bool, root: Path,
            settings: Settings | None = None) -> dict:
    spec = load_study(study)
    out = root / f"{study}-{'on' if surrogate else 'off'}-{seed}"
    shutil.rmtree(out, ignore_errors=True)
    target = make_target(load_target(spec.target), out / "builds")   # own cache: fair wall times
    screen = PruningPolicy(spec, settings, seed=seed) if surrogate else None
    campaign = Campaign(spec, target, Options(proposals, "tpe", seed, {}, None, out, False), screen)
    campaign.log = lambda m: None
    t0 = time.perf_counter()
    campaign.run()
    wall = time.perf_counter() - t0
    recs = sorted(T.records(campaign.study, spec.objectives), key=lambda r: r.number)
    # a measurement is a build+run: verified or failed trials, and infeasibility found by running
    measured = [r for r in recs if r.measured]
    return {"study": study, "seed": seed, "surrogate": surrogate, "wall_s": wall, "records": recs,
            "measurements": len(measured), "pruned": sum(r.status == TrialStatus.PRUNED for r in recs),
            "aside": sum(bool(r.surrogate and r.surrogate.get("stood_aside")) for r in recs),
            "directions": [o.direction for o in spec.objectives], "objectives": [o.name for o in spec.objectives]}


def hv_curve(run: dict, reference: np.ndarray) -> list[tuple[int, float]]:
    """Hypervolume of the verified front after each measurement."""
    points, curve, n = [], [], 0
    for r in run["records"]:
        if r.measured:
            n += 1
            if r.status == TrialStatus.COMPLETE:
                points.append([r.values[o] for o in run["objectives"]])
            if points:
                P = np.array(points)
                front = P[nondominated_mask(P, run["directions"])]
                curve.append((n, hypervolume(front, run["directions"], reference)))
            else:
                curve.append((n, 0.0))
    return curve


def needed(curve: list[tuple[int, float]], level: float) -> int | None:
    return next((n for n, hv in curve if hv >= level), None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--studies", default="resnet18-vta,conv2d-flags")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--proposals", type=int, default=80)
    p.add_argument("--out", default="results/bench-surrogate")
    p.add_argument("--min-gain", type=float, default=Settings.min_gain, help="policy threshold (share of HV)")
    p.add_argument("--kappa", type=float, default=Settings.kappa, help="policy optimism (standard deviations)")
    p.add_argument("--warmup", type=int, default=Settings.warmup, help="measured trials before pruning")
    p.add_argument("--always", action="store_true",
                   help="screen every candidate, even while a measurement costs less than screening saves")
    args = p.parse_args(argv)
    settings = Settings(warmup=args.warmup, kappa=args.kappa, min_gain=args.min_gain, stand_aside=not args.always)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    root = Path(args.out)
    rows = []
    for study in args.studies.split(","):
        runs = []
        for seed in range(args.seeds):
            for surrogate in (False, True):
                run = run_one(study, seed, args.proposals, surrogate, root, settings)
                runs.append(run)
                print(f"  {study} seed {seed} surrogate {'on ' if surrogate else 'off'}: "
                      f"{run['measurements']} measurements, {run['pruned']} pruned, {run['aside']} measured unscreened "
                      f"(stood aside), {run['wall_s']:.0f}s",
                      file=sys.stderr)
        allv = np.array([[r.values[o] for o in runs[0]["objectives"]]
                         for run in runs for r in run["records"] if r.status == TrialStatus.COMPLETE])
        reference = default_reference(allv, runs[0]["directions"])
        curves = {}
        for seed in range(args.seeds):
            off = next(r for r in runs if r["seed"] == seed and not r["surrogate"])
            on = next(r for r in runs if r["seed"] == seed and r["surrogate"])
            c_off, c_on = hv_curve(off, reference), hv_curve(on, reference)
            curves[seed] = (c_off, c_on)
            level = 0.99 * c_off[-1][1]
            n_off, n_on = needed(c_off, level), needed(c_on, level)
            rows.append({"study": study, "seed": seed, "meas_off": off["measurements"], "meas_on": on["measurements"],
                         "pruned": on["pruned"], "wall_off": off["wall_s"], "wall_on": on["wall_s"],
                         "hv_off": c_off[-1][1], "hv_on": c_on[-1][1], "n99_off": n_off, "n99_on": n_on})
        plot(study, curves, root / f"{study}-hv.png")
    print_table(rows, args)
    return 0


def print_table(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"\nsurrogate pruning, {args.proposals} proposals per run, TPE, seeds 0..{args.seeds - 1}; "
          f"policy: warm-up {args.warmup}, kappa {args.kappa}, min gain {args.min_gain:.2%}"
          + (", screening always" if args.always else ", standing aside when screening does not pay"))
    print("study          seed  measurements off/on  pruned  wall s off/on  final HV off/on (ratio)  "
          "measurements to 99% of off's HV: off/on (saving)")
    for r in rows:
        saving = (f"{1 - r['n99_on'] / r['n99_off']:+.0%}" if r["n99_on"] and r["n99_off"] else "not reached")
        print(f"{r['study']:<14} {r['seed']:>4}  {r['meas_off']:>8} / {r['meas_on']:<8}  {r['pruned']:>6}  "
              f"{r['wall_off']:>6.0f} / {r['wall_on']:<6.0f}  {r['hv_off']:.4g} / {r['hv_on']:.4g} "
              f"({r['hv_on'] / r['hv_off']:.3f})  {r['n99_off']} / {r['n99_on']} ({saving})")
    for study in sorted({r["study"] for r in rows}):
        rs = [r for r in rows if r["study"] == study]
        savings = [1 - r["n99_on"] / r["n99_off"] for r in rs if r["n99_on"] and r["n99_off"]]
        ratio = statistics.mean(r["hv_on"] / r["hv_off"] for r in rs)
        mean_saving = f"{statistics.mean(savings):.0%}" if savings else "n/a"
        print(f"{study}: mean saving in measurements to 99% HV {mean_saving} "
              f"({len(savings)}/{len(rs)} seeds reached it); mean final HV ratio on/off {ratio:.3f}")


def plot(study: str, curves: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for seed, (c_off, c_on) in curves.items():
        ax.plot(*zip(*c_off), color="tab:gray", alpha=0.8, label="surrogate off" if seed == 0 else None)
        ax.plot(*zip(*c_on), color="tab:blue", alpha=0.8, label="surrogate on" if seed == 0 else None)
    ax.set_xlabel("measurements (builds + runs)")
    ax.set_ylabel("hypervolume")
    ax.set_title(f"{study}: hypervolume against measurements")
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    sys.exit(main())

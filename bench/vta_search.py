"""Sample efficiency on the flagship: how much of the exact front's hypervolume each sampler reaches.

    python bench/vta_search.py --samplers tpe,anchored,random,nsga2 --seeds 0,1,2 --budgets 30,60,120
    python bench/vta_search.py --samplers auto --surrogate on --obvious on,off --seeds 0,1,2,3,4

The exact Pareto front of `resnet18-vta` comes from evaluating all 9,000 configurations of its
space once (`tuner.vta.exhaustive`, cached; `bench/vta_exhaustive.py` prints its figures). Each
sampler then runs `tune explore resnet18-vta --trials MAX --sampler S --seed K` with the
surrogate on and off, and the front of the verified trials among its first 30, 60 and 120
finished trials (declared-constraint proposals, resampled, do not count) is compared with the
exact one: its hypervolume over the exact front's, both against one reference point (the worst
feasible value of each objective over the whole space, plus 10% of its range). `--obvious off`
adds `--no-seeds` (the study's declared obvious points are not measured). Each run's engine
overhead per trial (the median `tune explore` prints: all but the simulation, sampler included)
is printed too. Runs are cached in `--out` (results/vta_search; delete it after a change to the
engine). The goal line: at least 99% at 60 trials, on every seed.

`--variant FILE` runs the campaigns on another study file over the same space (e.g. the study
with another declared obvious point), judged against the study's exact front; its runs are
cached under the file's name.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tuner import pareto  # noqa: E402
from tuner.result import TrialRecord, TrialStatus  # noqa: E402
from tuner.study import load_study  # noqa: E402
from tuner.studystore import open_study  # noqa: E402
from tuner.vta.exhaustive import evaluate_all  # noqa: E402

GOAL = 0.99


def run(study: str, sampler: str, surrogate: str, seed: int, trials: int, obvious: bool = True) -> dict:
    """One campaign; the finished trials in order with their values (None: not verified)."""
    spec = load_study(study)
    with tempfile.TemporaryDirectory(prefix="tune-vta-search-") as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "tuner", "explore", study, "--trials", str(trials),
                               "--sampler", sampler, "--surrogate", surrogate, "--seed", str(seed),
                               "--results", tmp, "--no-export", *([] if obvious else ["--no-seeds"])],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"tune explore failed ({proc.returncode}): {proc.stderr[-2000:]}")
        s = open_study(spec, Path(tmp) / spec.name, None, create=False)
        recs = sorted((TrialRecord.from_trial(t, spec.objectives) for t in s.get_trials(deepcopy=False)),
                      key=lambda r: r.number)
    finished = [r for r in recs if r.finished]
    over = re.search(r"engine overhead per trial[^:]*: median ([0-9.]+) ms", proc.stdout + proc.stderr)
    chosen = re.search(r"^sampler: (\S+)", proc.stdout + proc.stderr, re.M)
    return {"sampler": sampler, "chosen": chosen.group(1) if chosen else sampler, "surrogate": surrogate,
            "obvious": obvious, "seed": seed, "wall_s": wall,
            "overhead_ms": float(over.group(1)) if over else None,
            "values": [[r.values[o.name] for o in spec.objectives] if r.status == TrialStatus.COMPLETE else None
                       for r in finished],
            "measured": [bool(r.measured) for r in finished],
            "resampled": sum(r.resampled for r in recs)}


def fraction(values: list, budget: int, directions: list[str], reference: np.ndarray, exact_hv: float) -> float:
    ok = np.array([v for v in values[:budget] if v is not None], dtype=float)
    if not len(ok):
        return 0.0
    front = ok[pareto.nondominated_mask(ok, directions)]
    return pareto.hypervolume(front, directions, reference) / exact_hv


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", default="resnet18-vta")
    ap.add_argument("--samplers", default="tpe,anchored,random,nsga2")
    ap.add_argument("--surrogate", default="on,off")
    ap.add_argument("--obvious", default="on", help="measure the study's obvious points (on), not (off), or both")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budgets", default="30,60,120")
    ap.add_argument("--jobs", type=int, default=2, help="processes for the exhaustive evaluation (once)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "vta_search")
    ap.add_argument("--variant", type=Path, help="a study file over the same space to run instead (its own cache)")
    args = ap.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    spec = load_study(args.study)
    directions = [o.direction for o in spec.objectives]
    ev = evaluate_all(args.study, jobs=args.jobs)
    feasible = np.asarray(ev.values, dtype=float)[ev.feasible]
    reference = np.array(pareto.default_reference(feasible, directions), dtype=float)
    exact = feasible[pareto.nondominated_mask(feasible, directions)]
    exact_hv = pareto.hypervolume(exact, directions, reference)
    print(f"{args.study}: exact front of {len(exact)} points from {len(ev.configs)} configurations "
          f"({len(feasible)} feasible); hypervolume {exact_hv:.6g} against reference "
          f"({', '.join(f'{x:.4g}' for x in reference)})")
    args.out.mkdir(parents=True, exist_ok=True)
    runs, name = args.study, args.study
    if args.variant is not None:
        variant = load_study(str(args.variant))
        if list(variant.space.knobs) != list(spec.space.knobs):
            raise SystemExit(f"{args.variant}: not the space of {args.study}")
        runs, name = str(args.variant.resolve()), args.variant.stem
        print(f"campaigns on {args.variant} (seeds {variant.seeds})")
    rows = []
    for sampler, sur, obv in itertools.product(args.samplers.split(","), args.surrogate.split(","),
                                               args.obvious.split(",")):
        fracs: dict[int, list[float]] = {b: [] for b in budgets}
        measured: dict[int, list[int]] = {b: [] for b in budgets}
        overhead: list[float] = []
        chosen = sampler
        for seed in (int(s) for s in args.seeds.split(",")):
            path = args.out / f"{name}-{sampler}-{sur}{'' if obv == 'on' else '-noseeds'}-s{seed}.json"
            if path.exists():
                r = json.loads(path.read_text())
            else:
                print(f"  {sampler} surrogate {sur} obvious points {obv} seed {seed}: {max(budgets)} trials",
                      file=sys.stderr, flush=True)
                r = run(runs, sampler, sur, seed, max(budgets), obvious=obv == "on")
                path.write_text(json.dumps(r))
            for b in budgets:
                fracs[b].append(fraction(r["values"], b, directions, reference, exact_hv))
                measured[b].append(sum(r["measured"][:b]))
            if r.get("overhead_ms") is not None:
                overhead.append(r["overhead_ms"])
            chosen = r.get("chosen", sampler)
        name = sampler if chosen == sampler else f"{sampler} ({chosen})"
        rows.append((name, sur, obv, fracs, measured, overhead))
    print(f"\nhypervolume of the front found / the exact front's (mean over seeds {args.seeds} [min-max]); "
          "measurements = trials built and run; engine overhead per trial (median of the runs' medians)")
    head = (["sampler", "surrogate", "obvious points"] + [f"{b} trials" for b in budgets]
            + [f"measured @{b}" for b in budgets] + ["engine ms/trial"])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, sur, obv, fracs, measured, overhead in rows:
        cells = [name, sur, obv]
        cells += [f"{100 * statistics.mean(fracs[b]):.1f}% [{100 * min(fracs[b]):.1f}-{100 * max(fracs[b]):.1f}]"
                  for b in budgets]
        cells += [f"{statistics.mean(measured[b]):.0f}" for b in budgets]
        cells += [f"{statistics.median(overhead):.1f}" if overhead else "-"]
        print("| " + " | ".join(cells) + " |")
    if 60 in budgets:
        best = max(rows, key=lambda r: (min(r[3][60]), statistics.mean(r[3][60])))
        worst_seed = min(best[3][60])
        print(f"goal (>= {GOAL:.0%} at 60 trials on every seed): best {best[0]} surrogate {best[1]} obvious points "
              f"{best[2]}: mean {statistics.mean(best[3][60]):.1%}, worst seed {worst_seed:.1%} -> "
              + ("MET" if worst_seed >= GOAL else "NOT MET"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

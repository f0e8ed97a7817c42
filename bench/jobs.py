"""Wall time of a campaign with `--jobs 1` and `--jobs N`: what overlapping builds with runs buys.

    python bench/jobs.py --study conv2d-flags --trials 30 --jobs 1,2 --seeds 0,1
    python bench/jobs.py --study resnet18-vta --trials 60 --jobs 1,2 --seeds 0,1

Each run is `tune explore STUDY --trials N --jobs J --seed K` in a fresh results directory (so
nothing is reused from a build cache), timed from the outside. Prints the wall time, the trials
built and run, the wall time per measured trial and the gain over `--jobs 1`, seed by seed.
A measured trial on a local target is a build on the build cores and a run on the run core:
`--jobs 2` hides the builds behind the runs (never two runs at once); on the simulator target
(`parallel_runs`) the runs themselves go two at a time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuner.result import TrialRecord  # noqa: E402
from tuner.study import load_study  # noqa: E402
from tuner.studystore import open_study  # noqa: E402


def one(study: str, trials: int, jobs: int, seed: int, extra: list[str]) -> tuple[float, int]:
    spec = load_study(study)
    with tempfile.TemporaryDirectory(prefix="tune-jobs-") as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "tuner", "explore", study, "--trials", str(trials),
                               "--jobs", str(jobs), "--seed", str(seed), "--results", tmp, "--no-export",
                               "--no-progress", *extra], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"tune explore failed: {proc.stderr[-2000:]}")
        s = open_study(spec, Path(tmp) / spec.name, None, create=False)
        measured = sum(TrialRecord.from_trial(t, spec.objectives).measured for t in s.get_trials(deepcopy=False))
    return wall, measured


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", default="conv2d-flags")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--explore-args", default="", help="more `tune explore` arguments")
    args = ap.parse_args()
    jobs = [int(j) for j in args.jobs.split(",")]
    print(f"{args.study}, {args.trials} trials, wall time from the outside (s)")
    print("| seed | " + " | ".join(f"--jobs {j}: wall s (measured, s per measured trial)" for j in jobs)
          + " | gain |")
    print("|" + "---|" * (len(jobs) + 2))
    gains = []
    for seed in (int(s) for s in args.seeds.split(",")):
        cells, walls = [], []
        for j in jobs:
            wall, measured = one(args.study, args.trials, j, seed, args.explore_args.split())
            walls.append(wall)
            cells.append(f"{wall:.1f} ({measured}, {wall / max(1, measured):.2f})")
        gain = walls[0] / walls[-1]
        gains.append(gain)
        print(f"| {seed} | " + " | ".join(cells) + f" | {gain:.2f}x |", flush=True)
    print(f"wall-time gain of --jobs {jobs[-1]} over --jobs {jobs[0]}: median {statistics.median(gains):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The exact Pareto front of a VTA study from all its configurations (cached), with the time.

Evaluates every configuration of the study's space with one simulator binary (hardware as
arguments), `--jobs` processes at a time, and prints: the time, how many configurations were
evaluated, infeasible (declared constraints, or the simulator's reason), the exact front and its
hypervolume. A second run reads the cache (tuner/vta/exhaustive.py says where and how it is keyed);
`--no-cache` forces a fresh evaluation. The search issue (#10) calls the same code:
`tuner.vta.exhaustive.exact_front(study).hypervolume(reference)`.

    .venv/bin/python bench/vta_exhaustive.py [--study resnet18-vta] [--jobs 2] [--no-cache]
                                             [--reference 200,1,1]

Run it under `flock /tmp/tune-heavy.lock` when it has to evaluate (the timing is the figure).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from tuner import pareto  # noqa: E402
from tuner.vta.exhaustive import evaluate_all  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="resnet18-vta")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--reference", help="hypervolume reference point, comma-separated (default: the worst "
                                        "feasible value of each objective plus 10%% of its range)")
    ns = ap.parse_args()
    t0 = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 15 or done == total:
            last[0] = now
            print(f"  {done}/{total} evaluated, {now - t0:.0f} s", file=sys.stderr, flush=True)

    ev = evaluate_all(ns.study, jobs=ns.jobs, cache=not ns.no_cache, progress=progress)
    wall = time.perf_counter() - t0
    n = len(ev.configs)
    declared = sum(1 for r in ev.reasons if r and r.startswith("violates a declared constraint"))
    feasible = int(ev.feasible.sum())
    print(f"{ev.study}: {n} configurations; {declared} violate the declared constraints, "
          f"{n - declared} simulated, {feasible} feasible")
    if ev.cached:
        print(f"read from the cache in {wall:.1f} s (delete it or pass --no-cache to re-evaluate)")
    else:
        print(f"evaluated in {wall:.1f} s wall with {ns.jobs} jobs ({ev.eval_s:.1f} s simulating, "
              f"{1e3 * ev.eval_s * ns.jobs / max(1, n - declared):.1f} ms per configuration per job)")
    why = Counter(r.split(":")[0] if r and not r.startswith("violates") else "declared constraint"
                  for r in ev.reasons if r)
    print("infeasible: " + ", ".join(f"{k} {v}" for k, v in why.most_common(6)))
    front = ev.front()
    if ns.reference:
        ref = [float(x) for x in ns.reference.split(",")]
    else:
        ref = list(pareto.default_reference(ev.values[ev.feasible], ev.directions))
    hv = front.hypervolume(ref)
    print(f"exact front: {len(front.configs)} configurations; hypervolume {hv:.6g} against reference "
          f"({', '.join(f'{r:.4g}' for r in ref)})")
    keys = list(front.configs[0]) if front.configs else []
    order = np.argsort(front.values[:, 0]) if len(front.configs) else []
    head = "  ".join(f"{o:>12}" for o in ev.objectives)
    print(f"{head}  configuration")
    for i in order:
        vals = "  ".join(f"{v:12.5g}" for v in front.values[i])
        cfg = " ".join(f"{k}={front.configs[i][k]}" for k in keys)
        print(f"{vals}  {cfg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

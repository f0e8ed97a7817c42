"""Joint vs inner schedule search for resnet18-vta, on an equal budget of trials (random sampling).

inner: a trial samples only the hardware knobs; the simulator picks every layer's schedule
       (--schedule best).
joint: a trial samples the hardware knobs and one schedule per layer (7 knobs x 10 layers,
       each tile factor a random divisor, vthreads 1 or 2), as an outer sampler would.
Both sample hardware from the study's knob values and constraints with the same seeds.
Reports feasible trials, best latency_ms, and simulator wall time per trial.

    .venv/bin/python bench/vta_joint_vs_inner.py [--trials 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuner.study import load_study  # noqa: E402
from tuner.vta import HwConfig, build, run  # noqa: E402
from tuner.vta.network import load_network  # noqa: E402

NET = load_network("resnet18")
LAYERS = {c.name: (c.h, c.w, c.ic, c.oc, c.k, c.s) for c in NET.layers if c.count > 0}


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def sample_hw(rng: random.Random, study) -> dict:
    knobs = {k: v for k, v in study.space.knobs.items() if k != "part"}
    while True:
        cfg = {k: rng.choice(v.values) for k, v in knobs.items()}
        if not any(c.violated({**cfg, "part": "xc7z020"}) for c in study.space.constraints):
            return cfg


def sample_schedules(rng: random.Random, hw: dict) -> list[str]:
    bi, bo = 1 << hw["log_block_in"], 1 << hw["log_block_out"]
    out = []
    for name, (h, w, ic, oc, k, s) in LAYERS.items():
        oh = (h + 2 * (k // 2) - k) // s + 1
        sch = [1, rng.choice(divisors(oh)), rng.choice(divisors(oh)), rng.choice(divisors(max(1, ic // bi))),
               rng.choice(divisors(max(1, oc // bo))), rng.choice([1, 2]), rng.choice([1, 2])]
        out += ["--schedule", f"{name}=" + ",".join(map(str, sch))]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ns = ap.parse_args()
    study = load_study("resnet18-vta")
    binary = build().path
    for mode in ("inner", "joint"):
        rng = random.Random(ns.seed)
        best, feasible, sim_s = float("inf"), 0, 0.0
        for _ in range(ns.trials):
            hw = sample_hw(rng, study)
            args = ["--network", str(NET.path), "--quiet", *HwConfig(**hw).args()]
            args += ["--schedule", "best"] if mode == "inner" else sample_schedules(rng, hw)
            t0 = time.perf_counter()
            r = run(binary, args)
            sim_s += time.perf_counter() - t0
            if r.infeasible is None:
                feasible += 1
                best = min(best, r.metrics["latency_ms"])
        print(f"{mode:6} trials {ns.trials}  feasible {feasible:3d}  best latency_ms {best:9.3f}  "
              f"simulator {1e3 * sim_s / ns.trials:7.1f} ms/trial")
    return 0


if __name__ == "__main__":
    sys.exit(main())

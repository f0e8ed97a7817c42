"""Speed of the VTA simulator: whole-ResNet-18 evaluations per second in timing mode.

Two numbers per workload:
  in-process   the binary repeats the evaluation itself (--repeat N, reports eval_us), so
               process start-up is not measured;
  per-process  one process per evaluation (what an engine trial costs, minus the engine).

    .venv/bin/python bench/vta_sim.py [--repeat 200] [--procs 50]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuner.vta import build, run  # noqa: E402

WORKLOADS = {
    "default schedules": ["--network", "resnet18", "--schedule", "default"],
    "best schedules (search, vthread on)": ["--network", "resnet18", "--schedule", "best"],
    "best schedules (search, vthread off)": ["--network", "resnet18", "--schedule", "best", "--vthread", "off"],
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=200, help="in-process repetitions (default schedules)")
    ap.add_argument("--procs", type=int, default=50, help="process launches per workload")
    ns = ap.parse_args()
    binary = build().path
    print(f"binary: {binary}")
    print(f"{'workload':40} {'in-process eval/s':>18} {'ms/eval':>9} {'per-process eval/s':>19} {'ms/eval':>9}")
    for name, args in WORKLOADS.items():
        reps = ns.repeat if "default" in name else max(3, ns.repeat // 50)
        m = run(binary, [*args, "--repeat", str(reps), "--quiet"]).metrics
        in_us = m["eval_us"]
        procs = ns.procs if "default" in name else max(3, ns.procs // 10)
        t0 = time.perf_counter()
        for _ in range(procs):
            subprocess.run([str(binary), *args, "--quiet"], check=True, capture_output=True)
        per = (time.perf_counter() - t0) / procs
        print(f"{name:40} {1e6 / in_us:18.1f} {in_us / 1e3:9.3f} {1 / per:19.1f} {per * 1e3:9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

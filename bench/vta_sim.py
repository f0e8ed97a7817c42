"""Speed of the VTA simulator: whole-ResNet-18 evaluations per second in timing mode.

Workloads: the baseline design (the study's Pynq-Z1 configuration) with default schedules and with
the per-layer schedule search, and the search on the study's seeded smallest design. Two numbers
per workload:
  in-process   the binary repeats the evaluation itself (--repeat N, reports eval_us), so
               process start-up is not measured;
  per-process  one process per evaluation (what an engine trial costs, minus the engine).

and the engine's overhead per trial in the resnet18-vta study: everything a trial costs besides
building the simulator and running it (ask, sampling, dedup, surrogate, tell, storage), from a
short campaign in a temporary results directory. The cost of a whole trial, end to end, is
bench/vta_trials.py.

    .venv/bin/python bench/vta_sim.py [--repeat 200] [--procs 50] [--trials 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuner.vta import build, run  # noqa: E402
from tuner.vta.network import network_path  # noqa: E402

NET = str(network_path("resnet18"))
WORKLOADS = {
    "default schedules": ["--network", NET, "--schedule", "default"],
    "best schedules (search, vthread on)": ["--network", NET, "--schedule", "best"],
    "best schedules (search, vthread off)": ["--network", NET, "--schedule", "best", "--vthread", "off"],
    # the study's seeded smallest design (1x8x8 core, smallest buffers): TPE is drawn to such small
    # cores, whose search simulates several times more instructions than the baseline's
    "best schedules, smallest design": ["--network", NET, "--schedule", "best", "--log-block", "3",
                                        "--log-uop-buff-size", "13", "--log-inp-buff-size", "13",
                                        "--log-wgt-buff-size", "16", "--log-acc-buff-size", "15"],
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=200, help="in-process repetitions (default schedules)")
    ap.add_argument("--procs", type=int, default=50, help="process launches per workload")
    ap.add_argument("--trials", type=int, default=20, help="trials of the engine-overhead campaign (0: skip)")
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
    if ns.trials:
        engine_overhead(ns.trials)
    return 0


def engine_overhead(trials: int) -> None:
    import statistics
    import tempfile
    import warnings

    import optuna

    from tuner.campaign import Campaign, Options
    from tuner.progress import OverheadMeter
    from tuner.study import load_study
    from tuner.surrogate import PruningPolicy
    from tuner.targets import load_target, make_target

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    spec = load_study("resnet18-vta")
    with tempfile.TemporaryDirectory() as tmp:
        target = make_target(load_target(spec.target), Path(tmp) / "builds")
        for surrogate in (False, True):
            out = Path(tmp) / f"surrogate-{surrogate}"
            screen = PruningPolicy(spec, seed=0) if surrogate else None
            meter = OverheadMeter()
            c = Campaign(spec, target, Options(trials, "tpe", 0, {}, None, out, False), screen, observers=[meter])
            c.log = lambda m: None
            t0 = time.perf_counter()
            c.run()
            wall = time.perf_counter() - t0
            o = sorted(meter.overheads_s)
            print(f"engine overhead per trial, resnet18-vta, TPE, surrogate {'on ' if surrogate else 'off'}: "
                  f"median {statistics.median(o) * 1e3:.1f} ms, max {o[-1] * 1e3:.1f} ms "
                  f"({len(o)} evaluated trials, {wall:.1f} s wall)")


if __name__ == "__main__":
    sys.exit(main())

"""Fit the VTA simulator's timing constants on the five published Pynq-Z1 layers (offline).

Grid search over (dram_eff, dma_lat, row_ovh, insn_ovh, pipe_fill): for every point, each
calibration layer is simulated with its best schedule, with and without virtual threads
(10 GOPS values), and the point with the smallest worst-case |log(sim/published)| wins
(ties: smallest mean). The winner is hard-coded in programs/vta_sim/vta_sim.c (VTA_M_* defaults).

    .venv/bin/python bench/vta_fit.py [--coarse] [--jobs 2]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuner.vta import build, run, source_dir  # noqa: E402

GRID = {
    "dram_eff": [0.4, 0.45, 0.5, 0.55, 0.6, 0.7],
    "dma_lat": [20, 40, 80, 160],
    "row_ovh": [16, 32, 48, 64, 96],
    "insn_ovh": [4, 8, 16],
    "pipe_fill": [8],
}
COARSE = {
    "dram_eff": [0.4, 0.45, 0.5],
    "dma_lat": [20, 80],
    "row_ovh": [0, 8],
    "insn_ovh": [4],
    "pipe_fill": [8],
}


def points() -> list[dict]:
    rows = [r for r in csv.reader(l for l in open(source_dir() / "calibration_points.csv") if not l.startswith("#"))]
    head, body = rows[0], rows[1:]
    return [dict(zip(head, r)) for r in body]


def simulate(binary: Path, layer: str, vthread: str, model: dict) -> float:
    args = ["--layer", layer, "--schedule", "best", "--vthread", vthread, "--quiet"]
    for k, v in model.items():
        args += ["--model", f"{k}={v}"]
    return float(run(binary, args).metrics["gops"])


def evaluate(binary: Path, pts: list[dict], model: dict) -> tuple[float, float, list]:
    errs, table = [], []
    for p in pts:
        for vt, col in (("off", "gops_no_vthread"), ("on", "gops_vthread")):
            sim = simulate(binary, p["layer"], vt, model)
            pub = float(p[col])
            errs.append(abs(math.log(sim / pub)))
            table.append((p["layer"], vt, pub, sim))
    return max(errs), sum(errs) / len(errs), table


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--coarse", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ns = ap.parse_args()
    grid = COARSE if ns.coarse else GRID
    binary = build().path
    pts = points()
    combos = [dict(zip(grid, vals)) for vals in itertools.product(*grid.values())]
    with ThreadPoolExecutor(ns.jobs) as ex:
        results = list(ex.map(lambda m: (evaluate(binary, pts, m), m), combos))
    results.sort(key=lambda r: (round(r[0][0], 4), r[0][1]))
    (worst, mean, table), model = results[0]
    print(f"{len(combos)} grid points; best: {model}")
    print(f"worst |log err| {worst:.4f} ({math.expm1(worst) * 100:.1f}%), mean {mean:.4f}")
    print(f"{'layer':6} {'vthread':7} {'published':>9} {'simulated':>9} {'err%':>7}")
    for layer, vt, pub, sim in table:
        print(f"{layer:6} {vt:7} {pub:9.2f} {sim:9.2f} {100 * (sim / pub - 1):7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fitting the VTA simulator's timing constants on published layers (used by bench/vta_fit.py
and the leave-one-layer-out test).

A parameter vector is scored by the worst |log(simulated / published)| GOPS over the points of
the layers it is fitted on (ties: the mean): a grid first, then coordinate descent from the best
grid points. Every simulated point is cached per parameter vector, so leave-one-layer-out fits
reuse the grid's runs. The published points are programs/vta_sim/calibration_points.csv.
"""

from __future__ import annotations

import csv
import math
from concurrent.futures import Executor
from pathlib import Path

from tuner.vta._sim import build, run, source_dir

PARAMS = ("dram_eff", "dma_lat", "row_ovh", "insn_ovh", "pipe_fill")
GRID = {
    "dram_eff": [0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0],
    "dma_lat": [10, 40, 160],
    "row_ovh": [0, 8, 24, 48, 96],
    "insn_ovh": [2, 8, 24, 64],
    "pipe_fill": [2, 8, 24],
}
COARSE = {"dram_eff": [0.4, 0.6], "dma_lat": [40], "row_ovh": [16, 64], "insn_ovh": [8, 24], "pipe_fill": [8]}
LOWER = {"dram_eff": 0.05, "dma_lat": 0.0, "row_ovh": 0.0, "insn_ovh": 0.0, "pipe_fill": 0.0}
UPPER = {"dram_eff": 1.0, "dma_lat": 1000.0, "row_ovh": 1000.0, "insn_ovh": 1000.0, "pipe_fill": 1000.0}
VT = (("off", "gops_no_vthread"), ("on", "gops_vthread"))


def points() -> list[dict]:
    lines = [line for line in open(source_dir() / "calibration_points.csv") if not line.startswith("#")]
    return list(csv.DictReader(lines))


class Simulator:
    """GOPS of every calibration layer for a parameter vector: two runs (vthread off, on) of a
    network file holding the five layers; results cached by parameter vector."""

    def __init__(self, pts: list[dict], workdir: Path, binary: Path | None = None) -> None:
        self.binary = binary or build().path
        self.pts = pts
        self.net = workdir / "calibration.toml"
        body = "".join(f'[[conv]]\nname = "{p["layer"]}"\nh = {p["H"]}\nw = {p["W"]}\nic = {p["IC"]}\n'
                       f'oc = {p["OC"]}\nk = {p["K"]}\ns = {p["S"]}\n\n' for p in pts)
        self.net.write_text('name = "calibration"\n\n' + body)
        self.cache: dict[tuple, dict[tuple[str, str], float]] = {}
        self.runs = 0

    def gops(self, model: dict) -> dict[tuple[str, str], float]:
        key = tuple(round(float(model[k]), 6) for k in PARAMS)
        if key in self.cache:
            return self.cache[key]
        out = {}
        for vt, _ in VT:
            args = ["--network", str(self.net), "--schedule", "best", "--vthread", vt]
            for k in PARAMS:
                args += ["--model", f"{k}={model[k]}"]
            r = run(self.binary, args)
            self.runs += 1
            for line in r.table.splitlines()[1:]:
                f = line.split()
                out[(f[0], vt)] = float(f[5])
        self.cache[key] = out
        return out


def errors(sim: dict, pts: list[dict], layers: set[str]) -> list[float]:
    return [math.log(sim[(p["layer"], vt)] / float(p[col])) for p in pts if p["layer"] in layers for vt, col in VT]


def score(sim: dict, pts: list[dict], layers: set[str]) -> tuple[float, float]:
    e = [abs(x) for x in errors(sim, pts, layers)]
    return round(max(e), 4), sum(e) / len(e)


def refine(s: Simulator, start: dict, layers: set[str], pool: Executor, rounds: int = 3) -> dict:
    """Coordinate descent: multiply one parameter at a time by a shrinking step."""
    best = dict(start)
    best_score = score(s.gops(best), s.pts, layers)
    for step in (1.6, 1.25, 1.1)[:rounds]:
        improved = True
        while improved:
            improved = False
            cands = []
            for k in PARAMS:
                for f in (step, 1 / step):
                    v = best[k] * f if best[k] > 0 else (0.5 if f > 1 else 0.0)
                    v = min(max(v, LOWER[k]), UPPER[k])
                    if v != best[k]:
                        cands.append({**best, k: round(v, 4)})
            for cand, sim in zip(cands, pool.map(s.gops, cands)):
                sc = score(sim, s.pts, layers)
                if sc < best_score:
                    best, best_score, improved = cand, sc, True
    return best


def fit(s: Simulator, grid_models: list[dict], layers: set[str], pool: Executor, starts: int = 3,
        rounds: int = 3) -> dict:
    """The best constants for `layers`: refine the `starts` best grid points."""
    ranked = sorted(grid_models, key=lambda m: score(s.gops(m), s.pts, layers))
    fits = [refine(s, m, layers, pool, rounds) for m in ranked[:starts]]
    return min(fits, key=lambda m: score(s.gops(m), s.pts, layers))


def gain(sim: dict, layer: str) -> float:
    return sim[(layer, "on")] / sim[(layer, "off")]

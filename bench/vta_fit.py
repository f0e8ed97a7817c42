"""Fit the VTA simulator's timing constants on the five published Pynq-Z1 layers, and validate
them out of sample (leave one layer out).

The published points (programs/vta_sim/calibration_points.csv, from the ReQuEST'18 VTA paper):
GOPS of C2, C3, C5, C9 and C12 with and without virtual threads, 10 numbers. The simulator runs
each layer with its best schedule (the search TVM's schedule exploration stands for).

Constants and where each comes from:
  alu_ii = 2      source: apache/tvm-vta hardware/xilinx/src/vta.cc, READ_ALU_UOP "PIPELINE II = 2"
  gemm_ii = 1     source: the same file, READ_GEMM_UOP "PIPELINE II = 1"
  pad_cyc = 1     source: the same file, load_pad_2d/reset_mem writes one padding element per cycle
  tokens          source: TVM's CoProcSync + LiftAttrScope + InjectVirtualThread (see the generator)
  dram_eff, dma_lat, row_ovh, insn_ovh, pipe_fill      fitted here

Fit: minimise the worst |log(simulated / published)| over the points (ties: the mean), first
over a grid, then by coordinate descent from the best grid points. Every simulated point is
cached for the run, so the leave-one-layer-out fits (fit on 4 layers = 8 points, predict the
5th layer with and without virtual threads) reuse the grid.

    .venv/bin/python bench/vta_fit.py [--jobs 2] [--coarse]

Prints the in-sample fit, the out-of-sample errors per layer, the virtual-thread gains of the
1x1 layers (C3, C5) in the fit and out of sample, and the resource estimate against the one
built design found (programs/vta_sim/resource_points.csv: third party, xczu3eg; not fitted). The constants it prints as "fit (all 5
layers)" are the defaults in programs/vta_sim/vta_sim.c (VTA_M_*).
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuner.vta.fit import COARSE, GRID, PARAMS, VT, Simulator, fit, gain, points, score  # noqa: E402

def resources(binary: Path) -> None:
    """The resource estimate against the built designs of resource_points.csv (not a fit: one
    third-party figure on another part; see the CSV's header)."""
    import csv

    from tuner.vta import run, source_dir
    lines = [line for line in open(source_dir() / "resource_points.csv") if not line.startswith("#")]
    print("\nresources: the model's estimate against a built design (programs/vta_sim/resource_points.csv)")
    print(f"{'design':26} {'part':8} {'resource':8} {'built':>8} {'model':>8} {'err%':>6}")
    for p in csv.DictReader(lines):
        hw = [f"--{k.replace('_', '-')}={p[k]}" for k in ("log_batch", "log_block_in", "log_block_out",
                                                         "log_uop_buff_size", "log_inp_buff_size",
                                                         "log_wgt_buff_size", "log_acc_buff_size")]
        m = run(binary, ["--shape", "14,14,256,256,3,1", "--part", p["part"], *hw, "--quiet"]).metrics
        for res in ("dsp", "bram36", "lut"):
            built, model = float(p[res]), float(m[res])
            print(f"{p['design']:26} {p['part']:8} {res:8} {built:8.1f} {model:8.0f} {100 * (model / built - 1):+6.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--coarse", action="store_true", help="a tiny grid (smoke test)")
    ns = ap.parse_args()
    t0 = time.perf_counter()
    pts = points()
    names = [p["layer"] for p in pts]
    grid = COARSE if ns.coarse else GRID
    models = [dict(zip(grid, vals)) for vals in itertools.product(*grid.values())]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(ns.jobs) as pool:
        s = Simulator(pts, Path(tmp))
        list(pool.map(s.gops, models))
        full = fit(s, models, set(names), pool)
        sim = s.gops(full)
        worst, mean = score(sim, pts, set(names))
        rel = max(abs(sim[(p["layer"], vt)] / float(p[col]) - 1) for p in pts for vt, col in VT)
        print(f"grid {len(models)} points; {s.runs} simulator runs so far")
        print(f"\nfit (all 5 layers): " + " ".join(f"{k}={full[k]:g}" for k in PARAMS))
        print(f"in-sample: worst |error| {rel * 100:.1f}%, mean |log error| {mean:.3f}")
        print(f"{'layer':6} {'published off':>13} {'sim off':>8} {'err%':>6} {'published on':>12} {'sim on':>8} {'err%':>6}")
        for p in pts:
            row = [p["layer"]]
            for vt, col in VT:
                pub, got = float(p[col]), sim[(p["layer"], vt)]
                row += [f"{pub:13.2f}" if vt == "off" else f"{pub:12.2f}", f"{got:8.2f}", f"{100 * (got / pub - 1):+6.1f}"]
            print(f"{row[0]:6} " + " ".join(row[1:]))

        print("\nleave one layer out: fit on the other four layers (8 points), predict this one")
        print(f"{'held out':8} {'published off':>13} {'pred off':>8} {'err%':>6} {'published on':>12} {'pred on':>8} "
              f"{'err%':>6}  constants of that fit")
        loo = {}
        for held in names:
            m = fit(s, models, set(names) - {held}, pool)
            pred = s.gops(m)
            loo[held] = pred
            p = next(q for q in pts if q["layer"] == held)
            cells = []
            for vt, col in VT:
                pub, got = float(p[col]), pred[(held, vt)]
                cells += [f"{pub:13.2f}" if vt == "off" else f"{pub:12.2f}", f"{got:8.2f}", f"{100 * (got / pub - 1):+6.1f}"]
            print(f"{held:8} " + " ".join(cells) + "  " + " ".join(f"{k}={m[k]:g}" for k in PARAMS))
        ratios = [loo[h][(h, vt)] / float(next(q for q in pts if q["layer"] == h)[col]) for h in names for vt, col in VT]
        oos = [abs(math.log(r)) for r in ratios]
        print(f"out of sample: worst |error| {max(abs(r - 1) for r in ratios) * 100:.1f}%, "
              f"mean |log error| {sum(oos) / len(oos):.3f}")

        print("\nvirtual-thread gain (GOPS with / without), 1x1 layers")
        print(f"{'layer':6} {'published':>9} {'fit':>6} {'err%':>6} {'leave-one-out':>13} {'err%':>6}")
        for layer in ("C3", "C5"):
            p = next(q for q in pts if q["layer"] == layer)
            pub = float(p["gops_vthread"]) / float(p["gops_no_vthread"])
            g_fit, g_loo = gain(sim, layer), gain(loo[layer], layer)
            print(f"{layer:6} {pub:9.3f} {g_fit:6.3f} {100 * (g_fit / pub - 1):+6.1f} {g_loo:13.3f} {100 * (g_loo / pub - 1):+6.1f}")
        resources(s.binary)
        print(f"\n{s.runs} simulator runs, {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Co-design view: which VTA hardware is on the Pareto front for both ResNet-18 and MobileNet-v1.

`resnet18-vta` and `mobilenet-vta` share one hardware space (9,000 configurations, the same
objectives: latency of the network's offloaded convs, DSP and BRAM fractions of the xc7z020).
This evaluates both spaces exhaustively (cached, tuner/vta/exhaustive.py), and prints every
configuration on either front: its latency on each network, its resources, on which front it
is, and, for a configuration on only one front, how much slower it is on the other network
than that network's front at no more DSP and BRAM ("penalty").

    .venv/bin/python bench/vta_codesign.py [--jobs 2] [--studies resnet18-vta mobilenet-vta]

Run it under `flock /tmp/tune-heavy.lock` when it has to evaluate (first run: a few minutes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from tuner import pareto  # noqa: E402
from tuner.vta.exhaustive import evaluate_all  # noqa: E402

DEFAULT = {"log_batch": 0, "log_block_in": 4, "log_block_out": 4, "log_uop_buff_size": 15,
           "log_inp_buff_size": 15, "log_wgt_buff_size": 18, "log_acc_buff_size": 17}
SHORT = {"log_batch": "b", "log_block_in": "bi", "log_block_out": "bo", "log_uop_buff_size": "uop",
         "log_inp_buff_size": "inp", "log_wgt_buff_size": "wgt", "log_acc_buff_size": "acc"}


def label(cfg: dict) -> str:
    """1x16x16 32/32/256/128 KB style: BATCH x BLOCK_IN x BLOCK_OUT, uop/inp/wgt/acc buffer KB."""
    core = f"{2 ** cfg['log_batch']}x{2 ** cfg['log_block_in']}x{2 ** cfg['log_block_out']}"
    kb = "/".join(str(2 ** cfg[k] // 1024) for k in ("log_uop_buff_size", "log_inp_buff_size",
                                                      "log_wgt_buff_size", "log_acc_buff_size"))
    return f"{core} {kb} KB" + ("  (Pynq default)" if all(cfg[k] == v for k, v in DEFAULT.items()) else "")


def penalty(i: int, ev, front_mask: np.ndarray) -> float:
    """Latency of config i over the best front latency at no more DSP and BRAM (1.0 = on par)."""
    v = ev.values
    ok = front_mask & (v[:, 1] <= v[i, 1]) & (v[:, 2] <= v[i, 2])
    return float(v[i, 0] / v[ok, 0].min()) if ok.any() else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--studies", nargs=2, default=["resnet18-vta", "mobilenet-vta"])
    ns = ap.parse_args()
    t0 = time.perf_counter()
    evs = [evaluate_all(s, jobs=ns.jobs) for s in ns.studies]
    a, b = evs
    assert a.configs == b.configs and a.objectives == b.objectives, "the two studies must share one space"
    masks = [pareto.nondominated_mask(ev.values, ev.directions) for ev in evs]
    both = masks[0] & masks[1]
    either = np.flatnonzero(masks[0] | masks[1])
    names = [s.split("-")[0] for s in ns.studies]
    print(f"{len(a.configs)} configurations; front sizes: {names[0]} {masks[0].sum()}, {names[1]} {masks[1].sum()}; "
          f"on both: {both.sum()} ({time.perf_counter() - t0:.0f} s, {'cached' if all(e.cached for e in evs) else 'evaluated'})")
    print(f"{'hardware':28} {names[0] + ' ms':>12} {names[1] + ' ms':>13} {'dsp_frac':>8} {'bram_frac':>9}  "
          f"{'front':10} penalty on the other")
    for i in sorted(either, key=lambda j: (a.values[j, 1], a.values[j, 2], a.values[j, 0])):
        on = [bool(m[i]) for m in masks]
        where = "both" if all(on) else names[0] if on[0] else names[1]
        other = "" if all(on) else f"{names[1] if on[0] else names[0]} x{penalty(i, evs[1] if on[0] else evs[0], masks[1] if on[0] else masks[0]):.2f}"
        print(f"{label(a.configs[i]):28} {a.values[i, 0]:12.2f} {b.values[i, 0]:13.2f} {a.values[i, 1]:8.3f} "
              f"{a.values[i, 2]:9.3f}  {where:10} {other}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

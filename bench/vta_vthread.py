"""What virtual threads buy on each ResNet-18 layer and on the network, in the current model.

Runs every offloaded layer with its best schedule with and without virtual threads (default
Pynq-Z1 hardware) and prints GOPS, the gain, and the published gain where one exists
(programs/vta_sim/calibration_points.csv), then the network's latency both ways.

    .venv/bin/python bench/vta_vthread.py
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuner.vta import build, run, source_dir  # noqa: E402
from tuner.vta.network import load_network  # noqa: E402


def main() -> int:
    binary = build().path
    net = load_network("resnet18")
    lines = [line for line in open(source_dir() / "calibration_points.csv") if not line.startswith("#")]
    published = {r["layer"]: r for r in csv.DictReader(lines)}
    print(f"{'layer':6} {'k,s':4} {'GOPS off':>9} {'GOPS on':>8} {'gain':>6} {'published gain':>15}")
    for c in net.layers:
        g = {}
        for vt in ("off", "on"):
            r = run(binary, ["--network", str(net.path), "--layer", c.name, "--schedule", "best", "--vthread", vt, "--quiet"])
            g[vt] = r.metrics["gops"]
        pub = published.get(c.name)
        pg = f"{float(pub['gops_vthread']) / float(pub['gops_no_vthread']):15.3f}" if pub else f"{'-':>15}"
        print(f"{c.name:6} {c.k},{c.s}  {g['off']:9.2f} {g['on']:8.2f} {g['on'] / g['off']:6.3f} {pg}")
    ms = {vt: run(binary, ["--network", str(net.path), "--schedule", "best", "--vthread", vt, "--quiet"]).metrics["latency_ms"]
          for vt in ("off", "on")}
    print(f"network (each layer x its count): {ms['off']:.1f} ms without, {ms['on']:.1f} ms with virtual threads "
          f"({ms['off'] / ms['on']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

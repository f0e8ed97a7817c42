"""`tune vta` (also `python -m tuner.vta`): simulate a network's convs on a VTA-like accelerator.

Builds the simulator once (cached), runs it for one hardware configuration (given as arguments)
and prints the metrics as a table or JSON. Networks are files found through the component
library (`--network resnet18` is search_spaces/networks/resnet18.toml). Exit codes: 0 ok (also
when the configuration is infeasible: the reason is printed and `"infeasible"` is set in JSON),
1 build/run failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys

from tuner.buildcache import CompileError, ToolMissing
from tuner.errors import BadInput
from tuner.vta._sim import HwConfig, SimUsageError, build, run
from tuner.vta.network import network_path

_PARTS = ("xc7z020", "xczu3eg", "xczu7ev")

# metrics shown in the table, in order (JSON output carries all of them)
_TABLE = (
    ("latency_ms", "ms"), ("ms_per_image", "ms"), ("batch", "images"), ("cycles", ""), ("gops", "GOPS"), ("peak_gops", "GOPS"),
    ("utilization", ""), ("op_per_byte", "op/B"), ("dsp", ""), ("dsp_frac", ""),
    ("bram36", ""), ("bram_frac", ""), ("lut", ""), ("lut_frac", ""),
    ("inp_load_bytes", "B"), ("wgt_load_bytes", "B"), ("acc_load_bytes", "B"),
    ("uop_load_bytes", "B"), ("out_store_bytes", "B"), ("gemm_count", ""), ("alu_count", ""),
    ("instructions", ""), ("load_busy", "cycles"), ("load_stall", "cycles"),
    ("compute_busy", "cycles"), ("compute_stall", "cycles"), ("store_busy", "cycles"),
    ("store_stall", "cycles"),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise SimUsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tune vta", description=__doc__.splitlines()[0])
    w = p.add_mutually_exclusive_group()
    w.add_argument("--layer", help="one layer of the network (ResNet-18: C2..C12)")
    w.add_argument("--shape", help="conv2d H,W,IC,OC,K,S[,P[,N]]")
    p.add_argument("--network", default="resnet18",
                   help="a network name from the library or a .toml path (default resnet18)")
    p.add_argument("--batch", type=int, help="images per pass (default 2^log_batch)")
    p.add_argument("--schedule", action="append", default=[], metavar="SPEC",
                   help="default | best | TB,TH,TW,TCI,TCO,OCN,HN | LAYER=TB,...  (repeatable)")
    p.add_argument("--vthread", choices=["on", "off"], default="on")
    p.add_argument("--mode", choices=["timing", "functional"], default="timing")
    p.add_argument("--epilogue", choices=["bias", "clip"], default="bias")
    p.add_argument("--model", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model constant (see --list-model of the binary)")
    p.add_argument("--seed", type=int)
    hw = p.add_argument_group("hardware (simulator arguments; defaults = Pynq-Z1 VTA)")
    hw.add_argument("--log-batch", type=int, default=0)
    hw.add_argument("--log-block", type=int, help="sets both --log-block-in and --log-block-out")
    hw.add_argument("--log-block-in", type=int, default=4)
    hw.add_argument("--log-block-out", type=int, default=4)
    hw.add_argument("--log-uop-buff", type=int, default=15, help="log2 bytes")
    hw.add_argument("--log-inp-buff", type=int, default=15, help="log2 bytes")
    hw.add_argument("--log-wgt-buff", type=int, default=18, help="log2 bytes")
    hw.add_argument("--log-acc-buff", type=int, default=17, help="log2 bytes")
    hw.add_argument("--part", choices=_PARTS, default="xc7z020")
    hw.add_argument("--clock-mhz", type=float, help="default: the part's board clock")
    hw.add_argument("--dram-bytes-per-cycle", type=int, help="default: the part's AXI width")
    hw.add_argument("--gemm-ii", type=int, default=1)
    p.add_argument("--cc", default="gcc")
    p.add_argument("--format", choices=["table", "json"], default="table")
    return p


def _hw(ns: argparse.Namespace) -> HwConfig:
    bi = ns.log_block if ns.log_block is not None else ns.log_block_in
    bo = ns.log_block if ns.log_block is not None else ns.log_block_out
    values = {"--log-batch": ns.log_batch, "--log-block-in": bi, "--log-block-out": bo}
    for name, v in values.items():
        if not 0 <= v <= 6:
            raise SimUsageError(f"{name} must be in 0..6, got {v}")
    for name in ("log_uop_buff", "log_inp_buff", "log_wgt_buff", "log_acc_buff"):
        v = getattr(ns, name)
        if not 8 <= v <= 24:
            raise SimUsageError(f"--{name.replace('_', '-')} must be in 8..24 (log2 bytes), got {v}")
    if ns.clock_mhz is not None and not 1 <= ns.clock_mhz <= 2000:
        raise SimUsageError(f"--clock-mhz must be in 1..2000, got {ns.clock_mhz}")
    if ns.dram_bytes_per_cycle is not None and not 1 <= ns.dram_bytes_per_cycle <= 256:
        raise SimUsageError(f"--dram-bytes-per-cycle must be in 1..256, got {ns.dram_bytes_per_cycle}")
    if not 1 <= ns.gemm_ii <= 64:
        raise SimUsageError(f"--gemm-ii must be in 1..64, got {ns.gemm_ii}")
    return HwConfig(ns.log_batch, bi, bo, ns.log_uop_buff, ns.log_inp_buff, ns.log_wgt_buff,
                    ns.log_acc_buff, ns.part, ns.clock_mhz, ns.dram_bytes_per_cycle, ns.gemm_ii)


def _sim_args(ns: argparse.Namespace) -> list[str]:
    args: list[str] = []
    if ns.shape:
        args += ["--shape", ns.shape]
    else:
        args += ["--network", str(network_path(ns.network))]
        if ns.layer:
            args += ["--layer", ns.layer]
    if ns.batch is not None:
        args += ["--batch", str(ns.batch)]
    for s in ns.schedule:
        args += ["--schedule", s]
    args += ["--vthread", ns.vthread, "--mode", ns.mode, "--epilogue", ns.epilogue]
    for m in ns.model:
        args += ["--model", m]
    if ns.seed is not None:
        args += ["--seed", str(ns.seed)]
    return args


def _fmt(v: float) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:,.1f}"
    return f"{int(v):,}"


def main(argv: list[str]) -> int:
    try:
        ns = _parser().parse_args(argv)
        hw = _hw(ns)
        args = _sim_args(ns)
        binary = build(cc=ns.cc)
        result = run(binary.path, args, hw)
    except (SimUsageError, BadInput) as e:
        print(f"tune vta: error: {e}", file=sys.stderr)
        return 2
    except (CompileError, ToolMissing) as e:
        tail = getattr(e, "stderr_tail", "")
        print(f"tune vta: build failed: {e}" + (f"\n{tail}" if tail else ""), file=sys.stderr)
        return 1
    except (RuntimeError, OSError) as e:
        print(f"tune vta: {e}", file=sys.stderr)
        return 1
    if ns.format == "json":
        doc = {"hardware": {k: v for k, v in hw.__dict__.items() if k != "extra_defines"},
               "argv": list(result.argv[1:])}
        doc.update({"infeasible": result.infeasible} if result.infeasible else {"metrics": dict(result.metrics)})
        print(json.dumps(doc, indent=2))
        return 0
    if result.table:
        print(result.table)
    if result.infeasible:
        print(f"infeasible: {result.infeasible}")
        return 0
    print()
    for key, unit in _TABLE:
        if key in result.metrics:
            print(f"{key:<18} {_fmt(result.metrics[key]):>16} {unit}")
    return 0

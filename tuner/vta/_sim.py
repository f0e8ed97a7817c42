"""Build and run the VTA simulator binary (argv lists only, never a shell)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping, Sequence

from tuner.buildcache import BuildCache, CompiledBinary
from tuner.library import programs_dir


def source_dir() -> Path:
    """`programs/vta_sim/` of the built-in library (or of a $TUNE_LIBRARY root that has one)."""
    for lib in os.environ.get("TUNE_LIBRARY", "").split(os.pathsep):
        if lib and (Path(lib) / "programs" / "vta_sim" / "vta_sim.c").exists():
            return Path(lib) / "programs" / "vta_sim"
    return programs_dir() / "vta_sim"


def cache_root() -> Path:
    env = os.environ.get("TUNE_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "tune") / "builds"


@dataclass(frozen=True)
class HwConfig:
    """A VTA hardware configuration; each field becomes -DVTA_<NAME>=<value>."""

    log_batch: int = 0
    log_block_in: int = 4
    log_block_out: int = 4
    log_uop_buff_size: int = 15
    log_inp_buff_size: int = 15
    log_wgt_buff_size: int = 18
    log_acc_buff_size: int = 17
    part: str = "xc7z020"
    clock_mhz: float | None = None           # None: the part's board clock
    dram_bytes_per_cycle: int | None = None  # None: the part's AXI width
    gemm_ii: int = 1
    extra_defines: tuple[tuple[str, str], ...] = field(default=())  # e.g. (("VTA_M_DRAM_EFF", "0.5"),)

    def defines(self) -> list[str]:
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra_defines" or value is None:
                continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            out.append(f"-DVTA_{f.name.upper()}={value}")
        out += [f"-D{k}={v}" for k, v in self.extra_defines]
        return out


DEFAULT_HW = HwConfig()


class SimUsageError(Exception):
    """The simulator rejected its arguments (exit 2); the message is its one-line reason."""


@dataclass(frozen=True)
class SimResult:
    metrics: Mapping[str, float]
    infeasible: str | None
    table: str          # the human-readable lines before the @tune line
    argv: tuple[str, ...]


def build(hw: HwConfig = DEFAULT_HW, cc: str = "gcc", cache: BuildCache | None = None) -> CompiledBinary:
    """Compile (or reuse) the simulator for `hw`."""
    src = source_dir()
    cache = cache or BuildCache(cache_root())
    return cache.compile(
        cc,
        [src / "vta_sim.c"],
        cflags=["-O2", "-std=c11", *hw.defines()],
    )


def parse_output(stdout: str) -> tuple[dict, str]:
    lines = stdout.rstrip("\n").splitlines()
    if not lines or not lines[-1].startswith("@tune "):
        raise RuntimeError("simulator printed no @tune line")
    return json.loads(lines[-1][len("@tune "):]), "\n".join(lines[:-1])


def run(binary: Path, args: Sequence[str], timeout_s: float = 600.0) -> SimResult:
    """Run the simulator binary with `args`; raises SimUsageError on exit 2."""
    argv = [str(binary), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode == 2:
        raise SimUsageError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "bad arguments")
    if proc.returncode != 0:
        raise RuntimeError(f"simulator exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
    doc, table = parse_output(proc.stdout)
    return SimResult(doc.get("metrics", {}), doc.get("infeasible"), table, tuple(argv))

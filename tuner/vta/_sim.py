"""Build and run the VTA simulator binary (argv lists only, never a shell).

One binary serves every hardware configuration: the hardware goes in as arguments
(:meth:`HwConfig.args`), so a design-space search compiles once. ``build(fixed=hw)`` compiles
the other way, with the hardware as compile-time constants (``-DVTA_FIXED_HW``), as VTA does
with its vta_config.json; the tests check both give identical results.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping, Sequence

from tuner.buildcache import BuildCache, CompiledBinary
from tuner.library import programs_dir

CFLAGS = ("-O3", "-std=c11")


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
    """A VTA hardware configuration: each field is a simulator argument `--log-batch=0` ...
    (or, for a fixed-hardware build, a define -DVTA_LOG_BATCH=0)."""

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
    extra_defines: tuple[tuple[str, str], ...] = field(default=())  # fixed builds only, e.g. (("VTA_M_DRAM_EFF", "0.5"),)

    def _items(self) -> list[tuple[str, object]]:
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra_defines" or value is None:
                continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            out.append((f.name, value))
        return out

    def args(self) -> list[str]:
        """Run-time hardware arguments of the simulator."""
        return [f"--{name.replace('_', '-')}={value}" for name, value in self._items()]

    def defines(self) -> list[str]:
        """Compile-time hardware of a -DVTA_FIXED_HW build."""
        out = ["-DVTA_FIXED_HW"] + [f"-DVTA_{name.upper()}={value}" for name, value in self._items()]
        return out + [f"-D{k}={v}" for k, v in self.extra_defines]


DEFAULT_HW = HwConfig()


class SimUsageError(Exception):
    """The simulator rejected its arguments (exit 2); the message is its one-line reason."""


@dataclass(frozen=True)
class SimResult:
    metrics: Mapping[str, float]
    infeasible: str | None
    table: str          # the human-readable lines before the @tune line
    argv: tuple[str, ...]


def build(cc: str = "gcc", cache: BuildCache | None = None, fixed: HwConfig | None = None,
          extra_cflags: Sequence[str] = ()) -> CompiledBinary:
    """Compile (or reuse) the simulator: the run-time-hardware binary, or with `fixed` one
    whose hardware is compile-time constants (hardware arguments are then refused)."""
    src = source_dir()
    cache = cache or BuildCache(cache_root())
    defines = fixed.defines() if fixed is not None else []
    return cache.compile(cc, [src / "vta_sim.c"], cflags=[*CFLAGS, *defines, *extra_cflags])


def parse_output(stdout: str) -> tuple[dict, str]:
    lines = stdout.rstrip("\n").splitlines()
    if not lines or not lines[-1].startswith("@tune "):
        raise RuntimeError("simulator printed no @tune line")
    return json.loads(lines[-1][len("@tune "):]), "\n".join(lines[:-1])


def run(binary: Path, args: Sequence[str], hw: HwConfig | None = None, timeout_s: float = 600.0) -> SimResult:
    """Run the simulator binary with `args` (and `hw`'s arguments); SimUsageError on exit 2."""
    argv = [str(binary), *(hw.args() if hw is not None else []), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode == 2:
        line = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "bad arguments"
        raise SimUsageError(line.removeprefix("vta_sim: error: "))
    if proc.returncode != 0:
        raise RuntimeError(f"simulator exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
    doc, table = parse_output(proc.stdout)
    return SimResult(doc.get("metrics", {}), doc.get("infeasible"), table, tuple(argv))

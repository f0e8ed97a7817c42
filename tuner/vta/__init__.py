"""VTA-like FPGA accelerator simulator: build per hardware configuration, run, parse.

The simulator itself is C (``programs/vta_sim/``); this package compiles it through the
content-addressed :class:`tuner.buildcache.BuildCache` and runs it with argument lists.
Public API: :class:`HwConfig`, :func:`build`, :func:`run`, :class:`SimResult`.
"""

from tuner.vta._sim import DEFAULT_HW, HwConfig, SimResult, SimUsageError, build, run, source_dir

__all__ = ["DEFAULT_HW", "HwConfig", "SimResult", "SimUsageError", "build", "run", "source_dir"]

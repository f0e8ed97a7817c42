"""VTA-like FPGA accelerator simulator: build once, run per hardware configuration, parse.

The simulator itself is C (``programs/vta_sim/``); this package compiles it through the
content-addressed :class:`tuner.buildcache.BuildCache` (one binary takes the hardware as
run-time arguments; ``build(fixed=hw)`` bakes it in as constants) and runs it with argument lists.
Public API: :class:`HwConfig`, :func:`build`, :func:`run`, :class:`SimResult`.
"""

from tuner.vta._sim import DEFAULT_HW, HwConfig, SimResult, SimUsageError, build, run, source_dir

__all__ = ["DEFAULT_HW", "HwConfig", "SimResult", "SimUsageError", "build", "run", "source_dir"]

"""A Python module as the program: `python -m MODULE args`, for in-process frameworks (TVM).

Nothing is compiled by tune; the module builds and times its own code and prints the
`@tune` line like a native program. The build key hashes the module's source, so results
stay tied to the code that produced them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from typing import Any

from tuner.measure.environment import Placement
from tuner.records import Availability, Build, FailureReason, Measurement, Rendering
from tuner.targets.local import LocalTarget


class PythonTarget(LocalTarget):
    tags = frozenset({"no_native_build"})   # runs a module; the C conformance checks do not apply

    def probe(self) -> Availability:
        return Availability(True, "")

    def placement(self, program: Any = None, rendering: Rendering | None = None) -> Placement:
        """A framework sizes its own thread pool to the cores it sees: not pinned unless the
        rendering fixes TVM_NUM_THREADS (or the target says where, `run_cpu`)."""
        env = (rendering or Rendering()).env
        n = str(env.get("TVM_NUM_THREADS", "")).strip()
        return self.spec.measure.placement(int(n) if n.isdigit() and int(n) >= 1 else None)

    def build(self, program: Any, rendering: Rendering, reference: bool = False) -> Build | Measurement:
        if not program.module:
            return Measurement.failed(FailureReason.COMPILE_ERROR, "the python target needs [program] module")
        spec = importlib.util.find_spec(program.module)
        if spec is None or spec.origin is None:
            return Measurement.failed(FailureReason.TOOL_MISSING, f"module {program.module} not found")
        with open(spec.origin, "rb") as f:
            key = hashlib.sha256(f.read()).hexdigest()[:24]
        return Build(command=(sys.executable, "-m", program.module), key=key)

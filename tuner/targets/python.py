"""A Python program: for in-process frameworks (TVM) that build and time their own code.

Nothing is compiled by tune; the program builds and times its own code and prints the `@tune`
line like a native one. `[program] module = "NAME"` names it: a file NAME.py among the program's
`sources` (a workload in the library's programs/, e.g. programs/tvm_matmul/tvm_matmul.py) runs
as a script, `python path/NAME.py args`; otherwise an installed module runs as `python -m NAME`.
The build key hashes the program's source files, so results stay tied to the code that made them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from tuner.measure.environment import Placement
from tuner.records import Availability, Build, FailureReason, Measurement, Rendering
from tuner.targets.local import LocalTarget, run_trivial


def module_file(program: Any) -> Path | None:
    """The program's module as one of its source files, if it is one."""
    return next((Path(s) for s in program.sources if Path(s).name == f"{program.module}.py"), None)


class PythonTarget(LocalTarget):
    tags = frozenset({"no_native_build"})   # runs a module; the C conformance checks do not apply

    def probe(self) -> Availability:
        """Usable if this Python runs a trivial program through the target's transport."""
        return run_trivial(self, [sys.executable, "-c", "print('@tune {}')"], f"the Python interpreter {sys.executable}")

    def placement(self, program: Any = None, rendering: Rendering | None = None) -> Placement:
        """A framework sizes its own thread pool to the cores it sees: not pinned unless the
        rendering fixes TVM_NUM_THREADS (or the target says where, `run_cpu`)."""
        env = (rendering or Rendering()).env
        n = str(env.get("TVM_NUM_THREADS", "")).strip()
        return self.spec.measure.placement(int(n) if n.isdigit() and int(n) >= 1 else None)

    def build(self, program: Any, rendering: Rendering, reference: bool = False) -> Build | Measurement:
        if not program.module:
            return Measurement.failed(FailureReason.COMPILE_ERROR, "the python target needs [program] module")
        script = module_file(program)
        if script is not None:
            files, command = list(program.sources), (sys.executable, str(script))
        else:
            spec = importlib.util.find_spec(program.module)
            if spec is None or spec.origin is None:
                return Measurement.failed(FailureReason.TOOL_MISSING, f"module {program.module} not found")
            files, command = [Path(spec.origin)], (sys.executable, "-m", program.module)
        digest = hashlib.sha256()
        for f in files:
            digest.update(Path(f).read_bytes())
        return Build(command=command, key=digest.hexdigest()[:24])

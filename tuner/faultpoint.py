"""Deterministic fault injection: die at a named step of a trial's life, for the crash tests.

`TUNE_FAULT=STEP` (or `STEP:N`, the Nth time) makes the process SIGKILL itself when it reaches
STEP, so a test can kill a campaign at every step without timing luck. The steps, in order:
`created` (trial created with its lease, before a database heartbeat), `ask` (trial ready), `sample` (its params written), `record` (its configuration
stored), `evaluate` (before the build), `built` (between build and run), `ran` (after the run),
`tell` (before the result is stored), `told-record`, `told-constraint` (between the writes of
the result), `told` (result stored and durable). Unset, `hit` costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

STEPS = ("created", "ask", "sample", "record", "evaluate", "built", "ran", "tell", "told-record", "told-constraint", "told")
_seen: dict[str, int] = {}


def hit(step: str) -> None:
    spec = os.environ.get("TUNE_FAULT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != step:
        return
    _seen[step] = _seen.get(step, 0) + 1
    if _seen[step] == (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)

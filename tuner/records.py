"""The frozen records that flow one way through a campaign.

Config -> Rendering -> Build -> Measurement -> objective values -> TrialRecord.
No step reaches back; each returns a new record.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


class FailureReason(str, enum.Enum):
    """Why a trial produced no objective values (stored by value, so the names are stable)."""

    COMPILE_ERROR = "compile_error"
    CRASH = "crash"
    TIMEOUT = "timeout"
    WRONG_OUTPUT = "wrong_output"
    INFEASIBLE = "infeasible"
    TOOL_MISSING = "tool_missing"
    TRANSPORT = "transport"          # copy to / run on a remote device failed
    BAD_OUTPUT = "bad_output"        # the program broke the @tune protocol
    PRUNED = "pruned"                # not measured: the surrogate predicted it cannot reach the front

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Rendering:
    """What a configuration does to the build and the run; argv and env, never a shell string."""

    cflags: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    compiler: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)   # template variables


@dataclass(frozen=True)
class Build:
    """A built program: a binary (or a command) ready to run on a target."""

    command: tuple[str, ...]          # argv that runs it (binary path first, or interpreter + module)
    key: str                          # content address; equal keys mean identical builds
    build_s: float = 0.0
    binary_bytes: int | None = None   # code-section size (text), not file size
    cached: bool = False
    path: Path | None = None
    artifact: str = ""                # hash of the built bytes that run ("": the target cannot tell)


@dataclass(frozen=True)
class Launch:
    """One process of a measurement: its in-process repetitions and what it reported."""

    samples_ms: tuple[float, ...] = ()
    value: float = float("nan")          # the launch's own figure (median of its samples, or its latency_ms)
    wall_s: float = 0.0
    started: float = 0.0                 # time.time() at launch, to pair with a baseline's launches
    checksum: str | None = None
    cpu_ms: tuple[float, ...] = ()       # CPU time of each repetition (all threads), when reported
    offcore: float = float("nan")        # share of the timed wall time the process was off its core
    preempted: int = 0                   # involuntary context switches during the timed repetitions
    contended: bool = False              # off its core for more than the policy allows, preempted

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"samples_ms": list(self.samples_ms), "value": self.value,
                             "wall_s": round(self.wall_s, 4), "started": round(self.started, 3),
                             "checksum": self.checksum}
        if self.cpu_ms:
            d.update(cpu_ms=[round(x, 4) for x in self.cpu_ms], preempted=self.preempted,
                     contended=self.contended)
            if self.offcore == self.offcore:
                d["offcore"] = round(self.offcore, 4)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Launch":
        return cls(tuple(float(x) for x in d.get("samples_ms", ())), float(d.get("value", float("nan"))),
                   float(d.get("wall_s", 0.0)), float(d.get("started", 0.0)), d.get("checksum"),
                   tuple(float(x) for x in d.get("cpu_ms", ())), float(d.get("offcore", float("nan"))),
                   int(d.get("preempted", 0)), bool(d.get("contended", False)))


@dataclass(frozen=True)
class Measurement:
    """The outcome of measuring a build: one or several launches (processes) summarised.

    A fault is a Measurement with a reason, never an exception. `samples_ms` holds every
    launch's repetitions in order; `launches` keeps them per process, with `stopped` saying why
    the launches ended (see tuner.measure.launches) and `environment` what else ran meanwhile
    (tuner.measure.environment)."""

    metrics: Mapping[str, float] = field(default_factory=dict)
    samples_ms: tuple[float, ...] = ()
    checksum: str | None = None
    output: bytes | None = None          # raw output bytes, kept only for tolerance checks
    reason: FailureReason | None = None
    detail: str = ""                     # stderr tail, violated constraint, ...
    cpu_ms: tuple[float, ...] = ()       # CPU time of each repetition (parallel to samples_ms)
    launches: tuple[Launch, ...] = ()
    stopped: str = ""                    # "ci", "max", "raced", "single", "failed"
    environment: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reason is None

    @classmethod
    def failed(cls, reason: FailureReason, detail: str = "", **metrics: float) -> "Measurement":
        return cls(metrics=dict(metrics), reason=reason, detail=detail)


@dataclass(frozen=True)
class Availability:
    """Whether a target can be used here now, and if not, why."""

    usable: bool
    reason: str = ""

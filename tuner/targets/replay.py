"""Replay: serve recorded measurements instead of building and running.

A campaign on the replay target asks for configurations as usual and gets back what was
measured for them before: from a campaign's journal, or from a CSV (`tune export`'s trials.csv,
or any table with `param.<knob>` and `metric.<name>` columns, and optionally `state`, `reason`,
`detail`). Nothing is compiled or run, so the campaign's bookkeeping (deduplication, resume,
surrogate, several workers, crash recovery) is exercised in milliseconds, and a search
strategy can be compared on a recorded space (Kernel Tuner's simulation mode).

    description = "conv2d-flags as recorded on this machine"
    driver = "replay"
    [transport]
    source = "results/conv2d-flags/journal.log"   # or a .csv; relative to this file
    study = "conv2d-flags"                          # the study in a journal (default: its only one)
    run_ms = 0                                      # pretend each run takes this long
    missing = "fail"                                # an unrecorded configuration: "fail" (crash) or "error"

A recorded failure replays as that failure (its reason and detail); a configuration never
recorded fails as a crash naming it (`missing = "error"` raises instead). Verification against
a reference is a no-op here: the recording holds only verified results and recorded failures.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any, Mapping

from tuner.errors import BadInput
from tuner.records import Availability, Build, FailureReason, Measurement, Rendering
from tuner.targets.base import Target
from tuner.targets.spec import TargetSpec

TRANSPORT_KEYS = {"source", "study", "run_ms", "missing"}


def _norm(value: Any) -> str | None:
    """A knob value as text that a CSV cell, a JSON value and a template variable all agree on."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value)
    text = str(value).strip()
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    if text in ("True", "False"):
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def key_of(config: Mapping[str, Any]) -> str:
    norm = {k: _norm(v) for k, v in config.items()}
    return json.dumps({k: v for k, v in sorted(norm.items()) if v is not None})


class ReplayTarget(Target):
    tags = frozenset({"no_native_build"})

    def __init__(self, spec: TargetSpec, cache_root: Path) -> None:
        super().__init__(spec, cache_root)
        t = spec.transport
        unknown = set(t) - TRANSPORT_KEYS
        if unknown:
            raise BadInput(f"unknown key '{sorted(unknown)[0]}' (known: {', '.join(sorted(TRANSPORT_KEYS))})",
                           spec.file, "transport")
        if "source" not in t:
            raise BadInput("the replay driver needs source = \"journal.log or trials.csv\"", spec.file,
                           "transport.source")
        base = spec.file.parent if spec.file else Path.cwd()
        self.source = (base / str(t["source"])).resolve()
        self.study_name = t.get("study")
        try:
            self.run_s = float(t.get("run_ms", 0)) / 1e3
        except (TypeError, ValueError):
            raise BadInput("run_ms must be a number", spec.file, "transport.run_ms") from None
        self.missing = str(t.get("missing", "fail"))
        if self.missing not in ("fail", "error"):
            raise BadInput("missing must be 'fail' or 'error'", spec.file, "transport.missing")
        self._table: dict[str, Measurement] | None = None

    # --- the recording ---------------------------------------------------------------------
    def table(self) -> dict[str, Measurement]:
        if self._table is None:
            self._table = self._load_csv() if self.source.suffix == ".csv" else self._load_journal()
        return self._table

    def _load_csv(self) -> dict[str, Measurement]:
        out: dict[str, Measurement] = {}
        try:
            with open(self.source, newline="") as f:
                for row in csv.DictReader(f):
                    config = {k[6:]: v for k, v in row.items() if k and k.startswith("param.")}
                    metrics = {k[7:]: float(v) for k, v in row.items() if k and k.startswith("metric.") and v not in ("", None)}
                    state = (row.get("state") or "COMPLETE").lower()
                    if state == "complete":
                        m = Measurement(metrics=metrics)
                    elif state in ("failed", "infeasible"):
                        reason = FailureReason(row.get("reason") or ("infeasible" if state == "infeasible" else "crash"))
                        m = Measurement.failed(reason, row.get("detail") or "a recorded failure")
                    else:
                        continue      # not a measurement: duplicate, pruned, interrupted, ...
                    out.setdefault(key_of(config), m)
        except (OSError, ValueError, csv.Error) as e:
            raise BadInput(f"cannot read the recording: {e}", self.source) from None
        return out

    def _load_journal(self) -> dict[str, Measurement]:
        import optuna

        from tuner.result import TrialRecord, TrialStatus
        from tuner.storage import open_storage

        if not self.source.is_file():
            raise BadInput("no such recording", self.source)
        storage = open_storage(self.source.parent, f"journal:{self.source}")
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        name = self.study_name or (names[0] if len(names) == 1 else None)
        if name not in names:
            raise BadInput(f"name the study to replay with study = ... (the journal holds: {', '.join(names)})",
                           self.spec.file, "transport.study")
        out: dict[str, Measurement] = {}
        for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False):
            r = TrialRecord.from_trial(t, ())
            if r.status == TrialStatus.COMPLETE:
                m = Measurement(dict(r.metrics), tuple(r.samples_ms), r.checksum)
            elif r.status in (TrialStatus.FAILED, TrialStatus.INFEASIBLE) and r.reason:
                m = Measurement(dict(r.metrics), tuple(r.samples_ms), r.checksum, None, r.reason, r.detail)
            else:
                continue
            out.setdefault(key_of(r.config), m)
        return out

    # --- the target protocol ---------------------------------------------------------------
    def probe(self) -> Availability:
        if not self.source.is_file():
            return Availability(False, f"no recording at {self.source}")
        return Availability(True, "")

    def cores(self) -> int:
        return self.spec.cores or 1

    def build(self, program: Any, rendering: Rendering, reference: bool = False) -> Build | Measurement:
        key = key_of(rendering.variables)
        recorded = self.table().get(key)
        if recorded is not None and recorded.reason == FailureReason.COMPILE_ERROR and not reference:
            return recorded
        digest = hashlib.sha256(f"{self.source}:{key}:{reference}".encode()).hexdigest()[:24]
        return Build(command=("replay",), key=digest)

    def run(self, build: Build, program: Any, rendering: Rendering, want_output: bool = False,
            reference: bool = False) -> Measurement:
        # the recording holds verified results only: verification passes trivially (no checksum,
        # an empty output for tolerance checks)
        output = b"" if want_output else None
        if reference:
            return Measurement(output=output)
        if self.run_s:
            time.sleep(self.run_s)
        key = key_of(rendering.variables)
        recorded = self.table().get(key)
        if recorded is None:
            if self.missing == "error":
                raise KeyError(f"configuration not in the recording {self.source}: {key}")
            return Measurement.failed(FailureReason.CRASH, f"configuration not in the recording: {key}")
        return Measurement(recorded.metrics, recorded.samples_ms, None, output, recorded.reason, recorded.detail)


__all__ = ["ReplayTarget", "key_of"]

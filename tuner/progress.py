"""What a running campaign shows: a progress line per trial, and the engine's own overhead.

`Progress` is a campaign observer (`Campaign(observers=[progress])`): it hears every trial this
process told, with the study's finished count (every worker's, so a resumed or shared campaign
counts right) and the trial's wall time in the loop, from which the engine overhead (all but
build and run) is taken.
"""

from __future__ import annotations

import statistics
import sys
from collections import Counter
from typing import Any, Sequence

from tqdm import tqdm

from tuner.objectives import Objective
from tuner.result import TrialRecord, TrialStatus


def _fmt(v: float) -> str:
    return f"{v:.4g}"


class OverheadMeter:
    """A campaign observer that keeps the engine's overhead per measured trial: its wall time in
    the loop minus build and run (sampling, storage, deduplication, the surrogate)."""

    def __init__(self) -> None:
        self.overheads_s: list[float] = []

    def __call__(self, told: Any) -> None:
        r = told.record
        if r.status.measured:
            busy = r.timing.get("build_s", 0.0) + r.timing.get("run_s", 0.0)
            self.overheads_s.append(max(told.elapsed_s - busy, 0.0))

    def summary(self) -> str | None:
        """The median, as a line to print; None before any measured trial."""
        if not self.overheads_s:
            return None
        return ("engine overhead per trial (all but build and run): "
                f"median {statistics.median(self.overheads_s) * 1e3:.1f} ms")


class Progress:
    """A tqdm bar on a terminal; one plain line per trial otherwise (CI logs, pipes)."""

    def __init__(self, total: int, initial: int, objectives: Sequence[Objective], enabled: bool = True) -> None:
        self.objectives = objectives
        self.counts: Counter[TrialStatus] = Counter()
        self.resampled = 0             # proposals that broke a declared constraint (not counted)
        self.best: dict[str, float] = {}
        self.tty = enabled and sys.stderr.isatty()
        self.enabled = enabled
        self.done = initial
        self.total = total
        self.meter = OverheadMeter()
        self.bar = tqdm(total=total, initial=initial, unit="trial", dynamic_ncols=True,
                        file=sys.stderr) if self.tty else None

    def seed(self, recs: Sequence[TrialRecord]) -> None:
        for r in recs:
            self._count(r)

    def _count(self, r: TrialRecord) -> None:
        if r.resampled:
            self.resampled += 1
            return
        self.counts[r.status] += 1
        if r.status != TrialStatus.COMPLETE:
            return
        for o in self.objectives:
            v = r.values.get(o.name)
            if v is None:
                continue
            cur = self.best.get(o.name)
            if cur is None or o.better(v, cur):
                self.best[o.name] = v

    def line(self) -> str:
        c = self.counts
        S = TrialStatus
        best = " ".join(f"{o.name}={_fmt(self.best[o.name])}" for o in self.objectives if o.name in self.best)
        return (f"ok {c[S.COMPLETE]} failed {c[S.FAILED]} infeasible {c[S.INFEASIBLE]}"
                + (f" skipped {c[S.PRUNED]}" if c[S.PRUNED] else "")
                + (f" dup {c[S.DUPLICATE]}" if c[S.DUPLICATE] else "")
                + (f" resampled {self.resampled}" if self.resampled else "")
                + (f" | best {best}" if best else ""))

    def __call__(self, told: Any) -> None:
        """The campaign observer: `told` is a tuner.campaign.TrialTold."""
        self.meter(told)
        self.update(told.record, told.finished)

    def update(self, r: TrialRecord, finished: int | None = None) -> None:
        self._count(r)
        step = (finished - self.done) if finished is not None else 1
        self.done += step
        if self.bar is not None:
            self.bar.update(step)
            self.bar.set_postfix_str(self.line(), refresh=True)
        elif self.enabled:
            detailed = r.status in (TrialStatus.INFEASIBLE, TrialStatus.PRUNED) and r.detail
            why = r.detail.splitlines()[0][:90] if detailed else (r.reason.value if r.reason else "")
            what = f"{r.status} ({why})" if why else str(r.status)
            if r.resampled:
                what = f"resampled ({why}; not counted)"
            elif r.uncounted and r.status == TrialStatus.PRUNED:
                what = f"skipped by the surrogate ({why}; not counted)"
            elif r.uncounted and r.program_key:
                what = f"duplicate (built the program of trial {r.duplicate_of}; not counted)"
            elif r.uncounted:
                what = f"duplicate (of trial {r.duplicate_of}; not counted)"
            vals = " ".join(f"{k}={_fmt(v)}" for k, v in r.values.items())
            print(f"[{self.done}/{self.total}] trial {r.number}: {what} {vals}".rstrip()
                  + f"  ({self.line()})", file=sys.stderr)

    def overhead(self) -> str | None:
        return self.meter.summary()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

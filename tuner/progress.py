"""A progress line: finished, failed and infeasible trials, and the best of each objective."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Sequence

from tqdm import tqdm

from tuner.result import TrialRecord, TrialStatus
from tuner.objectives import Objective


def _fmt(v: float) -> str:
    return f"{v:.4g}"


class Progress:
    """A tqdm bar on a terminal; one plain line per trial otherwise (CI logs, pipes)."""

    def __init__(self, total: int, initial: int, objectives: Sequence[Objective], enabled: bool = True) -> None:
        self.objectives = objectives
        self.counts: Counter[TrialStatus] = Counter()
        self.best: dict[str, float] = {}
        self.tty = enabled and sys.stderr.isatty()
        self.enabled = enabled
        self.done = initial
        self.total = total
        self.bar = tqdm(total=total, initial=initial, unit="trial", dynamic_ncols=True,
                        file=sys.stderr) if self.tty else None

    def seed(self, recs: Sequence[TrialRecord]) -> None:
        for r in recs:
            self._count(r)

    def _count(self, r: TrialRecord) -> None:
        self.counts[r.status] += 1
        if r.status != TrialStatus.COMPLETE:
            return
        for o in self.objectives:
            v = r.values.get(o.name)
            if v is None:
                continue
            cur = self.best.get(o.name)
            if cur is None or (v < cur if o.direction == "minimize" else v > cur):
                self.best[o.name] = v

    def line(self) -> str:
        c = self.counts
        best = " ".join(f"{o.name}={_fmt(self.best[o.name])}" for o in self.objectives if o.name in self.best)
        S = TrialStatus
        return (f"ok {c[S.COMPLETE]} failed {c[S.FAILED]} infeasible {c[S.INFEASIBLE]}"
                + (f" pruned {c[S.PRUNED]}" if c[S.PRUNED] else "")
                + (f" dup {c[S.DUPLICATE]}" if c[S.DUPLICATE] else "")
                + (f" | best {best}" if best else ""))

    def update(self, r: TrialRecord) -> None:
        self._count(r)
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(self.line(), refresh=True)
        elif self.enabled:
            detailed = r.status in (TrialStatus.INFEASIBLE, TrialStatus.PRUNED) and r.detail
            why = r.detail.splitlines()[0][:90] if detailed else (r.reason.value if r.reason else "")
            what = f"{r.status} ({why})" if why else r.status
            vals = " ".join(f"{k}={_fmt(v)}" for k, v in r.values.items())
            print(f"[{self.done}/{self.total}] trial {r.number}: {what} {vals}".rstrip()
                  + f"  ({self.line()})", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

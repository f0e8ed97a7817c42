"""Speed-ups against the baseline: defined only where a ratio means something."""

from __future__ import annotations

from types import SimpleNamespace

from tuner.result import TrialRecord, TrialStatus
from tuner.objectives import Objective
from tuner.report import speedups


def rec(n: int, **values: float) -> TrialRecord:
    return TrialRecord(n, TrialStatus.COMPLETE, values=values)


def test_speedups_skip_zero_and_sign_changes():
    spec = SimpleNamespace(objectives=[Objective("t", "minimize", "", "t"), Objective("a", "maximize", "", "a"),
                                       Objective("z", "minimize", "", "z")])
    base = rec(0, t=10.0, a=0.5, z=4.0)
    best = rec(1, t=5.0, a=0.75, z=0.0)          # z reaches 0: no finite ratio
    report = SimpleNamespace(baseline=base, verified=[base, best])
    assert speedups(report, spec) == {"t": 2.0, "a": 1.5}


def test_objectives_say_which_way_is_better():
    lo, hi = Objective("t", "minimize", "", "t"), Objective("a", "maximize", "", "a")
    assert lo.better(1.0, 2.0) and not lo.better(2.0, 1.0) and not lo.better(1.0, 1.0)
    assert hi.better(2.0, 1.0) and (lo.best([3, 1, 2]), hi.best([3, 1, 2])) == (1, 3)
    assert (lo.worst([3, 1, 2]), hi.worst([3, 1, 2])) == (3, 1) and (lo.sign, hi.sign) == (1.0, -1.0)

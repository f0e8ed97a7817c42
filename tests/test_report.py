"""Speed-ups against the baseline: defined only where a ratio means something."""

from __future__ import annotations

from types import SimpleNamespace

from tuner.result import TrialRecord, TrialStatus
from tuner.report import speedups


def rec(n: int, **values: float) -> TrialRecord:
    return TrialRecord(n, TrialStatus.COMPLETE, values=values)


def test_speedups_skip_zero_and_sign_changes():
    spec = SimpleNamespace(objectives=[SimpleNamespace(name="t", direction="minimize"),
                                       SimpleNamespace(name="a", direction="maximize"),
                                       SimpleNamespace(name="z", direction="minimize")])
    base = rec(0, t=10.0, a=0.5, z=4.0)
    best = rec(1, t=5.0, a=0.75, z=0.0)          # z reaches 0: no finite ratio
    report = SimpleNamespace(baseline=base, verified=[base, best])
    assert speedups(report, spec) == {"t": 2.0, "a": 1.5}

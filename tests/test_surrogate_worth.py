"""The surrogate stands aside while a measurement is cheaper than screening it, and comes back
when measurements get expensive (tuner/surrogate/worth.py, policy.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from conftest import grid_rows, write_replay
from test_surrogate import KNOBS, history_of
from tuner.evaluate import Outcome
from tuner.history import History
from tuner.records import FailureReason, Measurement
from tuner.result import TrialStatus
from tuner.study import load_study
from tuner.surrogate import PruningPolicy, Settings
from tuner.surrogate.worth import Ledger, measurement_seconds

pytestmark = pytest.mark.fast

DOMINATED = {"x": 4, "y": 9}          # truly (13, -14): deep in the dominated region


@pytest.fixture
def spec(lab):
    return load_study(str(lab.study("sgw", KNOBS)))


def timed(history: History, seconds: float) -> History:
    """The same history, every trial measured in `seconds`."""
    out = History(history.objectives)
    for r in history.records():
        out.add(replace(r, timing={"build_s": 0.0, "run_s": seconds, "total_s": seconds}))
    return out


def points() -> list[tuple[int, int]]:
    return [(0, 0), (9, 0)] + [(x, y) for x in range(10) for y in range(3, 10) if (x, y) != (4, 9)]


def test_ledger_compares_expected_saving_with_expected_cost():
    ledger = Ledger()
    assert ledger.verdict(0.05, 4, 0.15) is None, "no verdict before the first fit is timed"
    ledger.fitted(0.4)
    ledger.judged(0.005, poor=True)
    assert ledger.share == pytest.approx(2 / 3)           # (1 + 1) / (1 + 2)
    cheap = ledger.verdict(0.05, refit_every=4, audit_rate=0.15)
    # saving 2/3 * 0.85 * 50 ms = 28 ms; cost 5 ms + 400 ms * (1 - 0.567) / 4 = 48 ms
    assert not cheap.worth and cheap.saving_s == pytest.approx(0.02833, abs=1e-4)
    assert cheap.cost_s == pytest.approx(0.005 + 0.4 * (1 - 2 / 3 * 0.85) / 4)
    assert "does not pay" in cheap.why and "50 ms" in cheap.why
    assert ledger.verdict(0.5, 4, 0.15).worth            # 0.28 s saved per candidate against 48 ms
    assert ledger.verdict(None, 4, 0.15) is None          # no timing recorded: cannot judge
    probed = Ledger()
    probed.probed(0.3)
    assert probed.verdict(0.05, 4, 0.15).estimated and probed.fits == 1
    probed.fitted(0.5)                                    # the first real fit replaces the estimate
    assert (probed.fit_s, probed.fits, probed.estimated) == (0.5, 1, False)


def test_measurement_cost_is_the_recent_median():
    history = timed(history_of(points()), 0.2)
    recs = history.measured()
    assert measurement_seconds(recs, 16) == pytest.approx(0.2)
    recent = recs[:-3] + [replace(r, timing={"total_s": 9.0}) for r in recs[-3:]]
    assert measurement_seconds(recent, 5) == pytest.approx(9.0)      # 3 of the last 5 are slow
    assert measurement_seconds([replace(r, timing={}) for r in recs], 16) is None


def test_cheap_measurements_stand_aside_after_a_probe_without_a_fit(spec):
    """Trials of 0.1 ms: the probe (one objective's GP, times the objectives) already says
    screening cannot pay, so the surrogate is never fitted; the measured trial's record says why."""
    policy = PruningPolicy(spec, Settings(audit_rate=0.0, refit_every=1), seed=0)
    history = timed(history_of(points()), 1e-4)
    for _ in range(4):
        assert policy(DOMINATED, history) is None, "screening 0.1 ms trials cannot pay"
    assert policy.model.fits == 0, "a surrogate standing aside must not fit"
    assert policy.ledger.estimated and policy.ledger.fit_s > 0
    assert not policy.verdict.worth and policy.verdict.measurement_s == pytest.approx(1e-4)
    outcome = Outcome(DOMINATED, Measurement(), values={"cost": 13.0, "gain": -14.0})
    assert policy.observe(outcome) is None                # not an audit
    note = outcome.extra["surrogate"]
    assert note["stood_aside"] is True and note["estimated"] and "does not pay" in note["why"]
    assert "estimated from one objective" in note["why"]


def test_the_probe_fits_nothing_it_keeps(spec):
    """The probe times one objective's GP (thrown away): the model stays unfitted; extra-trees
    (milliseconds) get no probe. How close the estimate comes is for bench/surrogate.py, not a
    timed test."""
    from tuner.surrogate.encode import Encoder
    from tuner.surrogate.model import Surrogate

    ok = history_of(points()).complete()
    X = Encoder(spec.space).encode([dict(r.config) for r in ok])
    Y = PruningPolicy(spec, seed=0)._values(ok)
    model = Surrogate(seed=0)
    assert model.probe_seconds(X, Y) > 0
    assert model.fits == 0 and model.models_ == [] and model.kind_ == ""
    assert Surrogate(kind="trees").probe_seconds(X, Y) is None


def test_expensive_measurements_keep_pruning_and_cheap_ones_come_back(spec):
    policy = PruningPolicy(spec, Settings(audit_rate=0.0), seed=0)
    cheap, dear = timed(history_of(points()), 1e-4), timed(history_of(points()), 30.0)
    for _ in range(3):
        out = policy(DOMINATED, dear)
        assert out is not None and out.measurement.reason == FailureReason.PRUNED
    assert policy.verdict.worth
    assert policy(DOMINATED, cheap) is None and not policy.verdict.worth
    back = policy(DOMINATED, dear)                         # trials got expensive again
    assert back is not None and back.measurement.reason == FailureReason.PRUNED


def test_always_screens_whatever_it_costs(spec):
    policy = PruningPolicy(spec, Settings(audit_rate=0.0, stand_aside=False), seed=0)
    history = timed(history_of(points()), 1e-4)
    for _ in range(3):
        assert policy(DOMINATED, history) is not None
    assert policy.verdict is None


def test_campaign_of_instant_trials_stands_aside_and_says_so(lab):
    """End to end on recorded measurements (runs take ~nothing): the default surrogate probes
    once, then stands aside; status and the trial records say why."""
    study = lab.study("sgaside", KNOBS, target=write_replay(lab, "rpa", grid_rows(10)))
    proc = lab.fork("explore", study, "--trials", "40", "--seed", "1", "--sampler", "random", "--no-export")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(lab.fork("status", study, "--format", "json").stdout)
    sg = status["surrogate"]
    recs = lab.records(study)
    aside = [r for r in recs if r.surrogate and r.surrogate.get("stood_aside")]
    # after the warm-up, no candidate is screened (the probe says it does not pay)
    complete = status["by_state"]["complete"]
    assert sg["pruned"] <= 1 and sg["stood_aside"] == len(aside) >= complete - Settings().warmup - 1, status
    assert "does not pay" in sg["stood_aside_why"]
    assert all(r.status != TrialStatus.PRUNED and r.metrics for r in aside), "stood aside means measured"
    text = lab.fork("status", study).stdout
    assert "stood aside for" in text and "does not pay" in text

"""Surrogate pruning: a dominated candidate is pruned, a promising one is not, audits happen,
and a campaign records pruned trials with their predictions."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from conftest import grid_rows, write_replay
from tuner.evaluate import Outcome
from tuner.history import History
from tuner.objectives import Objective
from tuner.records import FailureReason, Measurement
from tuner.result import TrialRecord, TrialStatus
from tuner.space import config_key
from tuner.study import load_study
from tuner.surrogate import PruningPolicy, Settings
from tuner.surrogate.policy import wilson_low
from tuner.surrogate.encode import Encoder
from tuner.surrogate.model import Surrogate

pytestmark = pytest.mark.fast

KNOBS = """
[knobs.x]
kind = "int"
low = 0
high = 9
to = "define"
define = "X"

[knobs.y]
kind = "int"
low = 0
high = 9
to = "define"
define = "Y"
"""


def objectives(x: int, y: int) -> list[float]:
    """cost = x + y (minimise), gain = -(9 - x + y) (maximise): the front is y = 0."""
    return [float(x + y), -float(9 - x + y)]


def measured(x: int, y: int, number: int) -> TrialRecord:
    config = {"x": x, "y": y}
    return TrialRecord(number, TrialStatus.COMPLETE, config, config_key(config),
                       values=dict(zip(("cost", "gain"), objectives(x, y))))


@pytest.fixture
def spec(lab):
    return load_study(str(lab.study("sg", KNOBS)))


def history_of(points: list[tuple[int, int]]) -> History:
    history = History([Objective("cost", "minimize", "", "cost"), Objective("gain", "maximize", "", "gain")])
    for i, (x, y) in enumerate(points):
        history.add(measured(x, y, i))
    return history


def grid_history() -> History:
    # the corners of the front (y = 0 at x = 0 and 9), and everything with y >= 3
    return history_of([(0, 0), (9, 0)] + [(x, y) for x in range(10) for y in range(3, 10) if (x, y) != (4, 9)])


@pytest.fixture
def history():
    return grid_history()


def test_dominated_candidate_is_pruned_with_its_predictions(spec, history):
    policy = PruningPolicy(spec, Settings(audit_rate=0.0), seed=0)
    outcome = policy({"x": 4, "y": 9}, history)          # truly (13, -14): deep in the dominated region
    assert outcome is not None, "a dominated candidate must be pruned"
    assert outcome.measurement.reason == FailureReason.PRUNED
    sg = outcome.extra["surrogate"]
    assert sg["gain"] < policy.min_gain and "hypervolume" in sg["why"]
    assert len(sg["mean"]) == len(sg["std"]) == 2
    assert abs(outcome.values["cost"] - 13) < 2.5        # the prediction is near the truth


def test_promising_candidate_is_measured(spec, history):
    policy = PruningPolicy(spec, Settings(audit_rate=0.0), seed=0)
    assert policy({"x": 4, "y": 0}, history) is None     # truly (4, -5): a new front point


def test_no_pruning_during_warm_up(spec, history):
    few = history_of([(0, 0), (9, 0), (1, 3), (2, 3), (3, 3)])
    policy = PruningPolicy(spec, Settings(audit_rate=0.0, warmup=16), seed=0)
    assert policy({"x": 4, "y": 9}, few) is None


def test_audits_measure_would_be_pruned_candidates_and_tighten(spec, history):
    policy = PruningPolicy(spec, Settings(audit_rate=1.0), seed=0)
    config = {"x": 4, "y": 9}
    assert policy(config, history) is None               # audited: measured anyway
    audit = policy.observe(Outcome(config, Measurement(), values=dict(zip(["cost", "gain"], objectives(4, 9)))))
    assert audit == {"false_prune": False, "audits": 1, "false_prunes": 0, "kappa": Settings().kappa,
                     "min_gain": Settings().min_gain}
    # an audited candidate that turns out to extend the front is a false prune; enough of them tighten
    kappa = policy.kappa
    for i in range(4):
        history.add(replace(measured(4, 9, 900 + i), audit=audit))     # stored, as the campaign does
        assert policy(config, history) is None
        audit = policy.observe(Outcome(config, Measurement(), values={"cost": -5.0, "gain": 5.0}))
        assert audit["false_prune"] is True
    assert policy.kappa > kappa and policy.min_gain < Settings().min_gain


def test_wilson_lower_bound():
    assert wilson_low(0, 0) == 0.0 and wilson_low(0, 5) == 0.0
    assert 0.20 < wilson_low(1, 1) < 0.21 and 0.20 < wilson_low(2, 3) < 0.21      # above a 10% limit
    assert wilson_low(2, 5) > 0.10 > wilson_low(2, 6) and wilson_low(1, 2) < 0.10
    assert wilson_low(30, 100) < 0.30 < wilson_low(40, 100)


def audit_once(policy: PruningPolicy, history: History, config: dict, values: dict, number: int) -> dict:
    """One would-be prune measured (`values`), its audit stored with it as the campaign stores it."""
    assert policy(config, history) is None, "an audit or a gated candidate is measured"
    audit = policy.observe(Outcome(config, Measurement(), values=values))
    history.add(replace(measured(config["x"], config["y"], number), audit=audit))
    return audit


def test_audits_that_disagree_stop_the_pruning_until_they_agree(spec):
    """A real surrogate whose audited prunes turn out to extend the front (the audits disagree, 2
    false of 3 as on the sort kernel): it stops pruning, says why in the trial's record, and
    audits every would-be prune; right calls bring the 95% lower bound of the false-prune rate
    back under the 10% limit and it prunes again. A policy whose audits agree keeps pruning."""
    config, truth = {"x": 4, "y": 9}, dict(zip(("cost", "gain"), objectives(4, 9)))
    better = {"cost": -5.0, "gain": 5.0}                 # what the audit finds: a new front point
    agreeing, history = PruningPolicy(spec, Settings(audit_rate=1.0), seed=0), grid_history()
    for i in range(3):
        assert audit_once(agreeing, history, config, truth, 800 + i)["false_prune"] is False
    agreeing.settings.audit_rate = 0.0
    assert agreeing(config, history) is not None, "audits that agree: it prunes"

    policy, history = PruningPolicy(spec, Settings(audit_rate=1.0), seed=0), grid_history()
    for i, values in enumerate((better, truth, better)):
        audit_once(policy, history, config, values, 900 + i)
    policy.settings.audit_rate = 0.0                     # no random audits from here: only the gate's
    assert policy(config, history) is None, "2 false prunes in 3 audits: it must stop pruning"
    note = policy.observe(Outcome(config, Measurement(), values=truth))
    assert note is not None                              # the gated candidate was audited
    history.add(replace(measured(4, 9, 903), audit=note))
    # the record says why (tune status prints the last one)
    out = Outcome(config, Measurement(), values=truth)
    assert policy(config, history) is None
    policy.observe(out)
    assert out.extra["surrogate"]["gate"] == "audits" and out.extra["surrogate"]["stood_aside"] is True
    assert "audits found 2 false prunes in 4" in out.extra["surrogate"]["why"]
    history.add(replace(measured(4, 9, 904), audit={"false_prune": False}))
    # 2 false of 5 audits: still gated; of 6: the bound is under the limit, it prunes again
    assert policy(config, history) is None
    history.add(replace(measured(4, 9, 905), audit=policy.observe(Outcome(config, Measurement(), values=truth))))
    assert policy(config, history) is not None


def test_outcomes_of_other_configurations_are_not_audits(spec, history):
    policy = PruningPolicy(spec, Settings(audit_rate=1.0), seed=0)
    policy({"x": 4, "y": 9}, history)
    other = Outcome({"x": 1, "y": 1}, Measurement(), values={"cost": 2.0, "gain": -9.0})
    assert policy.observe(other) is None


def test_encoder_is_stable_and_marks_inactive_knobs(lab):
    spec = load_study(str(lab.study("enc", KNOBS + """
[knobs.order]
kind = "permutation"
items = ["a", "b", "c"]
to = "none"

[knobs.mode]
kind = "categorical"
choices = ["p", "q"]
to = "none"
when = "x > 4"
""")))
    enc = Encoder(spec.space)
    a = enc.encode([{"x": 1, "y": 2, "order": "b,a,c"}, {"x": 7, "y": 2, "order": "a,b,c", "mode": "q"}])
    assert a.shape == (2, enc.width)
    row = dict(zip(enc.columns, a[0]))
    assert row["order.pos(b)"] == 0 and row["order.pos(a)"] == 1 and row["mode.active"] == 0
    assert dict(zip(enc.columns, a[1]))["mode=q"] == 1
    np.testing.assert_array_equal(a, enc.encode([{"x": 1, "y": 2, "order": "b,a,c"},
                                                 {"x": 7, "y": 2, "order": "a,b,c", "mode": "q"}]))


def test_campaign_records_pruned_trials(lab):
    """End to end (on recorded measurements): a campaign with the surrogate prunes, records the
    predictions, and status reports it. `always`: replayed runs cost nothing, so `on` would stand
    aside (test_surrogate_worth.py)."""
    study = lab.study("sgrun", KNOBS, target=write_replay(lab, "rp", grid_rows(10)))
    proc = lab.fork("explore", study, "--trials", "40", "--seed", "1", "--sampler", "random", "--no-export",
                    "--surrogate", "always")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(lab.fork("status", study, "--format", "json").stdout)
    sg = status["surrogate"]
    assert status["finished"] == 40
    assert sg["pruned"] == status["by_state"].get("pruned", 0)
    assert sg["pruned"] >= 1, proc.stderr
    pruned = [r for r in lab.records(study) if r.status == TrialStatus.PRUNED]
    assert all(r.surrogate and r.surrogate["why"] for r in pruned)
    assert not any(r.metrics for r in pruned), "a pruned trial was not measured"
    pareto = json.loads(lab.fork("pareto", study, "--format", "json").stdout)
    assert {p["trial"] for p in pareto}.isdisjoint({r.number for r in pruned})


def test_extra_trees_prediction_equals_each_trees_checked_prediction():
    """The row is cast to float32 once for all trees (check_input=False): the mean and spread
    must be exactly what each tree's own checked predict gives."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, size=(40, 300)).astype(float) + rng.random((40, 300)) / 3
    Y = np.column_stack([X[:, :5].sum(axis=1), X[:, 5:9].prod(axis=1) + 1])
    model = Surrogate(kind="trees", seed=1).fit(X, Y, X, np.zeros(40, dtype=bool))
    for x in rng.random((5, 300)) * 3:
        per_tree = np.stack([t.predict(x.reshape(1, -1))[0] for t in model.models_[0].estimators_])
        pred = model.predict(x)
        assert np.array_equal(pred.mean, per_tree.mean(axis=0)) and np.array_equal(pred.std, per_tree.std(axis=0))

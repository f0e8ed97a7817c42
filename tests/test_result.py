"""The trial record: typed statuses, a round trip through Optuna's attributes, and journals
written by the schema before it (tests/data/journal_v1) still read the same."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from tuner import trials as T
from tuner.records import FailureReason
from tuner.result import ATTR, SCHEMA_VERSION, TrialRecord, TrialStatus
from tuner.storage import open_storage

V1 = Path(__file__).parent / "data" / "journal_v1"
OBJECTIVES = (SimpleNamespace(name="latency_ms", direction="minimize"),
              SimpleNamespace(name="binary_bytes", direction="minimize"))
S = TrialStatus


def test_finished_and_measured_are_defined_once():
    assert {s for s in S if s.finished} == {S.COMPLETE, S.FAILED, S.INFEASIBLE, S.DUPLICATE, S.PRUNED}
    assert {s for s in S if s.measured} == {S.COMPLETE, S.FAILED}
    assert S("waiting") is S.WAITING and S.COMPLETE == "complete" and str(S.PRUNED) == "pruned"


def frozen(rec: TrialRecord, state: TrialState = TrialState.COMPLETE, values=(1.5, 900.0)) -> optuna.trial.FrozenTrial:
    """The trial Optuna would hold after the campaign stored `rec` and told `values`."""
    return optuna.trial.create_trial(
        state=state, values=list(values) if state == TrialState.COMPLETE else None,
        params=dict(rec.config), distributions={k: IntDistribution(0, 9) for k in rec.config},
        user_attrs=rec.to_attrs())


FULL = TrialRecord(
    7, S.COMPLETE, {"x": 3, "y": 4}, "k34", {"latency_ms": 1.5, "binary_bytes": 900.0},
    {"latency_ms": 1.5, "reps": 3.0}, None, "ok", {"build_s": 0.2, "run_s": 0.1}, "host:12", True,
    None, 2, "c0ffee", "bk", (1.0, 1.5, 2.0), None, {"false_prune": False}, None,
    {"launches": 3}, {"governor": "performance"}, {"tune": "0.1.0"})


def test_a_record_round_trips_through_the_attributes():
    got = TrialRecord.from_trial(frozen(FULL), OBJECTIVES)
    assert replace(got, number=7) == FULL
    assert list(FULL.to_attrs()) == [ATTR], "a record is one user attribute (one journal write)"
    assert FULL.to_attrs()[ATTR]["v"] == SCHEMA_VERSION
    json.dumps(FULL.to_attrs())      # storable as JSON


@pytest.mark.parametrize("status,reason,state", [
    (S.FAILED, FailureReason.COMPILE_ERROR, TrialState.FAIL),
    (S.INFEASIBLE, FailureReason.INFEASIBLE, TrialState.COMPLETE),
    (S.PRUNED, FailureReason.PRUNED, TrialState.COMPLETE),
    (S.DUPLICATE, None, TrialState.COMPLETE),
    (S.INTERRUPTED, None, TrialState.FAIL),
])
def test_only_complete_records_carry_values(status, reason, state):
    rec = TrialRecord(1, status, {"x": 1}, "k1", reason=reason, duplicate_of=0 if status == S.DUPLICATE else None)
    got = TrialRecord.from_trial(frozen(rec, state), OBJECTIVES)
    assert got.status == status and got.reason == reason and got.values == {}
    assert got.finished == status.finished


def test_a_running_record_left_behind_reads_as_interrupted():
    """Optuna's heartbeat (or recovery) failed the trial; its record still says running."""
    rec = TrialRecord(1, S.RUNNING, {"x": 1}, "k1").running("other:1", now=5.0)
    assert rec.lease == 5.0 and rec.worker == "other:1"
    assert TrialRecord.from_trial(frozen(rec, TrialState.RUNNING), OBJECTIVES).status == S.RUNNING
    assert TrialRecord.from_trial(frozen(rec, TrialState.FAIL), OBJECTIVES).status == S.INTERRUPTED


def test_unknown_keys_of_a_newer_schema_are_kept():
    attrs = FULL.to_attrs()
    attrs[ATTR] = {**attrs[ATTR], "v": SCHEMA_VERSION + 1, "future": [1, 2], "reason": "gamma_ray"}
    t = optuna.trial.create_trial(values=[1.0, 2.0], user_attrs=attrs)
    got = TrialRecord.from_trial(t, OBJECTIVES)
    assert got.version == SCHEMA_VERSION + 1 and got.extra == {"future": [1, 2], "reason": "gamma_ray"}
    assert got.reason is None and got.checksum == "c0ffee"
    assert got.to_attrs()[ATTR]["future"] == [1, 2] and got.to_attrs()[ATTR]["reason"] == "gamma_ray"


def test_a_plain_optuna_trial_is_a_record_too():
    t = optuna.trial.create_trial(values=[1.0, 2.0], params={"x": 2}, distributions={"x": IntDistribution(0, 9)})
    got = TrialRecord.from_trial(t, OBJECTIVES)
    assert got.status == S.COMPLETE and got.config == {"x": 2} and got.values == {"latency_ms": 1.0, "binary_bytes": 2.0}
    failed = optuna.trial.create_trial(state=TrialState.FAIL)
    assert TrialRecord.from_trial(failed, OBJECTIVES).status == S.FAILED


@pytest.fixture
def v1_study(tmp_path):
    journal = tmp_path / "journal.log"
    shutil.copy(V1 / "journal.log", journal)
    return optuna.load_study(study_name="study", storage=open_storage(tmp_path, f"journal:{journal}"))


def test_a_journal_of_schema_1_reads_as_it_did(v1_study):
    """Every trial of the old journal reads with the status, configuration, values, metrics,
    reason, detail and timing the old reader gave (records_v1.json, written by it). Its duplicates
    and its pruned trial still count toward the budget (9 finished), as they did when written."""
    want = json.loads((V1 / "records_v1.json").read_text())
    got = T.records(v1_study, OBJECTIVES)
    assert len(got) == len(want) == 12
    for r, w in zip(got, want):
        assert r.version == 1
        assert (r.number, r.status.value, dict(r.config), dict(r.values)) == \
            (w["number"], w["status"], w["params"], w["values"])
        assert (dict(r.metrics), r.reason.value if r.reason else "", r.detail, dict(r.timing)) == \
            (w["metrics"], w["reason"], w["detail"], w["timing"])
        a = w["attrs"]
        assert r.config_key == a.get("config_key", a.get("retry_key", ""))
        assert (r.worker, r.baseline, r.retry_of, r.duplicate_of) == \
            (a.get("worker", ""), bool(a.get("baseline")), a.get("retry_of"), a.get("duplicate_of"))
        assert (r.checksum, r.build_key, list(r.samples_ms)) == (a.get("checksum"), a.get("build_key", ""),
                                                                  a.get("samples_ms", []))
        assert r.audit == a.get("audit") and r.surrogate == (
            {**a["surrogate"], "predicted_failure": False} if "surrogate" in a else None)
    assert T.counts(got) == {
        "finished": 9, "measured": 5, "skipped": 1, "same_program": 0,
        "failures_by_reason": {"compile_error": 1, "infeasible": 1},
        "by_state": {"complete": 4, "duplicate": 2, "failed": 1, "infeasible": 1, "interrupted": 1,
                     "pruned": 1, "running": 1, "waiting": 1},
        "most_common_failure": {"reason": "compile_error", "message": "cc: error: something", "trials": 1,
                                "last_trial": 3}}


def test_an_old_record_is_rewritten_in_the_new_schema_unchanged(v1_study):
    for t in v1_study.get_trials(deepcopy=False):
        old = TrialRecord.from_trial(t, OBJECTIVES)
        again = TrialRecord.from_trial(optuna.trial.FrozenTrial(
            number=t.number, state=t.state, value=None, values=t.values, datetime_start=t.datetime_start,
            datetime_complete=t.datetime_complete, params=t.params, distributions=t.distributions,
            user_attrs=old.to_attrs(), system_attrs={}, intermediate_values={}, trial_id=t._trial_id), OBJECTIVES)
        assert replace(again, version=1) == old

"""The journal: a torn last line (a writer killed mid-record) is cut before the next append,
two processes' records never interleave, and a trial's parameters are appended together."""

from __future__ import annotations

import json
import multiprocessing

import optuna

from tuner.storage import TrialDurableBackend, open_storage, sync


def test_torn_tail_is_cut_before_appending(tmp_path):
    path = tmp_path / "journal.log"
    backend = TrialDurableBackend(str(path))
    backend.append_logs([{"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]}])
    with open(path, "ab") as f:
        f.write(b'{"op_code": 4, "worker_id": "w", "trial_id"')       # killed mid-record
    backend.append_logs([{"op_code": 1, "worker_id": "w", "study_id": 0}])
    lines = path.read_bytes().splitlines()
    assert [json.loads(ln)["op_code"] for ln in lines] == [0, 1]
    # the common case reads one byte and keeps everything
    backend.append_logs([{"op_code": 1, "worker_id": "w", "study_id": 0}])
    assert len(path.read_bytes().splitlines()) == 3


def test_a_study_round_trips_through_the_journal(tmp_path):
    storage = open_storage(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    for i in range(3):
        trial = study.ask()
        trial.suggest_int("x", 0, 10)
        study.tell(trial, float(i))
    sync(storage)
    again = optuna.load_study(study_name="s", storage=open_storage(tmp_path))
    assert [t.value for t in again.trials] == [0.0, 1.0, 2.0]


def _writer(path: str, tag: str, n: int) -> None:
    backend = TrialDurableBackend(path)
    for i in range(n):
        backend.append_logs([{"op_code": 1, "worker_id": tag, "i": i, "pad": "x" * 3000}])


def test_two_processes_never_interleave_records(tmp_path):
    path = str(tmp_path / "journal.log")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, tag, 300)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    records = [json.loads(ln) for ln in open(path, "rb").read().splitlines()]
    assert len(records) == 600
    for tag in ("a", "b"):
        assert [r["i"] for r in records if r["worker_id"] == tag] == list(range(300))


def test_a_trials_parameters_are_appended_together(tmp_path):
    storage = open_storage(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    lines = len((tmp_path / "journal.log").read_bytes().splitlines())
    for i in range(50):
        trial.suggest_int(f"x{i}", 0, 10)
    assert trial.params["x7"] is not None                             # this process sees them at once
    other = optuna.load_study(study_name="s", storage=open_storage(tmp_path))
    assert other.trials[0].params == {}                               # not written yet
    trial.set_user_attr("config", {"x0": trial.params["x0"]})          # the next record: one append
    grown = (tmp_path / "journal.log").read_bytes().splitlines()
    assert len(grown) == lines + 51
    other = optuna.load_study(study_name="s", storage=open_storage(tmp_path))
    assert other.trials[0].params == trial.params
    study.tell(trial, 1.0)
    sync(storage)
    assert optuna.load_study(study_name="s", storage=open_storage(tmp_path)).trials[0].value == 1.0


def test_an_incompatible_parameter_still_raises(tmp_path):
    study = optuna.create_study(study_name="s", storage=open_storage(tmp_path))
    t = study.ask()
    t.suggest_int("x", 0, 10)
    study.tell(t, 1.0)
    t = study.ask()
    import pytest
    with pytest.raises(ValueError):
        t.suggest_categorical("x", ["a", "b"])

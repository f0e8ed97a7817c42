"""The journal: a torn last line (a writer killed mid-record) is cut before the next append,
two processes' records never interleave, and a trial's parameters are appended together."""

from __future__ import annotations

import json
import multiprocessing
import os

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


def _view(storage) -> list[tuple]:
    """Every trial of study "s" as a storage sees it (what a fresh reader must see too)."""
    study = optuna.load_study(study_name="s", storage=storage)
    return [(t.number, t.state, t.values, t.params, t.distributions, t.user_attrs, t.system_attrs)
            for t in study.get_trials(deepcopy=False)]


def _fresh(path) -> list[tuple]:
    """Optuna's own journal storage reading the file from the start: no tune code involved."""
    from optuna.storages.journal import JournalFileBackend
    return _view(optuna.storages.JournalStorage(JournalFileBackend(str(path))))


def test_this_process_sees_what_a_fresh_reader_sees(tmp_path):
    """The batched parameters are applied in place (one copy of the trial per batch) and not read
    back when nobody appended in between: the view must still equal Optuna's own replay of the
    file, and no record may be skipped (the next read starts right after this process's own)."""
    storage = open_storage(tmp_path)
    parsed = []
    parse = storage._backend._record
    storage._backend._record = lambda line, n: parsed.append(n) or parse(line, n)
    study = optuna.create_study(study_name="s", storage=storage, directions=["minimize", "minimize"])
    for i in range(4):
        trial = study.ask()
        for k in range(40):
            trial.suggest_categorical(f"c{k}", ["default", "on", "off"])
            trial.suggest_int(f"p{k}", 0, 1000, step=5)
        trial.set_user_attr("tune", {"i": i})
        study.tell(trial, [float(i), float(-i)])
    sync(storage)
    lines = len((tmp_path / "journal.log").read_bytes().splitlines())
    assert storage._replay_result.log_number_read == lines          # read up to the end
    assert len(parsed) == len(set(parsed)) == lines - 4 * 80          # own parameters never parsed back
    assert _view(storage) == _fresh(tmp_path / "journal.log")


def test_another_writers_records_between_are_read_not_skipped(tmp_path):
    """Worker A's parameters are kept while worker B appends a trial: A's append then does not
    directly follow what A read, so A reads everything back (B's trial and its own records)."""
    a = open_storage(tmp_path)
    study_a = optuna.create_study(study_name="s", storage=a)
    trial = study_a.ask()
    for k in range(10):
        trial.suggest_int(f"x{k}", 0, 10)                             # kept, not written yet
    b = open_storage(tmp_path)
    study_b = optuna.load_study(study_name="s", storage=b)
    other = study_b.ask()
    other.suggest_int("x0", 0, 10)
    study_b.tell(other, 2.0)
    sync(b)
    trial.set_user_attr("tune", {"k": 1})                             # A appends its ten params now
    study_a.tell(trial, 1.0)
    sync(a)
    fresh = _fresh(tmp_path / "journal.log")
    assert len(fresh) == 2 and _view(a) == fresh and _view(open_storage(tmp_path)) == fresh


def test_a_trial_handed_out_does_not_change_under_its_holder(tmp_path):
    """Parameters go into one copy of the trial per batch; a read ends the batch, so an object
    the storage handed out (deepcopy=False) is never written into afterwards."""
    storage = open_storage(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    trial.suggest_int("x", 0, 10)
    held = storage.get_trial(trial._trial_id)
    trial.suggest_int("y", 0, 10)
    assert set(held.params) == {"x"}
    assert set(storage.get_trial(trial._trial_id).params) == {"x", "y"}


def test_a_measurement_is_fsynced_when_told_and_a_skipped_proposal_waits_for_the_next(tmp_path, monkeypatch):
    """Every measurement is on disk before the next trial starts; a verdict that measured nothing
    (here a prune) is written at once but fsynced with the next measurement."""
    from tuner.result import TrialRecord, TrialStatus
    from tuner.studystore import StudyStore

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    study = optuna.create_study(study_name="s", storage=open_storage(tmp_path))
    store = StudyStore(study, [])
    trial = store.ask(TrialRecord(-1, TrialStatus.RUNNING))
    store.tell(trial, TrialRecord(trial.number, TrialStatus.PRUNED), None)
    assert not synced and _fresh(tmp_path / "journal.log")[0][1] == optuna.trial.TrialState.FAIL  # written
    trial = store.ask(TrialRecord(-1, TrialStatus.RUNNING))
    store.tell(trial, TrialRecord(trial.number, TrialStatus.COMPLETE, {"x": 1}, "k"), [1.0])
    assert len(synced) == 1

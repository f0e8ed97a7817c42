"""Campaigns with a real compiler and program: deduplication, resume (again, after Ctrl-C,
after kill -9), and the Pareto front. The bookkeeping alone (resume, kills at every step,
dead workers, failures) is tested on recorded measurements in test_campaign_replay.py."""

from __future__ import annotations

import csv
import json
import signal

from conftest import grid_rows, needs_gcc, wait_for, write_replay
from tuner import trials as T

TWO_BY_TWO = """
[knobs.a]
kind = "categorical"
choices = [0, 1]
define = "X"

[knobs.b]
kind = "categorical"
choices = [0, 1]
define = "Y"
"""

WIDE = """
[knobs.x]
kind = "int"
low = 0
high = 60
define = "X"

[knobs.y]
kind = "int"
low = 0
high = 60
define = "Y"
"""

FINISHED = ("complete", "failed", "infeasible", "duplicate")


def finished(recs):
    return [r for r in recs if r.status in FINISHED]


def snapshot(recs):
    return {r.number: (r.status, r.params, r.values, r.metrics) for r in finished(recs)}


@needs_gcc
def test_each_configuration_is_measured_at_most_once(lab):
    study = lab.study("dedup", TWO_BY_TWO)
    # a budget above the space's 4 points: repeats cost no trial, so the campaign ends when the
    # sampler only repeats itself (MAX_DUPLICATES_IN_A_ROW), having measured each point once
    proc = lab.ok("explore", study, "--trials", "10", "--seed", "0", "--no-progress", "--no-export")
    assert "already-measured configurations in a row (the space looks exhausted)" in proc.stderr
    recs = lab.records(study)
    measured = [r for r in recs if r.status in ("complete", "failed")]
    duplicates = [r for r in recs if r.status == "duplicate"]
    assert len(measured) == 4 and len(duplicates) >= 200 and all(d.uncounted for d in duplicates)
    assert lab.json("status", study)["finished"] == len(finished(recs)) - len(duplicates) == 4
    keys = [r.config_key for r in measured]
    assert len(set(keys)) == len(keys), "a configuration was measured twice"
    assert len({r.build_key for r in measured}) == len(measured)
    runs = lab.counter_lines("dedup", "start")
    assert len(runs) == len(set(runs)) == len(measured), runs
    first = {r.config_key: r for r in measured}
    for d in duplicates:
        prior = first[d.config_key]
        assert d.duplicate_of == prior.number and d.params == prior.params
    assert lab.json("status", study)["by_state"]["duplicate"] == len(duplicates)


def test_rerun_resumes_to_the_same_total(lab):
    study = lab.study("again", WIDE.replace("high = 60", "high = 19"), target=write_replay(lab, "rp", grid_rows(20)))
    args = ("explore", study, "--sampler", "random", "--seed", "1", "--no-progress", "--no-export")
    assert lab.fork(*args, "--trials", "3").returncode == 0
    before = snapshot(lab.records(study))
    trials = len(lab.records(study))
    assert lab.fork(*args, "--trials", "3").returncode == 0
    assert snapshot(lab.records(study)) == before and len(before) == 3
    assert len(lab.records(study)) == trials, "the second run started a trial"
    assert lab.fork(*args, "--trials", "5").returncode == 0
    after = snapshot(lab.records(study))
    assert len(after) == 5 and all(after[n] == v for n, v in before.items())


def interrupt_mid_trial(lab, study, name, trials, sig):
    """Start a slow campaign; once `done` trials finished and the next is running, send `sig`."""
    proc = lab.popen("explore", study, "--trials", trials, "--sampler", "random", "--seed", "2",
                     "--no-progress", "--no-export")
    try:
        wait_for(lambda: len(lab.counter_lines(name, "done")) >= 2 and len(lab.counter_lines(name, "start")) >= 3
                 or proc.poll() is not None, 120, "two finished trials and a third running")
        assert proc.poll() is None, f"tune ended early:\n{proc.stderr.read()}"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def check_resumed(lab, study, before, trials):
    """After a rerun: exactly `trials` finished, nothing finished before lost or changed,
    the interrupted trial marked and its configuration measured again."""
    recs = lab.records(study)
    assert len(finished(recs)) == trials
    after = snapshot(recs)
    for number, value in before.items():
        assert after.get(number) == value, f"trial {number} changed or vanished"
    interrupted = [r for r in recs if r.status == "interrupted"]
    assert len(interrupted) == 1, [(r.number, r.status) for r in recs]
    [cut] = interrupted
    retries = [r for r in recs if r.retry_of == cut.number]
    assert len(retries) == 1 and retries[0].status in FINISHED
    assert retries[0].params == cut.params
    assert T.counts(recs)["finished"] == trials      # what `tune status` reports


@needs_gcc
def test_ctrl_c_then_rerun_loses_nothing(lab):
    study = lab.study("sigint", WIDE, verify="none", args=["--sleep-ms=400"])
    rc, err = interrupt_mid_trial(lab, study, "sigint", 5, signal.SIGINT)
    assert rc == 130, err
    assert "interrupted" in err and "Traceback" not in err
    recs = lab.records(study)
    before = snapshot(recs)
    assert len(before) >= 2
    statuses = [r.status for r in recs]
    # the trial being measured is marked interrupted (a Ctrl-C in the instant between trials
    # leaves it running, which the rerun marks instead: check_resumed sees that)
    assert statuses.count("interrupted") + statuses.count("running") == 1, statuses
    lab.ok("explore", study, "--trials", "5", "--sampler", "random", "--seed", "2", "--no-progress", "--no-export")
    check_resumed(lab, study, before, 5)


@needs_gcc
def test_kill_9_then_rerun_loses_nothing(lab):
    study = lab.study("kill9", WIDE, verify="none", args=["--sleep-ms=400"])
    rc, _ = interrupt_mid_trial(lab, study, "kill9", 5, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    journal_before = lab.journal(study).read_bytes()
    recs = lab.records(study)
    before = snapshot(recs)
    assert len(before) >= 2
    assert [r.status for r in recs].count("running") == 1, "the killed trial should still look running"
    lab.ok("explore", study, "--trials", "5", "--sampler", "random", "--seed", "2", "--no-progress", "--no-export")
    check_resumed(lab, study, before, 5)
    assert lab.journal(study).read_bytes().startswith(journal_before), "the journal was rewritten"


def brute_force_front(rows, minimize, maximize):
    def dominates(a, b):
        no_worse = a[minimize] <= b[minimize] and a[maximize] >= b[maximize]
        better = a[minimize] < b[minimize] or a[maximize] > b[maximize]
        return no_worse and better
    return {r["trial"] for r in rows if not any(dominates(o, r) for o in rows)}


@needs_gcc
def test_pareto_is_the_non_dominated_set_of_exported_trials(lab):
    small = WIDE.replace("high = 60", "high = 4")
    study = lab.study("front", small, verify="none")
    lab.ok("explore", study, "--trials", "8", "--sampler", "random", "--seed", "4", "--no-progress", "--no-export")
    out = lab.root / "export"
    lab.ok("export", study, "--out", out)
    with open(out / "trials.csv") as f:
        rows = [{"trial": int(r["trial"]), "cost": float(r["cost"]), "gain": float(r["gain"])}
                for r in csv.DictReader(f) if r["state"] == "COMPLETE"]
    assert len(rows) >= 3
    front = lab.json("pareto", study)
    assert {p["trial"] for p in front} == brute_force_front(rows, "cost", "gain")
    by_trial = {r["trial"]: r for r in rows}
    for p in front:
        assert p["values"] == {"cost": by_trial[p["trial"]]["cost"], "gain": by_trial[p["trial"]]["gain"]}
    assert json.loads((out / "pareto.json").read_text()) == front


def test_a_torn_journal_line_from_a_kill_does_not_break_resume(lab):
    """kill -9 during a journal write leaves a partial last line; resuming must still work."""
    study = lab.study("torn", WIDE.replace("high = 60", "high = 19"), verify="none",
                      target=write_replay(lab, "rp", grid_rows(20)))
    args = ("explore", study, "--sampler", "random", "--seed", "5", "--no-progress", "--no-export")
    assert lab.fork(*args, "--trials", "2").returncode == 0
    before = snapshot(lab.records(study))
    with open(lab.journal(study), "ab") as f:
        f.write(b'{"op_code":5,"worker_id":"dead","trial_id":1,"us')   # cut mid-record
    assert snapshot(lab.records(study)) == before
    assert lab.fork(*args, "--trials", "3").returncode == 0
    recs = lab.records(study)
    after = snapshot(recs)
    assert len(after) == 3 and all(after[n] == v for n, v in before.items())
    assert T.counts(recs)["finished"] == 3

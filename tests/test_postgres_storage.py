"""One campaign, several workers: a real PostgreSQL server (and the journal file) shared by
concurrent `tune explore` processes.

Every test starts `tune` as separate processes on one study: they must finish the budget
exactly (a worker checks the count before asking and again after, so of two that ask at
once one backs off: `Campaign._claim`), measure every configuration once (finished trials
are learnt from the storage each iteration, running ones too), share the work, and survive
a `kill -9` of one of them (the other takes the dead worker's trial back and finishes; on
another machine, PostgreSQL workers do so through Optuna's heartbeat).
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

import pytest

from conftest import needs_gcc, wait_for
from pg_fixture import pg_server  # noqa: F401  (a fixture)
from tuner import trials as T

SPACE = """
[knobs.x]
kind = "int"
low = 0
high = 40
define = "X"

[knobs.y]
kind = "int"
low = 0
high = 40
define = "Y"
"""

N = 12
FINISHED = ("complete", "failed", "infeasible", "duplicate", "pruned")


def records(lab, study, url):
    from tuner.studystore import open_study
    from tuner.study import load_study

    spec = load_study(str(study))
    s = open_study(spec, lab.root / "results" / spec.name, url, create=False)
    return T.records(s, spec.objectives)


def storage_args(url):
    return ("--storage", url) if url else ()


def slow_study(lab, name):
    """0.3 s per run, no -O0 reference run, a baseline (which both workers enqueue)."""
    return lab.study(name, SPACE, verify="none", args=["--sleep-ms=300"], meta="baseline = { x = 1, y = 1 }")


def explore(lab, study, url, *extra):
    return lab.popen("explore", study, "--trials", N, "--surrogate", "off", "--no-progress", "--no-export",
                     *storage_args(url), *extra)


def communicate(procs, timeout=180):
    out = []
    for p in procs:
        try:
            o, e = p.communicate(timeout=timeout)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        out.append((p.returncode, o, e))
    return out


def check_shared(lab, name, recs, pids, cut=0):
    """N finished, every measurement by exactly one of `pids`, no configuration measured twice
    (`cut`: runs a killed worker may have started but never recorded)."""
    finished = [r for r in recs if r.finished]          # duplicates and skipped proposals do not count
    assert len(finished) == N, Counter(r.status for r in recs)
    assert T.counts(recs)["finished"] == N
    measured = [r for r in recs if r.status in ("complete", "failed", "infeasible")]
    keys = [r.config_key for r in measured]
    assert len(keys) == len(set(keys)), "a configuration was measured twice"
    workers = Counter(r.worker.rpartition(":")[2] for r in finished)
    assert set(workers) <= {str(p) for p in pids}, workers
    runs = lab.counter_lines(name, "start")            # what the program saw: one run per measurement
    # (plus the killed run, whose configuration is measured again: `cut`)
    assert len(set(runs)) >= len(runs) - cut and len(measured) <= len(runs) <= len(measured) + cut, runs
    for d in (r for r in recs if r.status == "duplicate"):
        assert d.duplicate_of in {m.number for m in measured} and d.params == \
            next(m.params for m in measured if m.number == d.duplicate_of)
    return Counter(r.worker.rpartition(":")[2] for r in measured)


# --- (a) a campaign in PostgreSQL, read back by status and pareto ------------------------
def test_explore_status_pareto_on_postgres(lab, pg_server):
    """The storage plumbing, on recorded measurements (replay target, `tune` forked)."""
    from conftest import grid_rows, write_replay

    url = pg_server.database()
    study = lab.study("pg", SPACE.replace("high = 40", "high = 19"), target=write_replay(lab, "rp", grid_rows(20)))

    def ok(*args):
        proc = lab.fork(*args)
        assert proc.returncode == 0, proc.stderr
        return proc

    proc = ok("explore", study, "--trials", 5, "--seed", 3, "--no-progress", "--no-export", "--storage", url)
    assert "5 trials finished" in proc.stdout
    assert not (lab.root / "results" / "pg" / "journal.log").exists(), "wrote a journal next to the database"
    status = json.loads(ok("status", study, "--storage", url, "--format", "json").stdout)
    assert status["finished"] == 5
    front = json.loads(ok("pareto", study, "--storage", url, "--format", "json").stdout)
    recs = records(lab, study, url)
    complete = [r for r in recs if r.status == "complete"]
    assert front and {p["trial"] for p in front} <= {r.number for r in complete}
    # the same study name in an empty database is not there: status says so
    other = pg_server.database()
    bad = lab.fork("status", study, "--storage", other)
    assert bad.returncode != 0 and "no study 'pg'" in bad.stderr and "Traceback" not in bad.stderr
    # resuming from the database continues to the new total
    ok("explore", study, "--trials", 7, "--seed", 3, "--no-progress", "--no-export", "--storage", url)
    assert json.loads(ok("status", study, "--storage", url, "--format", "json").stdout)["finished"] == 7


# --- (b, d) two workers at once, on PostgreSQL and on the journal file -------------------
@needs_gcc
@pytest.mark.parametrize("backend", ["postgres", "journal"])
def test_two_workers_share_one_campaign(lab, request, backend):
    url = request.getfixturevalue("pg_server").database() if backend == "postgres" else None
    name = f"two-{backend}"
    study = slow_study(lab, name)
    procs = [explore(lab, study, url) for _ in range(2)]
    t0 = time.monotonic()
    results = communicate(procs)
    wall = time.monotonic() - t0
    for rc, _, err in results:
        assert rc == 0 and "Traceback" not in err, err
    recs = records(lab, study, url)
    by_worker = check_shared(lab, name, recs, [p.pid for p in procs])
    assert len(by_worker) == 2 and min(by_worker.values()) >= 2, f"one worker did (nearly) all: {by_worker}"
    baseline = [r for r in recs if r.baseline and r.status == "complete"]
    assert len(baseline) == 1, "the baseline should be measured once even though both workers enqueued it"
    status = lab.json("status", study, *storage_args(url))
    assert status["finished"] == N and "running" not in status["by_state"] and "waiting" not in status["by_state"]
    print(f"{backend}: {N} trials by two workers in {wall:.1f}s, per worker {dict(by_worker)}, "
          f"states {dict(Counter(r.status for r in recs))}")


# --- (c) kill -9 of one worker: the other finishes, a rerun recovers ---------------------
def running_trial_of(lab, study, url, pid):
    return [r for r in records(lab, study, url) if r.status == "running" and r.worker.endswith(f":{pid}")
            and r.config_key]


@needs_gcc
@pytest.mark.parametrize("backend", ["postgres", "journal"])
def test_kill_9_of_one_worker(lab, request, backend):
    url = request.getfixturevalue("pg_server").database() if backend == "postgres" else None
    name = f"kill-{backend}"
    study = slow_study(lab, name)
    victim, survivor = explore(lab, study, url), explore(lab, study, url)
    try:
        def victim_mid_trial():
            try:
                recs = records(lab, study, url)
            except KeyError:       # the study is not created yet
                return False
            done = [r for r in recs if r.status in FINISHED]
            return len(done) >= 3 and running_trial_of(lab, study, url, victim.pid) or victim.poll() is not None
        wait_for(victim_mid_trial, 120, "three finished trials and the victim measuring")
        assert victim.poll() is None, victim.stderr.read()
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    [(rc, _, err)] = communicate([survivor])
    assert rc == 0 and "Traceback" not in err, err
    recs = records(lab, study, url)
    # the survivor saw the victim's pid gone: it marked the trial interrupted and measured its
    # configuration again, and still finished the budget exactly. Under load the victim may
    # have told its trial between the test's look and the kill: then nothing was cut.
    cuts = [r for r in recs if r.status == "interrupted"]
    assert len(cuts) <= 1, Counter(r.status for r in recs)
    for cut in cuts:
        assert cut.worker.endswith(f":{victim.pid}") and cut.detail == "its process died"
        retries = [r for r in recs if r.retry_of == cut.number]
        assert len(retries) == 1 and retries[0].status in FINISHED and retries[0].params == cut.params
        assert retries[0].worker.endswith(f":{survivor.pid}")
    check_shared(lab, name, recs, [victim.pid, survivor.pid], cut=1)
    status = lab.json("status", study, *storage_args(url))
    assert status["finished"] == N and status["by_state"].get("interrupted", 0) == len(cuts)
    assert "running" not in status["by_state"] and "waiting" not in status["by_state"]
    # a rerun has nothing left to do
    runs = len(lab.counter_lines(name, "start"))
    rerun = lab.ok("explore", study, "--trials", N, "--surrogate", "off", "--no-progress", "--no-export",
                   *storage_args(url))
    assert f"{N} trials finished" in rerun.stdout and len(lab.counter_lines(name, "start")) == runs


def test_pg_fixture_runs_as_root_in_ci(pg_server):
    """Not a skip in CI: the server answers SQL."""
    import psycopg

    url = pg_server.database().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    assert json.dumps(url)


# --- (e) a worker on another machine dies: Optuna's heartbeat hands its trial back -----------
@pytest.mark.parametrize("step", ["evaluate", "created"])
def test_another_machines_dead_worker_is_recovered_through_the_heartbeat(lab, pg_server, step):
    """A worker 'on another machine' (TUNE_HOST) is killed mid-trial ("evaluate": it has been
    beating) or right after creating its trial ("created": before its first heartbeat, which
    Optuna's fail_stale_trials cannot see). A worker here takes the trial back after the grace
    period (4 heartbeats of 1 s) and finishes exactly N. Replay target: no compiler needed."""
    from conftest import grid_rows, write_replay

    url = pg_server.database()
    write_replay(lab, "rp", grid_rows(8))
    study = lab.study("hb", SPACE.replace("high = 40", "high = 7"), target="rp")
    args = ("explore", study, "--trials", 5, "--sampler", "random", "--seed", 1, "--no-export", "--storage", url)
    fast = {"TUNE_HEARTBEAT_S": "1"}
    dead = lab.fork(*args, env={**fast, "TUNE_HOST": "elsewhere", "TUNE_FAULT": f"{step}:2"})
    assert dead.returncode == -signal.SIGKILL, dead.stderr
    [running] = [r for r in records(lab, study, url) if r.status == "running"]
    assert running.worker.startswith("elsewhere:")
    t0 = time.monotonic()
    done = lab.fork(*args, env=fast)
    assert done.returncode == 0, done.stderr
    recs = records(lab, study, url)
    assert T.counts(recs)["finished"] == 5 and "running" not in {r.status for r in recs}
    [cut] = [r for r in recs if r.status == "interrupted"]
    assert cut.number == running.number
    if step == "evaluate":       # its configuration was stored: measured again here
        assert [r.retry_of for r in recs if r.retry_of is not None] == [cut.number]
    assert time.monotonic() - t0 < 60

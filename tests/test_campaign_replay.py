"""The campaign's bookkeeping on the replay target (recorded measurements, no compiler):
resume, deduplication, kills at every step of a trial's life, dead workers, systematic failure,
machine faults, old journals. Each `tune` runs in a forked child (`Lab.fork`): real signals,
milliseconds per campaign."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from conftest import GRID_XY, grid_rows, write_replay
from tuner import faultpoint
from tuner import trials as T
from tuner.result import TrialStatus

pytestmark = pytest.mark.fast

TWO_BY_TWO = GRID_XY.replace("high = 19", "high = 1")


@pytest.fixture
def replay(lab):
    write_replay(lab, "rp", grid_rows(20))
    return lab


def explore(lab, study, trials, *more, env=None, seed=7, sampler="random"):
    return lab.fork("explore", study, "--trials", trials, "--seed", seed, "--sampler", sampler,
                    "--no-export", *more, env=env)


def snapshot(recs):
    return {r.number: (r.status, dict(r.config), dict(r.values), dict(r.metrics)) for r in recs if r.finished}


def configs(recs):
    return [r.config_key for r in recs if r.status.measured]


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_resume_continues_the_search_like_an_uninterrupted_run(replay, sampler):
    """--trials 4 then --trials 8 with one seed: the same 8 distinct configurations as one run of 8."""
    whole = replay.study("whole", GRID_XY, target="rp")
    parts = replay.study("parts", GRID_XY, target="rp")
    assert explore(replay, whole, 8, sampler=sampler).returncode == 0
    assert explore(replay, parts, 4, sampler=sampler).returncode == 0
    second = explore(replay, parts, 8, sampler=sampler)
    assert second.returncode == 0, second.stderr
    one, two = replay.records(whole), replay.records(parts)
    assert len(set(configs(two))) == 8 and configs(two) == configs(one)
    assert not [r for r in two if r.status == TrialStatus.DUPLICATE]
    progress = [ln for ln in second.stderr.splitlines() if ln.startswith("[")]
    assert progress[0].startswith("[5/8] trial 4:") and progress[-1].startswith("[8/8] trial 7:"), progress


def test_each_configuration_is_measured_once(replay):
    study = replay.study("dedup", TWO_BY_TWO, target="rp")
    assert explore(replay, study, 10).returncode == 0
    recs = replay.records(study)
    measured = [r for r in recs if r.status.measured]
    dups = [r for r in recs if r.status == TrialStatus.DUPLICATE]
    assert len(measured) == 4 and len(dups) >= 200 and len(set(configs(recs))) == 4
    first = {r.config_key: r.number for r in measured}
    assert all(d.duplicate_of == first[d.config_key] for d in dups)
    assert T.counts(recs)["finished"] == 4           # repeats are not counted (#10 item 2)


# the steps at which a configuration is already stored, so the killed trial is retried
RETRIED = {"record", "evaluate", "built", "ran", "tell", "told-record", "told-constraint"}


@pytest.mark.parametrize("step", faultpoint.STEPS)
def test_a_kill_at_any_step_then_the_same_command_finishes_exactly_n(replay, step):
    study = replay.study("kill", GRID_XY, target="rp", meta='baseline = { x = 1 }')
    killed = explore(replay, study, 6, env={"TUNE_FAULT": f"{step}:3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    before = replay.records(study)
    kept = snapshot(before)
    assert len(kept) == (3 if step == "told" else 2), [(r.number, r.status) for r in before]
    again = explore(replay, study, 6)
    assert again.returncode == 0, again.stderr
    recs = replay.records(study)
    assert T.counts(recs)["finished"] == 6
    assert not [r for r in recs if r.status == TrialStatus.RUNNING], "a trial stayed running"
    assert all(snapshot(recs)[n] == v for n, v in kept.items()), "a finished trial changed"
    assert len(set(configs(recs))) == len(configs(recs)), "a configuration was measured twice"
    cut = [r for r in recs if r.status == TrialStatus.INTERRUPTED]
    if step == "told":
        assert not cut
        return
    assert len(cut) == 1 and cut[0].detail == "its process died"
    retries = [r for r in recs if r.retry_of == cut[0].number]
    if step in RETRIED:
        assert len(retries) == 1 and retries[0].finished and retries[0].config == cut[0].config
    else:
        assert not retries and not cut[0].config_key, "a trial without a stored configuration is not retried"


@pytest.mark.slow
def test_a_dead_worker_on_another_machine_is_recovered_after_its_lease(replay):
    """Journal: a worker on 'another machine' dies mid-trial; a worker here waits out the lease
    (4 heartbeats) and takes the trial back, then finishes exactly N."""
    study = replay.study("lease", GRID_XY, target="rp")
    fast = {"TUNE_HEARTBEAT_S": "1"}
    dead = explore(replay, study, 5, env={**fast, "TUNE_HOST": "elsewhere", "TUNE_FAULT": "evaluate:2"})
    assert dead.returncode == -signal.SIGKILL
    [running] = [r for r in replay.records(study) if r.status == TrialStatus.RUNNING]
    assert running.worker.startswith("elsewhere:") and running.lease is not None
    done = explore(replay, study, 5, env=fast)
    assert done.returncode == 0, done.stderr
    recs = replay.records(study)
    assert T.counts(recs)["finished"] == 5 and not [r for r in recs if r.status == TrialStatus.RUNNING]
    assert [r.retry_of for r in recs if r.retry_of is not None] == [running.number]


@pytest.mark.slow
def test_a_live_worker_on_another_machine_is_waited_for_not_taken_over(replay):
    """Another machine's worker measures for longer than the grace period, renewing its lease:
    a worker here waits for it (the budget is N) instead of taking the trial over."""
    import subprocess
    import sys

    from conftest import wait_for

    write_replay(replay, "long", grid_rows(4), run_ms=5500)     # longer than the 4 s grace
    study = replay.study("alive", GRID_XY.replace("high = 19", "high = 3"), target="long")
    env = {**replay.env(), "TUNE_HEARTBEAT_S": "1"}
    there = subprocess.Popen([sys.executable, "-m", "tuner", "explore", str(study), "--trials", "1",
                              "--no-export", "--no-progress"], cwd=replay.root, stderr=subprocess.PIPE,
                             text=True, env={**env, "TUNE_HOST": "elsewhere"})
    try:
        wait_for(lambda: replay.journal(study).exists() and any(
            r.status == TrialStatus.RUNNING for r in replay.records(study)), 60, "the other machine's trial")
        here = replay.fork("explore", study, "--trials", "1", "--no-export", env={"TUNE_HEARTBEAT_S": "1"})
    finally:
        _, err = there.communicate(timeout=60)
    assert there.returncode == 0, err
    assert here.returncode == 0 and "waiting: 0 trials finished" in here.stderr, here.stderr
    recs = replay.records(study)
    assert [r.status for r in recs] == [TrialStatus.COMPLETE] and recs[0].worker.startswith("elsewhere:")


@pytest.mark.slow
def test_the_same_configuration_is_not_measured_by_two_workers(replay):
    """Three workers at once on one journal: exactly N finished, no configuration measured twice."""
    import subprocess
    import sys

    # 150 ms a run: one worker's 12 trials outlast the others' start-up on a loaded machine
    write_replay(replay, "slow", grid_rows(4), run_ms=150)
    study = replay.study("shared", GRID_XY.replace("high = 19", "high = 3"), target="slow")
    procs = [subprocess.Popen([sys.executable, "-m", "tuner", "explore", str(study), "--trials", "12",
                               "--sampler", "random", "--seed", str(i), "--no-export", "--no-progress"],
                              cwd=replay.root, env=replay.env(), stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    recs = replay.records(study)
    assert T.counts(recs)["finished"] == 12
    assert len(set(configs(recs))) == len(configs(recs))
    assert len({r.worker for r in recs if r.finished}) >= 2


def test_a_failing_baseline_stops_the_campaign(lab):
    write_replay(lab, "bl", grid_rows(20, fail=lambda x, y: ("crash", "segfault in init\nexit 139")
                                        if (x, y) == (2, 0) else None))
    study = lab.study("bl", GRID_XY, target="bl", meta='baseline = { x = 2 }')
    proc = explore(lab, study, 10)
    assert proc.returncode == 1
    assert "the baseline (trial 0) failed: crash" in proc.stderr and "exit 139" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert T.counts(lab.records(study))["finished"] == 1


def test_five_failures_alike_stop_the_campaign_and_status_names_the_cause(lab):
    message = "/usr/bin/ld: kernel.o: undefined reference to symbol 'sqrt@@GLIBC_2.2.5'"
    write_replay(lab, "nolm", grid_rows(20, fail=lambda x, y: ("compile_error", f"collect2: note\n{message}")))
    study = lab.study("nolm", GRID_XY, target="nolm")
    proc = explore(lab, study, 100)
    assert proc.returncode == 1, proc.stderr
    assert "the first 5 measured trials all failed: compile_error" in proc.stderr and message in proc.stderr
    assert T.counts(lab.records(study))["finished"] == 5
    status = lab.fork("status", study)
    assert f"most common failure (5 trials, compile_error, last in trial 4): {message}" in status.stdout
    doc = __import__("json").loads(lab.fork("status", study, "--format", "json").stdout)
    assert doc["most_common_failure"] == {"reason": "compile_error", "message": message, "trials": 5, "last_trial": 4}


def test_failures_that_differ_do_not_stop_the_campaign(lab):
    write_replay(lab, "mixed", grid_rows(20, fail=lambda x, y: ("crash" if x % 2 else "timeout", "boom")))
    study = lab.study("mixed", GRID_XY, target="mixed")
    proc = explore(lab, study, 8)
    assert proc.returncode == 0, proc.stderr
    assert T.counts(lab.records(study))["finished"] == 8


def test_a_journal_of_schema_1_resumes(lab):
    """The old journal (tests/data/journal_v1) is resumed by today's campaign: its dead RUNNING
    trial (another machine's, long ago) is recovered, its queued trial runs, its interrupted
    trial's configuration is retried, and the campaign ends at exactly N."""
    rows = [{"param.x": x, "param.y": y, "metric.latency_ms": 1.0 + x + 0.5 * y,
             "metric.binary_bytes": 1000.0 - 10 * x + y} for x in range(10) for y in range(10)]
    write_replay(lab, "v1", rows)
    replay = lab
    study = lab.study("study", GRID_XY.replace("high = 19", "high = 9"), target="v1",
                      objectives=("latency_ms", "binary_bytes"))
    out = replay.root / "results" / "study"
    out.mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "data" / "journal_v1" / "journal.log", out / "journal.log")
    before = snapshot(replay.records(study))
    proc = explore(replay, study, 14)
    assert proc.returncode == 0, proc.stderr
    recs = replay.records(study)
    assert T.counts(recs)["finished"] == 14, proc.stderr
    assert all(snapshot(recs)[n] == v for n, v in before.items())
    by_number = {r.number: r for r in recs}
    assert by_number[10].status == TrialStatus.INTERRUPTED and by_number[11].status.finished
    assert any(r.retry_of == 9 and r.finished for r in recs)


def test_a_machine_fault_stops_the_campaign_and_its_trial_is_retried(replay, monkeypatch):
    """A full disk during a build (MachineFault, raised by the target) is not the configuration's
    fault: the trial is recorded interrupted, the campaign stops with one line naming the path
    (exit 1), the journal stays loadable, and the next run measures that configuration."""
    from tuner.errors import MachineFault
    from tuner.targets.replay import ReplayTarget

    study = replay.study("full", GRID_XY, target="rp")
    calls = {"n": 0}
    real_run = ReplayTarget.run

    def run(self, *args, **kwargs):
        calls["n"] += not kwargs.get("reference")
        if calls["n"] == 3:
            raise MachineFault("No space left on device", replay.root / "results" / "full" / "builds")
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(ReplayTarget, "run", run)       # inherited by the forked `tune`
    proc = explore(replay, study, 6)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[-1] == f"tune: failed: {replay.root}/results/full/builds: No space left on device"
    recs = replay.records(study)
    [cut] = [r for r in recs if r.status == TrialStatus.INTERRUPTED]
    assert "No space left on device" in cut.detail and cut.config_key
    assert T.counts(recs)["finished"] == 2 and not T.counts(recs)["failures_by_reason"]
    monkeypatch.setattr(ReplayTarget, "run", real_run)
    again = explore(replay, study, 6)
    assert again.returncode == 0, again.stderr
    recs = replay.records(study)
    assert T.counts(recs)["finished"] == 6
    assert [r.config for r in recs if r.retry_of == cut.number] == [cut.config]


def test_ctrl_c_records_the_trial_interrupted_and_a_rerun_retries_it(replay, monkeypatch):
    from tuner.targets.replay import ReplayTarget

    study = replay.study("ctrlc", GRID_XY, target="rp")
    calls = {"n": 0}
    real_run = ReplayTarget.run

    def run(self, *args, **kwargs):
        calls["n"] += not kwargs.get("reference")
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(ReplayTarget, "run", run)
    proc = explore(replay, study, 4)
    assert proc.returncode == 130 and "run the same command to resume" in proc.stderr
    [cut] = [r for r in replay.records(study) if r.status == TrialStatus.INTERRUPTED]
    assert cut.detail == "stopped by the user"
    monkeypatch.setattr(ReplayTarget, "run", real_run)
    assert explore(replay, study, 4).returncode == 0
    recs = replay.records(study)
    assert T.counts(recs)["finished"] == 4 and [r.retry_of for r in recs if r.retry_of is not None] == [cut.number]


def test_two_workers_reaching_for_the_baseline_at_once_one_withdraws(replay):
    """Two workers start together and both ask for the baseline before either has looked: the
    one that asked second sees the other's trial at its second look and gives its own back as
    `withdrawn` (not `interrupted`: nothing was stopped, nothing is retried, and `tune status`
    must not report a lost measurement)."""
    from tuner.campaign import Options
    from tuner.engine import start
    from tuner.outcomes import judge
    from tuner.study import load_study
    from tuner.targets import load_target, make_target

    path = replay.study("race", GRID_XY, target="rp", meta="baseline = { x = 3, y = 4 }")
    spec = load_study(str(path))
    out = replay.root / "results" / spec.name
    opts = Options(trials=5, sampler="random", seed=1, results_dir=out, progress=False)
    first, second = (start(spec, make_target(load_target("rp"), out / "builds"), opts) for _ in range(2))
    proposals = [c.proposals.next(c.history) for c in (first, second)]    # both before either asks
    assert all(p is not None and p.record.baseline for p in proposals)
    asked = [c._ask(p, None) for c, p in zip((first, second), proposals)]
    assert first._claim(*asked[0])            # asked first: it has the configuration
    # and looks for a duplicate before the second has claimed: the second's trial is running
    # with the same configuration, but asked later, so it is the one to back off (counting it
    # left the baseline to nobody: CI, two workers on one journal)
    trial, base, _ = asked[0]
    assert first._prior(trial, base.config_key, stored_at_ask=True) is None
    assert not second._claim(*asked[1])       # asked second: it withdraws
    recs = {r.number: r for r in replay.records(path)}
    gave_back = recs[asked[1][0].number]
    assert gave_back.status == TrialStatus.WITHDRAWN and not gave_back.finished
    assert gave_back.config_key == "" and not gave_back.baseline and "same configuration" in gave_back.detail
    assert recs[asked[0][0].number].status == TrialStatus.RUNNING
    # the first worker measures the baseline
    first._tell(trial, judge(first._evaluate(trial, base, base.config), base, first.history), 0.0)
    # the next run ends at exactly N, the withdrawn trial neither counted nor retried
    done = explore(replay, path, 5)
    assert done.returncode == 0, done.stderr
    after = replay.records(path)
    assert T.counts(after)["finished"] == 5
    assert T.counts(after)["by_state"].get("withdrawn") == 1
    assert not [r for r in after if r.retry_of == gave_back.number]


def _two_workers(replay, name):
    """Two campaigns on one journal, as two workers would be (one process: the test orders their steps)."""
    from tuner.campaign import Options
    from tuner.engine import start
    from tuner.study import load_study
    from tuner.targets import load_target, make_target

    path = replay.study(name, GRID_XY, target="rp")
    spec = load_study(str(path))
    out = replay.root / "results" / spec.name
    opts = Options(trials=5, sampler="random", seed=1, results_dir=out, progress=False)
    return path, [start(spec, make_target(load_target("rp"), out / "builds"), opts) for _ in range(2)]


def _pick(campaign, config):
    """A trial that drew `config` (not fixed at ask), its record written as the loop writes it."""
    from dataclasses import replace

    from tuner.space import config_key

    trial, base, fixed = campaign._ask(None, None)
    assert not fixed
    base = replace(base, config=dict(config), config_key=config_key(config))
    campaign.store.write(trial, base)
    return trial, base


def test_two_workers_drawing_one_configuration_at_once_the_first_measures_it(replay):
    """Each worker writes its record, then looks. When both see the other, the trial asked
    first measures and the later one is its duplicate; the first cannot tell whether the later
    one saw it (if it looked before the first's record was written it measures), so it waits for
    the later trial's end instead of guessing: never neither (both backing off left a
    configuration to nobody), never both."""
    import threading

    from tuner.outcomes import duplicate

    _, (first, second) = _two_workers(replay, "drawn")
    config = {"x": 3, "y": 4}
    t1, b1 = _pick(first, config)
    t2, b2 = _pick(second, config)
    got: list = []
    waiting = threading.Thread(target=lambda: got.append(first._prior(t1, b1.config_key)))
    waiting.start()
    waiting.join(1.0)
    assert waiting.is_alive() and not got, "the first decided before the later trial's end"
    prior = second._prior(t2, b2.config_key)      # the later one sees the first: its duplicate
    assert prior is not None and prior.number == t1.number
    second._tell(t2, duplicate(b2, prior, second.history), 0.0)
    waiting.join(10.0)
    assert got == [None], "the first must measure it once the later one backed off"


def test_a_later_trial_that_measured_first_makes_the_earlier_its_duplicate(replay):
    """The other outcome of the same race: the later trial looked before the earlier one's
    record was written, saw nothing, and measured; the earlier one waits and is its duplicate."""
    import threading
    from dataclasses import replace

    from tuner.outcomes import judge
    from tuner.space import config_key

    _, (first, second) = _two_workers(replay, "drawn2")
    config = {"x": 5, "y": 6}
    t1, b1, _ = first._ask(None, None)            # asked first, its configuration not yet written
    t2, b2 = _pick(second, config)
    assert second._prior(t2, b2.config_key) is None          # sees no one: measures
    b1 = replace(b1, config=dict(config), config_key=config_key(config))
    first.store.write(t1, b1)
    got: list = []
    waiting = threading.Thread(target=lambda: got.append(first._prior(t1, b1.config_key)))
    waiting.start()
    waiting.join(1.0)
    assert waiting.is_alive() and not got, "the first decided before the later trial's end"
    second._tell(t2, judge(second._evaluate(t2, b2, config), b2, second.history), 0.0)
    waiting.join(10.0)
    assert len(got) == 1 and got[0] is not None and got[0].number == t2.number

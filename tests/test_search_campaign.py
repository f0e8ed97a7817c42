"""Search features of the campaign, on recorded measurements (the replay target): declared
constraints cost no trial (#10 item 1), and the obvious points come right after the baseline
(#10 item 3)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import GRID_XY, grid_rows, needs_gcc, write_replay


def test_declared_constraints_cost_no_trial(lab):
    target = write_replay(lab, "grid", grid_rows(20))
    study = lab.study("cons", GRID_XY, target=target, constraints=["x + y <= 6"])
    proc = lab.fork("explore", study, "--trials", "12", "--sampler", "random", "--seed", "3", "--no-export")
    assert proc.returncode == 0, proc.stderr
    recs = lab.records(study)
    counted = [r for r in recs if r.finished]
    resampled = [r for r in recs if r.resampled]
    assert len(counted) == 12 and len(resampled) > 20            # 28 of 400 points are feasible
    assert all(r.config["x"] + r.config["y"] <= 6 for r in counted if r.status != "duplicate")
    assert all(r.status == "infeasible" and "violates x + y <= 6" in r.detail and not r.build_key
               for r in resampled)
    assert "resampled (violates x + y <= 6; not counted)" in proc.stderr
    status = lab.json("status", study)
    assert status["finished"] == 12


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_tiny_feasible_region_stops_with_a_clear_message(lab, jobs):
    """The one loop and --jobs stop alike, with the same message (tuner.campaign.Resamples)."""
    target = write_replay(lab, "grid2", grid_rows(20))
    # feasible, so the study loads (the satisfiability check samples 2000 points), but rarely hit
    study = lab.study("tiny", GRID_XY, target=target, constraints=["x == 19 and y == 19"])
    proc = lab.fork("explore", study, "--trials", "5", "--sampler", "random", "--seed", "1", "--no-export",
                    "--no-progress", "--jobs", jobs)
    assert proc.returncode == 1, proc.stderr
    assert ("the sampler proposed 200 configurations in a row that break the declared constraints "
            "(200 broke 'x == 19 and y == 19'): the feasible region looks tiny; loosen the constraints "
            "or narrow the knobs' ranges (e.g. divisor knobs for tiles)") in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sum(r.finished for r in lab.records(study)) <= 1


LEVELS = """
[knobs.opt_level]
kind = "categorical"
choices = ["-O1", "-O2", "-O3", "-Os"]
to = "none"

[knobs.march]
kind = "categorical"
choices = ["", "-march=native", "-march=k8"]
to = "none"

[knobs.x]
kind = "int"
low = 0
high = 3
define = "X"
"""


def level_rows():
    rows = []
    for lv in ("-O1", "-O2", "-O3", "-Os"):
        for m in ("", "-march=native", "-march=k8"):
            for x in range(4):
                rows.append({"param.opt_level": lv, "param.march": m, "param.x": x,
                             "metric.cost": 10 - x - (2 if m.endswith("native") else 0), "metric.gain": 1,
                             "state": "COMPLETE"})
    return rows


def test_the_obvious_points_follow_the_baseline(lab):
    target = write_replay(lab, "levels", level_rows())
    study = lab.study("obv", LEVELS, target=target, meta='baseline = { opt_level = "-O3" }')
    proc = lab.fork("explore", study, "--trials", "8", "--sampler", "random", "--seed", "0", "--no-export",
                    "--no-progress")
    assert proc.returncode == 0, proc.stderr
    recs = sorted(lab.records(study), key=lambda r: r.number)
    first = [(r.config["opt_level"], r.config["march"], r.config["x"]) for r in recs[:4]]
    assert first == [("-O3", "", 0), ("-O2", "", 0), ("-Os", "", 0), ("-O3", "-march=native", 0)]
    assert recs[0].baseline and not any(r.baseline for r in recs[1:])


def test_declared_seeds_replace_the_derived_ones(lab):
    target = write_replay(lab, "levels2", level_rows())
    study = lab.study("decl", LEVELS, target=target,
                      meta='baseline = { opt_level = "-O3" }\nseeds = [{ opt_level = "-O1", x = 3 }]')
    assert lab.fork("explore", study, "--trials", "3", "--sampler", "random", "--seed", "0",
                    "--no-export", "--no-progress").returncode == 0
    recs = sorted(lab.records(study), key=lambda r: r.number)
    assert (recs[1].config["opt_level"], recs[1].config["x"]) == ("-O1", 3)
    bad = lab.study("decl_bad", LEVELS, target=target, meta='seeds = [{ opt_level = "-O9" }]')
    proc = lab.fork("explore", bad, "--trials", "1", "--no-export", "--no-progress")
    assert proc.returncode == 2 and "study.seeds[0]" in proc.stderr


def test_no_seeds_leaves_it_to_the_sampler(lab):
    target = write_replay(lab, "levels3", level_rows())
    study = lab.study("noseed", LEVELS, target=target, meta='baseline = { opt_level = "-O3" }')
    assert lab.fork("explore", study, "--trials", "4", "--sampler", "grid", "--no-seeds", "--no-export",
                    "--no-progress").returncode == 0
    recs = sorted(lab.records(study), key=lambda r: r.number)
    assert recs[0].baseline and [r.config["opt_level"] for r in recs[1:4]] != ["-O2", "-Os", "-O3"]


# --- --jobs N -----------------------------------------------------------------------------------
XY = """
[knobs.x]
kind = "int"
low = 0
high = 9
define = "X"

[knobs.y]
kind = "int"
low = 0
high = 9
define = "Y"
"""


SLOW_CC = """#!/bin/sh
# gcc, a little slower, noting when it compiles the study's kernel (not the target's probe)
case "$*" in *kernel.c*) echo "build-start $$ $(date +%s.%N)" >> "{log}"; sleep 0.4;; esac
gcc "$@"; rc=$?
case "$*" in *kernel.c*) echo "build-end $$ $(date +%s.%N)" >> "{log}";; esac
exit $rc
"""


def build_intervals(log) -> list[tuple[float, float]]:
    starts, spans = {}, []
    for line in log.read_text().splitlines():
        what, pid, at = line.split()
        if what == "build-start":
            starts[pid] = float(at)
        else:
            spans.append((starts.pop(pid), float(at)))
    return spans


@needs_gcc
def test_jobs_overlap_builds_but_never_measure_two_runs_at_once_on_one_core(lab):
    log = lab.root / "builds.log"
    cc = lab.root / "slowcc"
    cc.write_text(SLOW_CC.format(log=log))
    cc.chmod(0o755)
    (lab.root / "targets" / "slowcc.toml").write_text(
        (lab.root / "targets" / "fast.toml").read_text().replace('cc = "gcc"', f'cc = "{cc}"'))
    # a timed objective: would-be front points are confirmed by paired launches against the
    # baseline (tuner.measure.confirm), which must pass the gate too. The baseline has the
    # worst cost, so candidates enter the front by cost whatever their (equal, noisy) latency,
    # and some are confirmed on every run, not only when noise makes one look faster
    study = lab.study("jobs", XY, args=["--sleep-ms=60"], target="slowcc", objectives=("latency_ms", "cost"),
                      meta="baseline = { x = 9, y = 9 }")
    proc = lab.tune("explore", study, "--trials", "8", "--jobs", "3", "--sampler", "random", "--seed", "2",
                    "--no-export", "--surrogate", "off", "--target-opt", "confirm_max_pairs=6")
    assert proc.returncode == 0, proc.stderr
    assert "jobs: 3 trials in flight, 1 measured at once" in proc.stderr
    recs = lab.records(study)
    assert sum(r.finished for r in recs) == 8
    measured = [r for r in recs if r.status == "complete"]
    assert len({r.config_key for r in measured}) == len(measured) >= 6
    assert any((r.measurement or {}).get("confirmation", {}).get("pairs") for r in measured), [(r.number, r.baseline, r.values, {k: v for k, v in (r.measurement or {}).items() if k != "launches"}) for r in measured]
    # every process (launches and the -O0 reference) writes "start" in its setup and "done" at the
    # end: had two runs overlapped, two starts would follow each other
    lines = [ln.split()[0] for ln in lab.counter_lines("jobs", optimised_only=False)]
    assert lines and lines[0] == "start"
    assert all(a != b for a, b in zip(lines, lines[1:])), lines
    # ... while the builds (each at least 0.4 s) did overlap: the point of --jobs
    spans = sorted(build_intervals(log))
    assert len(spans) >= 2 * len(measured)         # each trial's build and its -O0 reference build
    overlaps = sum(b0 < a1 for (a0, a1), (b0, b1) in zip(spans, spans[1:]))
    assert overlaps >= 2, spans


def test_deterministic_and_remote_targets_measure_n_at_once():
    import threading
    import time
    from types import SimpleNamespace

    from tuner.jobs import RunGate, concurrent_runs

    def target(method, here=True, cap=0):
        return SimpleNamespace(spec=SimpleNamespace(measure=SimpleNamespace(method=method, parallel_runs=cap)),
                               runs_here=here, run=lambda *a: time.sleep(0.05),
                               launcher=lambda *a: lambda i: time.sleep(0.05))

    for method, here, cap, n in (("wall", True, 0, 1), ("reported", True, 0, 1), ("reported", True, 16, 3),
                                 ("instructions", True, 0, 3), ("wall", False, 0, 3), ("wall", False, 2, 2)):
        assert concurrent_runs(SimpleNamespace(target=target(method, here, cap)), 3) == n, (method, here, cap)
    from tuner.targets import load_target
    assert load_target("vta-sim").measure.parallel_runs > 1 and load_target("local").measure.parallel_runs == 0
    t = target("reported", cap=16)
    gate = RunGate(t, 3)
    threads = [threading.Thread(target=t.run) for _ in range(3)]
    threads += [threading.Thread(target=t.launcher(), args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert gate.peak == 3


WIDE_FLAGS = "".join(f'\n[knobs.f{i}]\nkind = "categorical"\nchoices = ["off", "on"]\nto = "none"\n' for i in range(200))


def test_auto_in_a_wide_space_is_anchored_and_starts_from_the_obvious_points(lab):
    # 203 knobs (> samplers.WIDE): `auto` must pick the default chosen by bench/peers.py, and the
    # campaign still measures the baseline and the obvious points before the sampler's own
    off = {f"param.f{i}": "off" for i in range(200)}
    rows = [{**r, **off} for r in level_rows()]
    target = write_replay(lab, "wide", rows)
    study = lab.study("wide", LEVELS + WIDE_FLAGS, target=target, meta='baseline = { opt_level = "-O3" }')
    proc = lab.fork("explore", study, "--trials", "8", "--seed", "0", "--no-export")
    assert proc.returncode == 0, proc.stderr
    assert "sampler: anchored (203 knobs" in proc.stderr
    recs = sorted(lab.records(study), key=lambda r: r.number)
    first = [(r.config["opt_level"], r.config["march"]) for r in recs[:4]]
    assert first == [("-O3", ""), ("-O2", ""), ("-Os", ""), ("-O3", "-march=native")]
    assert all(r.status == "complete" for r in recs[:4]) and recs[0].baseline
    # then the sampler's own proposals: its local moves (sweep, mutate, crossover) anchored at the
    # measured points, few knobs moved (its shake and random proposals redraw many on purpose)
    from tuner.anchored import OP_ATTR
    from tuner.study import load_study
    from tuner.studystore import open_study
    spec = load_study(str(study))
    ops = {t.number: t.system_attrs.get(OP_ATTR)
           for t in open_study(spec, lab.root / "results" / spec.name, None, create=False).trials}
    local = [r for r in recs[4:] if r.finished and ops[r.number] in ("sweep", "mutate", "crossover")]
    assert local and all(sum(r.config[f"f{i}"] == "on" for i in range(200)) <= 10 for r in local)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_sampler_that_only_repeats_itself_stops_the_campaign(lab, jobs):
    """Two configurations and a budget of 500: once both are measured, every proposal is a
    duplicate, and 200 of them in a row stop the campaign (in one loop and with --jobs alike)."""
    rows = [{"param.x": x, "metric.cost": 5 - x, "metric.gain": 1, "state": "COMPLETE"} for x in range(2)]
    target = write_replay(lab, f"pair{jobs}", rows)
    study = lab.study(f"pair{jobs}", '[knobs.x]\nkind = "int"\nlow = 0\nhigh = 1\ndefine = "X"\n',
                      target=target, meta="baseline = { x = 0 }")
    proc = lab.fork("explore", study, "--trials", "500", "--sampler", "random", "--seed", "0", "--no-seeds",
                    "--jobs", jobs, "--no-export", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "proposed 200 already-measured configurations in a row (the space looks exhausted)" in proc.stderr
    recs = lab.records(study)
    assert sum(r.status == "complete" for r in recs) == 2 and len(recs) < 500, sorted((r.number, r.status, dict(r.config)) for r in recs)[:6]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_duplicates_cost_no_trial_and_a_resume_counts_as_before(lab, jobs):
    """N is the number of trials measured (or judged: failed, pruned, infeasible by a run), not of
    proposals: a repeated proposal is told to the sampler what its configuration got but does not
    use up one of the N (#10 item 2), in one loop and with --jobs. `tune status` still shows the
    duplicates, and a resumed campaign counts what it counted before: a duplicate stored before
    this rule (no `uncounted`) still counts."""
    target = write_replay(lab, f"dups{jobs}", grid_rows(4))     # 16 points: random repeats itself soon
    study = lab.study(f"dups{jobs}", GRID_XY.replace("high = 19", "high = 3"), target=target)
    args = ("explore", study, "--sampler", "random", "--seed", "2", "--jobs", jobs, "--surrogate", "off",
            "--no-export", "--no-progress")
    proc = lab.fork(*args, "--trials", "10")
    assert proc.returncode == 0, proc.stderr
    recs = lab.records(study)
    dups = [r for r in recs if r.status == "duplicate"]
    measured = [r for r in recs if r.status == "complete"]
    assert dups and all(d.uncounted and not d.finished for d in dups)     # this seed repeats itself
    assert len(measured) == 10 and len({r.config_key for r in measured}) == 10
    status = lab.json("status", study)
    assert status["finished"] == 10 and status["by_state"]["duplicate"] == len(dups)
    # the same command again: nothing to do; a larger budget: exactly the difference is measured
    assert lab.fork(*args, "--trials", "10").returncode == 0
    assert len(lab.records(study)) == len(recs)
    assert lab.fork(*args, "--trials", "13").returncode == 0
    assert sum(r.status == "complete" for r in lab.records(study)) == 13
    assert lab.json("status", study)["finished"] == 13


def test_duplicates_stored_before_the_rule_still_count():
    """A journal written when duplicates counted (no `uncounted` field) reads back counted, so a
    resumed campaign neither re-runs nor loses the trials it spent on them."""
    from optuna.distributions import IntDistribution
    from optuna.trial import TrialState, create_trial

    from tuner.result import TrialRecord, TrialStatus

    old = TrialRecord(3, TrialStatus.DUPLICATE, {"x": 1}, "k", duplicate_of=1)
    new = TrialRecord(4, TrialStatus.DUPLICATE, {"x": 1}, "k", duplicate_of=1, uncounted=True)
    assert "uncounted" not in old.to_attrs()["tune"] and new.to_attrs()["tune"]["uncounted"] is True
    for rec, counted in ((old, True), (new, False)):
        frozen = create_trial(state=TrialState.COMPLETE, values=[1.0], params={"x": 1},
                              distributions={"x": IntDistribution(0, 3)}, user_attrs=rec.to_attrs())
        assert TrialRecord.from_trial(frozen, []).finished is counted


SMALL_XY = GRID_XY.replace("high = 19", "high = 9")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_skipped_proposals_cost_no_trial(lab, jobs):
    """N counts measurements: a proposal the surrogate skips (pruned) is told to the sampler but
    does not use up one of the N (#10), in one loop and with --jobs; an audit is a measurement and
    counts. Progress, the summary and `tune status` say how many were measured and skipped."""
    study = lab.study(f"skip{jobs}", SMALL_XY, target=write_replay(lab, f"skip{jobs}", grid_rows(10)))
    args = ("explore", study, "--seed", "1", "--sampler", "random", "--surrogate", "always", "--jobs", jobs,
            "--no-export")
    proc = lab.fork(*args, "--trials", "30")
    assert proc.returncode == 0, proc.stderr
    recs = lab.records(study)
    skipped = [r for r in recs if r.status == "pruned"]
    measured = [r for r in recs if r.measured]
    assert skipped and all(r.uncounted and not r.finished for r in skipped), proc.stderr
    assert len(measured) == 30 == sum(r.finished for r in recs)
    audits = [r for r in recs if r.audit]
    assert audits and all(r.measured and r.finished for r in audits)      # an audit is a measurement
    assert "skipped by the surrogate (optimistic prediction adds" in proc.stderr
    assert "; not counted)" in proc.stderr
    assert f"30 trials finished (30 measured, {sum(r.status == 'complete' for r in recs)} verified; " \
           f"{len(skipped)} skipped by the surrogate, not counted)" in proc.stdout
    status = lab.json("status", study)
    assert (status["finished"], status["measured"], status["skipped"]) == (30, 30, len(skipped))
    assert status["by_state"]["pruned"] == len(skipped)
    table = lab.fork("status", study).stdout
    assert f"30 trials finished (30 measured, {len(skipped)} skipped by the surrogate)" in table
    # the same command again: nothing to do
    assert lab.fork(*args, "--trials", "30").returncode == 0
    assert len(lab.records(study)) == len(recs)


def test_a_journal_whose_prunes_counted_resumes_as_it_counted(lab):
    """Pruned trials stored before N counted measurements (no `uncounted` mark) still count, so a
    resumed campaign neither re-runs nor loses the trials it spent on them: a study whose trials
    are copied without the mark is complete at the same N, and a larger budget measures exactly
    the difference."""
    from optuna.trial import create_trial

    from tuner.result import TrialRecord
    from tuner.study import load_study
    from tuner.studystore import open_study

    target = write_replay(lab, "oldprune", grid_rows(10))
    new = lab.study("newprune", SMALL_XY, target=target)
    args = ("--seed", "1", "--sampler", "random", "--surrogate", "always", "--no-export", "--no-progress")
    assert lab.fork("explore", new, "--trials", "30", *args).returncode == 0
    old = lab.study("oldprune", SMALL_XY, target=target)
    spec_new, spec_old = load_study(str(new)), load_study(str(old))
    src = open_study(spec_new, lab.root / "results" / spec_new.name, None, create=False)
    dst = open_study(spec_old, lab.root / "results" / spec_old.name, None)
    pruned = 0
    for t in src.trials:
        rec = TrialRecord.from_trial(t, spec_new.objectives)
        pruned += rec.status == "pruned"
        stripped = replace(rec, uncounted=False) if rec.status == "pruned" else rec
        dst.add_trial(create_trial(state=t.state, values=t.values, params=t.params, distributions=t.distributions,
                                   user_attrs=stripped.to_attrs(), system_attrs=t.system_attrs))
    assert pruned
    assert lab.json("status", old)["finished"] == 30 + pruned
    assert lab.fork("explore", old, "--trials", "30", *args).returncode == 0
    assert len(lab.records(old)) == len(src.trials)                  # counted as before: nothing to do
    assert lab.fork("explore", old, "--trials", str(32 + pruned), *args).returncode == 0
    assert sum(r.measured for r in lab.records(old)) == 32


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_space_measured_or_skipped_to_the_end_stops_the_campaign(lab, jobs):
    """Neither skipped proposals nor duplicates count, so a budget larger than what is left to
    measure would run for ever: 200 in a row that were not measured stop it, with one message
    that says how many of each (one loop and --jobs)."""
    study = lab.study(f"end{jobs}", GRID_XY.replace("high = 19", "high = 4"),
                      target=write_replay(lab, f"end{jobs}", grid_rows(5)))
    proc = lab.fork("explore", study, "--trials", "100", "--seed", "0", "--sampler", "random", "--surrogate",
                    "always", "--jobs", jobs, "--no-export", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    recs = lab.records(study)
    skipped = sum(r.status == "pruned" for r in recs)
    measured = sum(r.measured for r in recs)
    assert skipped and measured + skipped == 25, (measured, skipped)        # every point judged once
    assert "configurations in a row that were not measured (" in proc.stderr, proc.stderr
    assert "skipped by the surrogate" in proc.stderr and "Traceback" not in proc.stderr

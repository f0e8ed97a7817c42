"""A program is measured once per study: a configuration that builds the very bytes another trial
measured, and runs them with the same arguments and environment, is a duplicate of that trial
(told its values, not counted), across resumes and under --jobs.

Real builds of the sleeping kernel of tests/test_measure_campaign.py: `pad` is a define the
program never reads (every value builds the same binary), `tag` an environment variable (the same
binary, run differently: another program), `mode` an argument."""

from __future__ import annotations

from collections import Counter

from test_measure_campaign import write

KNOBS = """
[knobs.pad]
kind = "categorical"
choices = ["1", "2", "3"]
to = "define"
define = "UNUSED_PAD"

[knobs.tag]
kind = "categorical"
choices = ["x", "y"]
to = "env"
env = "TUNE_TEST_TAG"
"""
RANDOM = ("--sampler", "random", "--surrogate", "off", "--no-export")


def study(lab, name: str, trials: int) -> str:
    path = write(lab, name, ["base", "fast", "slow"])
    text = open(path).read().replace("trials = 3", f"trials = {trials}") + KNOBS
    open(path, "w").write(text)
    return path


def program(rec) -> tuple:
    return rec.config["mode"], rec.config["tag"]


def check_each_program_measured_once(recs) -> list:
    measured = [r for r in recs if r.status.value in ("complete", "failed")]
    assert all(r.program_key for r in measured)
    assert len({r.program_key for r in measured}) == len(measured)              # each program once
    assert len({program(r) for r in measured}) == len(measured)                # ... = (mode, tag)
    by_number = {r.number: r for r in recs}
    same = [r for r in recs if r.status.value == "duplicate" and r.program_key]
    for r in same:
        prior = by_number[r.duplicate_of]
        assert prior.program_key == r.program_key and program(prior) == program(r)
        assert prior.config["pad"] != r.config["pad"] or prior.config == r.config
        assert f"builds the program trial {prior.number} measured" in r.detail
        assert r.build_key and r.build_key != prior.build_key                 # built (other flags)
        assert "run_s" not in r.timing and r.timing["build_s"] >= 0           # ... and never run
    return same


def test_a_configuration_that_builds_a_measured_program_is_a_duplicate_of_its_trial_and_not_counted(lab):
    path = study(lab, "same", 6)
    out = lab.ok("explore", path, *RANDOM, "--seed", "3")
    recs = lab.records(path)
    same = check_each_program_measured_once(recs)
    assert f"{len(same)} built a program measured before, not counted" in out.stdout
    assert "duplicate (built the program of trial" in out.stderr
    assert same, "3 x 2 programs among 18 configurations: the random proposals repeat programs"
    assert sum(r.finished for r in recs) == 6                                  # duplicates are not counted
    # told what its trial was told: the sampler sees the same values (Optuna's record of both)
    from tuner.study import load_study
    from tuner.studystore import open_study
    spec = load_study(path)
    trials = {t.number: t for t in open_study(spec, lab.root / "results" / spec.name, None, create=False).get_trials()}
    for r in same:
        assert trials[r.number].values == trials[r.duplicate_of].values
    # a resumed campaign knows the programs it measured: still each once
    lab.ok("explore", path, *RANDOM, "--seed", "4", "--trials", "6")
    check_each_program_measured_once(lab.records(path))
    status = lab.json("status", path)
    assert status["same_program"] == sum(r.status.value == "duplicate" and bool(r.program_key)
                                         for r in lab.records(path)) > 0
    assert "built a program measured before" in lab.ok("status", path).stdout


def test_the_environment_and_arguments_are_part_of_the_program(lab):
    path = study(lab, "env", 6)
    lab.ok("explore", path, *RANDOM, "--seed", "1")
    recs = [r for r in lab.records(path) if r.status.value == "complete"]
    # the six (mode, tag) programs, every one measured: one binary, run six ways
    assert Counter(program(r) for r in recs) == Counter({(m, t): 1 for m in ("base", "fast", "slow") for t in "xy"})
    assert len({r.build_key for r in recs}) >= 1 and len({r.program_key for r in recs}) == 6


def test_under_jobs_a_built_program_measured_before_is_a_duplicate_too(lab):
    path = study(lab, "jobs", 6)
    lab.ok("explore", path, "--sampler", "random", "--no-export", "--seed", "3", "--jobs", "2")   # surrogate on
    recs = lab.records(path)
    assert sum(r.finished for r in recs) == 6
    by_number = {r.number: r for r in recs}
    same = [r for r in recs if r.status.value == "duplicate" and r.program_key]
    assert same
    for r in same:      # (two jobs may build one program at once, neither measured yet: both run)
        prior = by_number[r.duplicate_of]
        assert prior.status.value == "complete" and prior.program_key == r.program_key

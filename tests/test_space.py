"""Search spaces: conditional knobs, constraints (never built), pins, identities."""

from __future__ import annotations

import re

import optuna
import pytest

from conftest import needs_gcc, one_line_error
from tuner.errors import BadInput
from tuner.space import config_key
from tuner.study import load_study

XYZ = """
[knobs.x]
kind = "int"
low = 0
high = 10
define = "X"

[knobs.y]
kind = "int"
low = 0
high = 10
define = "Y"

[knobs.z]
kind = "int"
low = 1
high = 3
when = "x > 5"
define = "Z"
"""
CONSTRAINT = "x + y <= 8"


def space_of(lab, knobs=XYZ, constraints=(CONSTRAINT,)):
    return load_study(str(lab.study("space", knobs, constraints=constraints))).space


def test_conditional_knob_only_when_active(lab):
    space = space_of(lab)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        config = space.sample(trial)
        study.tell(trial, 0.0)
        assert ("z" in config) == (config["x"] > 5), config
        assert ("z" in trial.params) == (config["x"] > 5), "an inactive knob was asked for"
        assert any(f.startswith("-DZ=") for f in space.render(config).cflags) == ("z" in config)
        seen.add("z" in config)
    assert seen == {True, False}


def test_complete_fills_defaults_of_active_knobs_only(lab):
    space = space_of(lab)
    assert space.complete({"x": 7}) == {"x": 7, "y": 0, "z": 1}
    assert space.complete({}) == {"x": 0, "y": 0}


def test_violations_name_the_constraint(lab):
    space = space_of(lab)
    assert space.violations({"x": 1, "y": 2}) == []
    assert space.violations({"x": 7, "y": 5, "z": 1}) == [CONSTRAINT]


def test_pins(lab):
    space = space_of(lab)
    assert space.parse_pins(["x=7", "y = 2"]) == {"x": 7, "y": 2}
    with pytest.raises(BadInput, match="unknown knob 'w'"):
        space.parse_pins(["w=1"])
    with pytest.raises(BadInput, match="x"):
        space.parse_pins(["x=11"])
    with pytest.raises(BadInput, match="knob=value"):
        space.parse_pins(["x"])


def test_config_key_is_stable_and_order_free():
    assert config_key({"a": 1, "b": "x"}) == config_key({"b": "x", "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 2})
    assert re.fullmatch(r"[0-9a-f]{16}", config_key({"a": 1}))


@pytest.mark.parametrize("knobs,constraints,match", [
    (XYZ.replace('when = "x > 5"', 'when = "w > 5"'), (), "not an earlier knob"),
    (XYZ, ("x + w <= 3",), "unknown knob 'w'"),
    (XYZ, ("x.real > 1",), "not allowed"),
    (XYZ, ("__import__('os')",), "not allowed"),
])
def test_bad_expressions_are_bad_input(lab, knobs, constraints, match):
    with pytest.raises(BadInput, match=match):
        space_of(lab, knobs, constraints)


def test_a_condition_that_fails_to_evaluate_is_bad_input(lab):
    with pytest.raises(BadInput, match="math domain error"):   # at load: the defaults have x = 0
        space_of(lab, XYZ.replace('when = "x > 5"', 'when = "log2(x) > 1"'), ())


def test_impossible_constraint_is_detected(lab):
    space = space_of(lab, XYZ, ("x > 100",))
    with pytest.raises(BadInput, match="x > 100"):
        space.check_satisfiable()
    space_of(lab, XYZ, (CONSTRAINT,)).check_satisfiable()


@needs_gcc
def test_impossible_constraint_via_cli_is_one_line_exit_2(lab):
    study = lab.study("impossible", XYZ, constraints=("x > 100",))
    line = one_line_error(lab.tune("explore", study, "--trials", "3", "--no-progress"))
    assert "x > 100" in line
    assert not lab.counter("impossible").exists(), "something was built and run"


@needs_gcc
def test_infeasible_configurations_are_recorded_and_never_built(lab):
    study = lab.study("cons", XYZ, constraints=(CONSTRAINT,))
    lab.ok("explore", study, "--trials", "8", "--sampler", "random", "--seed", "3", "--no-progress", "--no-export")
    recs = [r for r in lab.records(study) if r.status in ("complete", "failed", "infeasible")]
    # declared constraints cost no trial (#10): the infeasible proposals are recorded but not counted
    assert sum(r.finished for r in recs) == 8 and all(r.resampled for r in recs if r.status == "infeasible")
    infeasible = [r for r in recs if r.status == "infeasible"]
    feasible = [r for r in recs if r.status == "complete"]
    assert infeasible and feasible, [(r.status, r.params) for r in recs]
    for r in infeasible:
        assert r.params["x"] + r.params["y"] > 8
        assert r.reason == "infeasible" and CONSTRAINT in r.detail
        assert not r.build_key, "an infeasible configuration was built"
    for r in recs:
        assert ("z" in r.params) == (r.params["x"] > 5), r.params
    # the program ran only for feasible configurations
    runs = lab.counter_lines("cons", "start")
    assert runs, "nothing ran"
    for line in runs:
        x, y = (int(v) for v in re.findall(r"[xy]=(\d+)", line))
        assert x + y <= 8, line
    from tuner.studystore import open_study
    from tuner.report import build_report
    spec = load_study(str(study))
    report = build_report(spec, open_study(spec, lab.root / "results" / "cons", None, create=False))
    assert {r.number for r in report.front} <= {r.number for r in feasible}, "an infeasible trial is on the front"
    status = lab.json("status", study)
    assert status["by_state"].get("infeasible") == len(infeasible)
    assert status["failures_by_reason"].get("infeasible") == len(infeasible)
    assert status["finished"] == 8


def test_conditions_can_chain_through_inactive_knobs(lab):
    """w depends on z, which exists only when x > 5: when z is inactive, so is w (no error)."""
    knobs = XYZ + '\n[knobs.w]\nkind = "int"\nlow = 0\nhigh = 1\nwhen = "z == 2"\ndefine = "W"\n'
    space = space_of(lab, knobs, ())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    seen = set()
    for _ in range(80):
        trial = study.ask()
        config = space.sample(trial)
        study.tell(trial, 0.0)
        assert ("w" in config) == (config.get("z") == 2), config
        seen.add("w" in config)
    assert seen == {True, False}
    assert space.complete({"x": 0}) == {"x": 0, "y": 0}

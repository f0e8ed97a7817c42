"""The command line: bad input is one line on stderr and exit 2 (a run-time failure: exit 1),
nothing stored is damaged by a bad command, and the listing commands work."""

from __future__ import annotations

import io
import json
import subprocess
from contextlib import redirect_stderr, redirect_stdout

import pytest

from conftest import needs_gcc, one_line_error
from tuner.cli.main import main

KNOBS = """
[knobs.x]
kind = "int"
low = 0
high = 10
define = "X"
"""


def cli(*args) -> subprocess.CompletedProcess:
    """`tune ARGS` in this process (the same main() as the console script): fast, and a
    traceback would surface as the test's own exception."""
    out, err = io.StringIO(), io.StringIO()
    argv = [str(a) for a in args]
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def bad_study(lab, name, mutate):
    """A study file like the good one, with one thing wrong."""
    path = lab.study(name, KNOBS)
    path.write_text(mutate(path.read_text()))
    return path


BAD_STUDIES = {
    "toml_syntax": lambda t: t.replace("[knobs.x]", "[knobs.x"),
    "unknown_study_key": lambda t: t.replace("[study]\n", '[study]\ncolour = "red"\n'),
    "unknown_knob_key": lambda t: t.replace('define = "X"', 'define = "X"\nhgih = 3'),
    "unknown_objective": lambda t: t.replace('["cost", "gain"]', '["cost", "no_such_objective"]'),
    "unknown_target": lambda t: t.replace('target = "fast"', 'target = "no-such-target"'),
    "unknown_kind": lambda t: t.replace('kind = "int"', 'kind = "float"'),
    "no_program": lambda t: t.replace('sources = ["./kernel.c"]', 'sources = ["./missing.c"]'),
}


@pytest.fixture
def campaign(lab):
    """A finished two-trial campaign, and a way to see that it is unchanged."""
    study = lab.study("base", KNOBS)
    lab.ok("explore", study, "--trials", "2", "--sampler", "random", "--seed", "0", "--no-progress", "--no-export")

    def state():
        return lab.journal(study).read_bytes(), json.loads(cli("status", study, "--format", "json").stdout)
    before = state()
    assert before[1]["finished"] == 2
    yield lab, study
    assert state() == before, "a bad command changed the stored campaign"


@needs_gcc
def test_bad_input_is_one_line_and_exit_2_and_damages_nothing(campaign):
    lab, study = campaign
    errors = {}
    errors["unknown knob"] = one_line_error(cli("explore", study, "--set", "no_such_knob=1", "--no-progress"))
    errors["out of domain"] = one_line_error(cli("explore", study, "--set", "x=11", "--no-progress"))
    errors["measure out of domain"] = one_line_error(cli("measure", study, "--set", "x=-1"))
    errors["not knob=value"] = one_line_error(cli("measure", study, "--set", "x"))
    errors["unknown target option"] = one_line_error(cli("explore", study, "--target", "no-such-target"))
    errors["trials 0"] = one_line_error(cli("explore", study, "--trials", "0"))
    errors["unknown study"] = one_line_error(cli("status", "no-such-study"))
    errors["missing file"] = one_line_error(cli("explore", lab.root / "nope.toml"))
    for name, mutate in BAD_STUDIES.items():
        path = bad_study(lab, name, mutate)
        commands = [("explore", path, "--trials", "1", "--no-progress"), ("measure", path)]
        if name != "unknown_target":   # `tune spaces` describes a study; it does not open its target
            commands.append(("spaces", path))
        for command in commands:
            errors[f"{name} ({command[0]})"] = one_line_error(cli(*command))
    assert "no_such_knob" in errors["unknown knob"]
    assert "x" in errors["out of domain"] and "11" in errors["out of domain"]
    assert "no-such-target" in errors["unknown target option"]
    assert "no_such_objective" in errors["unknown_objective (explore)"]
    assert "no-such-target" in errors["unknown_target (explore)"]
    assert "float" in errors["unknown_kind (explore)"]
    assert "colour" in errors["unknown_study_key (explore)"]
    assert "hgih" in errors["unknown_knob_key (explore)"]
    assert "TOML" in errors["toml_syntax (explore)"]
    for line in errors.values():
        assert line.startswith("tune: error: "), line
    assert not list((lab.root / "results").glob("toml_syntax*")), "a bad study left results behind"


    # the same through the real executable: no traceback from the console script either
    proc = lab.tune("explore", study, "--set", "no_such_knob=1")
    assert one_line_error(proc).startswith("tune: error: ")
    proc = lab.tune("explore", bad_study(lab, "broken", BAD_STUDIES["toml_syntax"]), "--trials", "1")
    assert one_line_error(proc).startswith("tune: error: ")


def test_missing_compiler_is_a_run_time_failure(lab):
    (lab.root / "targets" / "nocc.toml").write_text(
        (lab.root / "targets" / "fast.toml").read_text().replace('cc = "gcc"', 'cc = "no-such-cc"'))
    study = lab.study("nocc", KNOBS, target="nocc")
    line = one_line_error(cli("explore", study, "--trials", "1", "--no-progress"), code=1)
    assert line.startswith("tune: failed: ") and "no-such-cc" in line
    line = one_line_error(cli("measure", study), code=1)
    assert "no-such-cc" in line


def test_listing_commands(lab):
    proc = cli("spaces")
    assert proc.returncode == 0 and "conv2d-flags" in proc.stdout
    proc = cli("spaces", "conv2d-flags")
    assert proc.returncode == 0 and "opt_level" in proc.stdout and "categorical" in proc.stdout
    proc = cli("targets")
    assert proc.returncode == 0 and "local" in proc.stdout and "fast" in proc.stdout


def test_help_through_the_real_executable(lab):
    proc = lab.tune("--help")
    assert proc.returncode == 0 and "explore" in proc.stdout and not proc.stderr
    assert cli("explore", "--help").returncode == 0

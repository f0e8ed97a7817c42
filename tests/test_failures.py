"""Failures are recorded with their reason and a stderr tail, and the campaign goes on."""

from __future__ import annotations

from conftest import needs_gcc

MODES = """
[knobs.mode]
kind = "categorical"
choices = [0, 1, 2, 3, 4, 5]     # ok, abort, NULL write, hang, wrong when optimised, syntax error
define = "MODE"
"""


@needs_gcc
def test_every_failure_is_recorded_with_its_reason_and_the_campaign_goes_on(lab):
    study = lab.study("faults", MODES, program="timeout_s = 2")
    lab.ok("explore", study, "--trials", "6", "--sampler", "grid", "--no-progress", "--no-export")
    by_mode = {r.params["mode"]: r for r in lab.records(study)}
    assert sorted(by_mode) == [0, 1, 2, 3, 4, 5]
    assert by_mode[0].status == "complete" and by_mode[0].values
    want = {
        1: ("crash", ["SIGABRT", "tune-test: about to abort"]),
        2: ("crash", ["SIGSEGV", "tune-test: about to write through NULL"]),
        3: ("timeout", ["no result after 2s", "tune-test: about to hang"]),
        4: ("wrong_output", ["reference"]),
        5: ("compile_error", ["this is not C at all"]),
    }
    for mode, (reason, tail) in want.items():
        r = by_mode[mode]
        assert r.status == "failed" and r.reason == reason, (mode, r.status, r.reason, r.detail)
        for text in tail:
            assert text in r.detail, f"mode {mode}: {text!r} not in the stored detail:\n{r.detail}"
    status = lab.json("status", study)
    assert status["finished"] == 6
    assert status["by_state"] == {"complete": 1, "failed": 5}
    assert status["failures_by_reason"] == {"compile_error": 1, "crash": 2, "timeout": 1, "wrong_output": 1}


@needs_gcc
def test_measure_reports_a_failure_with_exit_1(lab):
    study = lab.study("faults1", MODES)
    proc = lab.tune("measure", study, "--set", "mode=4", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    import json
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and doc["reason"] == "wrong_output" and "reference" in doc["detail"]

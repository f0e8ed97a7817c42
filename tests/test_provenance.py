"""Provenance: every measured trial says how it was built and run; the run says where and with what."""

from __future__ import annotations

import hashlib
import subprocess

from conftest import needs_gcc
from knob_tables import categorical_knob, opt_knob
from tuner import provenance

KNOBS = categorical_knob("a", [0, 1, 2], define="X") + opt_knob()


@needs_gcc
def test_every_measured_trial_carries_its_build_and_run(lab):
    study = lab.study("prov", KNOBS)
    lab.ok("explore", study, "--trials", "3", "--seed", "1", "--no-progress", "--no-export")
    from tuner.studystore import open_study
    from tuner.study import load_study

    spec = load_study(str(study))
    s = open_study(spec, lab.root / "results" / spec.name, None, create=False)
    runs = provenance.load_runs(s)
    assert len(runs) == 1
    (run,) = runs.values()
    assert run["schema"] == provenance.SCHEMA
    assert run["machine"]["cores"] and run["machine"]["memory_bytes"] > 0 and run["machine"]["kernel"]
    assert run["compiler"]["path"].startswith("/") and "gcc" in run["compiler"]["version"].lower()
    assert run["search"]["seed"] == 1 and run["search"]["sampler"]
    assert run["libraries"]["optuna"] and run["python"]["version"]
    assert run["tune"]["version"]
    assert run["files"]["study"]["sha256"] == hashlib.sha256(study.read_bytes()).hexdigest()
    (src,) = run["files"]["sources"]
    assert src["sha256"] == hashlib.sha256((lab.root / "kernel.c").read_bytes()).hexdigest()
    assert any(h["path"].endswith("tune_harness.h") for h in run["files"]["headers"])
    assert run["target"]["name"] == "fast" and run["target"]["file"]["sha256"]
    measured = [r for r in lab.records(study) if r.status == "complete"]
    assert measured
    for r in measured:
        p = r.provenance
        assert p["run"] == run["run"] and p["build_key"] == r.build_key
        compile_cmd, link_cmd = p["build"]
        assert compile_cmd[0] == "gcc" and "-c" in compile_cmd and f"-DX={r.params['a']}" in compile_cmd
        assert r.params["opt"] in compile_cmd and not any(".build-" in a for a in compile_cmd + link_cmd)
        assert p["run_argv"][0].endswith("/prog") and p["run_env"]["TUNE_MAX_REPS"] == "2"
        full = provenance.merged(p, runs)
        assert full["machine"] == run["machine"] and full["build"] == p["build"]


@needs_gcc
def test_the_recorded_build_command_rebuilds_the_same_program(lab, tmp_path):
    """The record is exact: running its commands by hand gives a binary with the same output."""
    study = lab.study("again", KNOBS)
    lab.ok("explore", study, "--trials", "2", "--seed", "0", "--no-progress", "--no-export")
    r = next(r for r in lab.records(study) if r.status == "complete")
    out = tmp_path / "rebuild"
    out.mkdir()
    for cmd in r.provenance["build"]:
        subprocess.run(cmd, cwd=out, check=True)
    got = subprocess.run([str(out / "prog"), *r.provenance["run_argv"][1:]], capture_output=True,
                         text=True, env=r.provenance["run_env"], check=True)
    assert f'"checksum":"{r.checksum}"' in got.stdout.replace(" ", "")


def test_machine_and_software_are_collected_once():
    assert provenance.machine() is provenance.machine()
    sw = provenance.software()
    assert sw["tune"]["version"]
    assert "git_commit" in sw["tune"]        # tests run from a checkout
    assert len(sw["tune"]["git_commit"]) == 40

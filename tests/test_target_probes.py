"""`tune targets` really builds and runs a trivial program for the local and python targets
(built once per compiler and flags in the probe cache, then only run), and says why not."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout

from conftest import needs_gcc, one_line_error
from tuner.cli.main import main


def targets(monkeypatch, **env: str) -> dict[str, str]:
    """`tune targets` in this process (the console script's main), with `env` set: row by name."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["targets"]) == 0, err.getvalue()
    return {line.split()[0]: line for line in out.getvalue().splitlines() if line.strip()}


@needs_gcc
def test_local_and_python_are_usable_because_a_program_ran(lab, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    rows = targets(monkeypatch, XDG_CACHE_HOME=str(cache))
    assert " usable " in rows["local"] and " usable " in rows["python"] and " usable " in rows["fast"]
    built = list((cache / "tune" / "probe" / "builds").glob("*/prog"))
    assert built, "the probe built nothing"
    assert os.access(built[0], os.X_OK)
    proc = lab.tune("targets")            # and through the real executable
    assert proc.returncode == 0 and "local " in proc.stdout, proc.stderr


@needs_gcc
def test_a_compiler_that_cannot_build_makes_local_unusable_with_the_reason(lab, tmp_path, monkeypatch):
    rows = targets(monkeypatch, TUNE_CC_LOCAL="false", XDG_CACHE_HOME=str(tmp_path / "c"))
    assert " unusable " in rows["local"] and "cannot build a trivial program with 'false'" in rows["local"], rows["local"]
    rows = targets(monkeypatch, TUNE_CC_LOCAL="no-such-cc")
    assert " unusable " in rows["local"] and "no-such-cc" in rows["local"], rows["local"]


@needs_gcc
def test_the_probe_runs_the_program_through_the_target(lab, monkeypatch):
    """A target that builds but cannot run (taskset to a CPU that does not exist): unusable,
    with taskset's message, and a campaign on it stops at once with exit 1."""
    fast = (lab.root / "targets" / "fast.toml").read_text()
    (lab.root / "targets" / "nocpu.toml").write_text(fast + 'pin_cpu = "4095"\n')
    (lab.root / "targets" / "badflag.toml").write_text(
        fast.replace('cc = "gcc"', 'cc = "gcc"\ncflags = ["-fno-such-flag"]'))
    rows = targets(monkeypatch)
    assert " unusable " in rows["nocpu"] and "failed" in rows["nocpu"], rows["nocpu"]
    assert " unusable " in rows["badflag"] and "no-such-flag" in rows["badflag"], rows["badflag"]
    study = lab.study("probe", '[knobs.x]\nkind = "int"\nlow = 0\nhigh = 1\ndefine = "X"\n', target="nocpu")
    line = one_line_error(lab.tune("explore", study, "--trials", "1"), code=1)
    assert "target 'nocpu' is not usable here" in line, line

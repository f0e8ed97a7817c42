"""`tune targets` really builds and runs a trivial program for the local and python targets
(built once per compiler and flags in the probe cache, then only run), and says why not."""

from __future__ import annotations

import os

from conftest import needs_gcc, one_line_error


def targets(lab, **env) -> dict[str, str]:
    proc = lab.tune("targets") if not env else _tune_env(lab, env)
    assert proc.returncode == 0, proc.stderr
    return {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}


def _tune_env(lab, env):
    import subprocess
    return subprocess.run(lab.argv("targets"), cwd=lab.root, capture_output=True, text=True, timeout=240,
                          env={**lab.env(), **env})


@needs_gcc
def test_local_and_python_are_usable_because_a_program_ran(lab, tmp_path):
    cache = tmp_path / "cache"
    rows = targets(lab, XDG_CACHE_HOME=str(cache))
    assert " usable " in rows["local"] and " usable " in rows["python"] and " usable " in rows["fast"]
    built = list((cache / "tune" / "probe" / "builds").glob("*/prog"))
    assert built, "the probe built nothing"
    assert os.access(built[0], os.X_OK)


@needs_gcc
def test_a_compiler_that_cannot_build_makes_local_unusable_with_the_reason(lab, tmp_path):
    rows = targets(lab, TUNE_CC_LOCAL="false", XDG_CACHE_HOME=str(tmp_path / "c"))
    assert " unusable " in rows["local"] and "cannot build a trivial program with 'false'" in rows["local"], rows["local"]
    rows = targets(lab, TUNE_CC_LOCAL="no-such-cc")
    assert " unusable " in rows["local"] and "no-such-cc" in rows["local"], rows["local"]


@needs_gcc
def test_the_probe_runs_the_program_through_the_target(lab):
    """A target that builds but cannot run (taskset to a CPU that does not exist): unusable,
    with taskset's message, and a campaign on it stops at once with exit 1."""
    fast = (lab.root / "targets" / "fast.toml").read_text()
    (lab.root / "targets" / "nocpu.toml").write_text(fast + 'pin_cpu = "4095"\n')
    (lab.root / "targets" / "badflag.toml").write_text(
        fast.replace('cc = "gcc"', 'cc = "gcc"\ncflags = ["-fno-such-flag"]'))
    rows = targets(lab)
    assert " unusable " in rows["nocpu"] and "failed" in rows["nocpu"], rows["nocpu"]
    assert " unusable " in rows["badflag"] and "no-such-flag" in rows["badflag"], rows["badflag"]
    study = lab.study("probe", '[knobs.x]\nkind = "int"\nlow = 0\nhigh = 1\ndefine = "X"\n', target="nocpu")
    line = one_line_error(lab.tune("explore", study, "--trials", "1"), code=1)
    assert "target 'nocpu' is not usable here" in line, line

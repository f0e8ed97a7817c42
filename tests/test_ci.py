"""CI refuses skips caused by a missing gcc, qemu, PostgreSQL or sshd (tests/ci_skips.py), and
prints every skip reason (`-rs`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

TESTS = Path(__file__).parent
SKIPPING = '''
import pytest

@pytest.mark.skipif(True, reason="gcc not installed")
def test_needs_gcc():
    pass

@pytest.mark.skipif(True, reason="apache-tvm (the 'tvm' extra) is not installed")
def test_optional():
    pass

def test_runs():
    pass
'''


def run(tmp_path: Path, ci: str | None, text: str = SKIPPING) -> subprocess.CompletedProcess:
    (tmp_path / "test_skips.py").write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "ci_skips",
                           str(tmp_path / "test_skips.py")], cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=120)


def test_outside_ci_a_skip_is_reported_not_failed(tmp_path):
    proc = run(tmp_path, None)
    assert proc.returncode == 0, proc.stdout
    assert "SKIPPED [1] test_skips.py:4: gcc not installed" in proc.stdout      # -rs names the reason


def test_in_ci_a_skip_for_a_required_tool_fails_the_run(tmp_path):
    proc = run(tmp_path, "true")
    assert proc.returncode == 1, proc.stdout
    section = proc.stdout.split("skipped, but CI needs these")[1].split("short test summary")[0]
    assert "test_skips.py::test_needs_gcc: gcc not installed" in section
    assert "test_optional" not in section


def test_in_ci_an_optional_skip_is_fine(tmp_path):
    proc = run(tmp_path, "true", SKIPPING.replace("gcc not installed", "clang not installed"))
    assert proc.returncode == 0, proc.stdout

"""tuner.procs in both start-up modes (setpriv + vfork, and the fork + prctl hook): a child that
cannot start is reported by its own name, and no child outlives a SIGKILLed tune, including
one the guard was never told about (the window between the start and the guard's pipe write).

Real processes: `sleep` with a marker argument, found through /proc/PID/cmdline.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import pids_with, wait_for
from tuner import procs
from tuner.targets.local import run_process

MODES = ["setpriv", "fork"]


@pytest.fixture(params=MODES)
def mode(request, monkeypatch):
    """Run the test with procs in this start-up mode (skipped where setpriv is missing)."""
    monkeypatch.setenv(procs.SPAWN_VAR, request.param)
    procs.setpriv.cache_clear()
    if request.param == "setpriv" and procs.setpriv() is None:
        pytest.skip("no setpriv with --pdeathsig here")
    yield request.param
    procs.setpriv.cache_clear()


def marker() -> str:
    return f"{random.randrange(10**6, 10**7)}.{os.getpid() % 1000}"


def test_a_plain_run_gets_status_output_and_the_owner_mark(mode):
    done = procs.run(["sh", "-c", f'echo "${procs.OWNER_VAR}"; echo oops >&2; exit 3'])
    assert (done.returncode, done.stdout, done.stderr) == (3, f"{os.getpid()}\n".encode(), b"oops\n")
    assert done.start_error is None and not done.timed_out


@pytest.mark.parametrize("program", ["no-such-program-xyz", "./no-such-file"])
def test_a_missing_program_is_named_not_setpriv(mode, program, tmp_path):
    done = procs.run([program, "arg"], cwd=tmp_path)
    assert isinstance(done.start_error, FileNotFoundError)
    assert program in done.stderr.decode() and "setpriv" not in done.stderr.decode()
    got = run_process([program], None, 10, cwd=tmp_path)
    assert got.transport_error == f"cannot start {program}: No such file or directory"


def test_a_program_that_is_not_executable_is_refused_by_name(mode, tmp_path):
    script = tmp_path / "prog"
    script.write_text("#!/bin/sh\necho hi\n")
    done = procs.run([str(script)])
    assert isinstance(done.start_error, PermissionError) and str(script) in str(done.start_error)


def test_an_exec_failure_after_the_check_is_still_a_start_error(mode, tmp_path):
    """Executable, but its interpreter does not exist: execve itself fails (under setpriv, after
    setpriv's own exec: its one line and exit 127 become the start error)."""
    script = tmp_path / "prog"
    script.write_text("#!/no/such/interpreter\n")
    script.chmod(0o755)
    done = procs.run([str(script)])
    assert isinstance(done.start_error, FileNotFoundError), done
    assert str(script) in done.stderr.decode() and "setpriv" not in done.stderr.decode()


def test_a_timeout_kills_the_group(mode):
    m = marker()
    done = procs.run(["sh", "-c", f"sleep {m} & wait"], timeout_s=0.5)
    assert done.timed_out
    wait_for(lambda: not pids_with(m), 10, "the grandchild to die with its group")


PARENT = """
import os, sys
sys.path.insert(0, {root!r})
from tuner import procs
{before}
procs.run(["sleep", os.environ["MARK"]])
"""


def start_parent(mode: str, m: str, before: str = "") -> subprocess.Popen:
    """A small tune stand-in that runs `sleep MARKER` through procs (in `mode`); the marker
    reaches it through its environment, so that only the children's command lines hold it."""
    code = PARENT.format(root=str(Path(procs.__file__).parents[1]), before=textwrap.dedent(before))
    env = {**os.environ, procs.SPAWN_VAR: mode, "MARK": m}
    return subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)


def sigkill_and_expect_no_child(parent: subprocess.Popen, m: str) -> None:
    parent.kill()
    parent.wait(timeout=30)
    wait_for(lambda: not pids_with(m), 10, "the child to die with its parent")


@pytest.mark.parametrize("guard", ["guard", "no-guard"])
def test_the_child_dies_with_a_sigkilled_parent(mode, guard):
    """With the guard, and without it (killed first: the parent-death signal alone)."""
    m = marker()
    parent = start_parent(mode, m)
    try:
        wait_for(lambda: pids_with(m), 60, "the child to start")
        if guard == "no-guard":
            guards = pids_with(f"{procs.OWNER_VAR}={parent.pid}")
            assert len(guards) == 1
            os.kill(guards[0], signal.SIGKILL)
            wait_for(lambda: not pids_with(f"{procs.OWNER_VAR}={parent.pid}"), 10, "the guard to die")
        sigkill_and_expect_no_child(parent, m)
    finally:
        for pid in pids_with(m):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_a_child_the_guard_never_heard_of_dies_with_its_parent(mode):
    """The parent starts the guard, then a child without the parent-death signal and without
    telling the guard (as if killed right after the start): the guard finds it by its mark."""
    m = marker()
    before = """
    import os, subprocess
    procs._guard.start()
    subprocess.Popen(["sleep", os.environ["MARK"] + "0"], start_new_session=True,
                     env={**os.environ, procs.OWNER_VAR: str(os.getpid())})
    """
    parent = start_parent(mode, m, before)
    try:
        wait_for(lambda: pids_with(m + "0") and pids_with(m), 60, "both children to start")
        sigkill_and_expect_no_child(parent, m)
    finally:
        for pid in pids_with(m):
            os.kill(pid, signal.SIGKILL)


def test_setpriv_is_not_used_when_fork_is_asked_for(monkeypatch):
    monkeypatch.setenv(procs.SPAWN_VAR, "fork")
    procs.setpriv.cache_clear()
    try:
        assert procs.setpriv() is None
    finally:
        procs.setpriv.cache_clear()
    monkeypatch.delenv(procs.SPAWN_VAR)
    assert (procs.setpriv() is not None) == (shutil.which("setpriv") is not None and
                                            subprocess.run(["setpriv", "--pdeathsig", "KILL", "--", "true"]).returncode == 0)
    procs.setpriv.cache_clear()

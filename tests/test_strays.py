"""No strays: what tune starts dies with tune, however tune dies.

Real processes throughout: the measured program is the test kernel sleeping "forever", the
slow compiler is a shell script that starts a child (`sleep`) and then runs gcc, so the
grandchildren that a parent-death signal does not reach are covered too. A process is found
by a marker in its command line (/proc/PID/cmdline).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import needs_gcc, pids_with, wait_for
from knob_tables import X4

KNOBS = X4
FOREVER = "--sleep-ms=100000000"     # the kernel's setup sleeps ~28 hours


def start(lab, *args, group: bool = False) -> subprocess.Popen:
    """`tune ARGS` in the background; in its own process group with `group` (to kill the group)."""
    return subprocess.Popen(lab.argv(*args), cwd=lab.root, env=lab.env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=group,
                            preexec_fn=None if group else lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def kill_tune(proc: subprocess.Popen, group: bool) -> None:
    if group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.kill()
    proc.wait(timeout=30)


@contextmanager
def reaped(marker: str) -> Iterator[None]:
    """Whatever the test finds, no process holding `marker` outlives it."""
    try:
        yield
    finally:
        for pid in pids_with(marker):
            os.kill(pid, signal.SIGKILL)


def kill_once_started(proc: subprocess.Popen, group: bool, marker: str, what: str) -> None:
    """Wait for `what` (its command line holds `marker`) to start under tune, SIGKILL tune (or
    its group), then require `what` to die with it within 10 s."""
    with reaped(marker):
        wait_for(lambda: pids_with(marker), 120, f"{what} to start")
        kill_tune(proc, group)
        wait_for(lambda: not pids_with(marker), 10, f"{what} to die with tune")


@needs_gcc
@pytest.mark.parametrize("group", [False, True], ids=["kill-tune", "kill-tune-group"])
def test_the_measured_program_dies_with_tune(lab, group):
    """The program runs in a session of its own (so a Ctrl-C reaches tune first): a SIGKILL of
    tune, or of tune's whole process group, must not leave it running."""
    study = lab.study("hang", KNOBS, args=[FOREVER], program="timeout_s = 36000")
    marker = str(lab.counter("hang"))
    proc = start(lab, "explore", study, "--trials", "1", "--no-progress", "--no-export", group=group)
    kill_once_started(proc, group, marker, "the measured program")


def slow_compiler(lab) -> tuple[str, str]:
    """A target whose compiler is a script that, for the study's kernel.c (not the target's
    probe program), starts `sleep MARKER` and waits for it (then would run gcc): (target
    name, marker)."""
    marker = f"{random.randrange(10**5, 10**6)}.{os.getpid() % 1000}"
    script = lab.root / "slowcc"
    script.write_text('#!/bin/sh\ncase "$*" in *--version*) exec gcc --version;; esac\n'
                      f'case "$*" in *kernel.c*) sleep {marker} & wait;; esac\nexec gcc "$@"\n')
    script.chmod(0o755)
    text = (lab.root / "targets" / "fast.toml").read_text().replace('cc = "gcc"', f'cc = "{script}"')
    (lab.root / "targets" / "slowcc.toml").write_text(text)
    return "slowcc", marker


def leftovers(lab, study: Path) -> list[Path]:
    return list((lab.root / "results" / study.stem / "builds").glob(".build-*"))


@needs_gcc
@pytest.mark.parametrize("group", [False, True], ids=["kill-tune", "kill-tune-group"])
def test_the_compiler_dies_with_tune_and_its_build_dir_is_cleaned_at_the_next_start(lab, group):
    target, marker = slow_compiler(lab)
    study = lab.study("slowbuild", KNOBS, target=target)
    proc = start(lab, "explore", study, "--trials", "1", "--no-progress", "--no-export", group=group)
    kill_once_started(proc, group, marker, "the compiler's child")
    left = leftovers(lab, study)
    assert left, "a kill during a build leaves its temporary directory (then cleaned at the next start)"
    # a live worker's build directory is never touched
    builds = lab.root / "results" / "slowbuild" / "builds"
    live = builds / f".build-{socket.gethostname()}-{os.getpid()}-abcdefgh"
    live.mkdir()
    proc = lab.tune("measure", study, "--target", "fast")
    assert proc.returncode == 0, proc.stderr
    assert leftovers(lab, study) == [live]


@needs_gcc
def test_ctrl_c_during_a_build_leaves_no_build_dir_and_no_compiler(lab):
    target, marker = slow_compiler(lab)
    study = lab.study("intbuild", KNOBS, target=target)
    proc = start(lab, "explore", study, "--trials", "1", "--no-progress", "--no-export")
    with reaped(marker):
        wait_for(lambda: pids_with(marker), 120, "the compiler to start")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130, proc.stderr.read() if proc.stderr else ""
        assert not pids_with(marker), "the compiler outlived a Ctrl-C"
    assert leftovers(lab, study) == []


@needs_gcc
def test_a_dead_lock_holder_does_not_delay_the_next_start(lab):
    """The journal lock is a flock (released by the kernel when its holder dies), so neither a
    writer killed while holding it nor a symlink lock left by an older tune costs Optuna's
    30-second grace period."""
    import fcntl

    study = lab.study("lock", KNOBS)
    lab.ok("explore", study, "--trials", "1", "--sampler", "random", "--seed", "0", "--no-progress", "--no-export")
    journal = lab.journal(study)
    fd = os.open(f"{journal}.flock", os.O_RDWR)
    try:   # a process that takes the lock and is killed holding it
        pid = os.fork()
        if pid == 0:
            fcntl.flock(fd, fcntl.LOCK_EX)
            time.sleep(600)
            os._exit(0)
        time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    finally:
        os.close(fd)
    os.symlink(journal, f"{journal}.lock")      # Optuna's symlink lock, as a killed older tune left it
    t0 = time.monotonic()
    lab.ok("explore", study, "--trials", "3", "--sampler", "random", "--seed", "1", "--no-progress", "--no-export")
    assert time.monotonic() - t0 < 25, "the next start waited for a dead holder's lock"
    assert lab.json("status", study)["finished"] == 3

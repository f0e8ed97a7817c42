"""Child processes (compilers, measured programs) that never outlive tune.

Each child runs argv (never a shell) as the leader of its own session, so that a timeout or a
Ctrl-C kills it with everything it started (gcc's cc1/as/ld, a program's helpers) by one
`killpg`, and a Ctrl-C in the terminal reaches tune alone. Being in its own session, a child
would survive tune itself being killed (SIGKILL, or `kill -9` of tune's process group), so:

- the child gets PR_SET_PDEATHSIG = SIGKILL (prctl, set between fork and exec): the kernel
  kills it when tune dies, however tune dies;
- a guard process (a few lines of Python in a session of its own, started with the first
  child) holds a pipe from tune and the list of the children's process groups; when the pipe
  closes because tune died, it kills those groups. This reaches the grandchildren the
  parent-death signal does not (gcc's cc1 and ld, a shell script's children).

The guard costs one small process per tune process; a child costs two short pipe writes.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

PR_SET_PDEATHSIG = 1

GUARD = r"""
import os, signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups, buf = set(), b""
while True:
    try:
        data = os.read(0, 65536)
    except InterruptedError:
        continue
    except OSError:
        break
    if not data:
        break
    buf += data
    *lines, buf = buf.split(b"\n")
    for line in lines:
        (groups.add if line[:1] == b"+" else groups.discard)(int(line[1:]))
for g in groups:
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
"""


def _load_prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):   # not Linux: the guard alone
        return None


_prctl = _load_prctl()


def _child_setup(parent: int) -> None:
    """In the child, between fork and exec: die with the parent (which may already be gone)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:   # tune died before prctl took effect
        os._exit(137)


class _Guard:
    """The watchdog process (see the module docstring); started lazily, once per tune process."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._owner = 0

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None or self._owner != os.getpid():
                try:
                    self._proc = subprocess.Popen(
                        [sys.executable, "-S", "-c", GUARD], stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                except OSError:
                    self._proc = None
                    return     # the parent-death signal still covers the direct child
                self._owner = os.getpid()
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(line.encode())
                self._proc.stdin.flush()
            except (OSError, ValueError):
                pass

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def close(self) -> None:
        """At a normal exit: the guard finds nothing left to kill and exits."""
        proc, self._proc = self._proc, None
        if proc is not None and self._owner == os.getpid():
            try:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass


_guard = _Guard()
atexit.register(_guard.close)


@dataclass(frozen=True)
class Finished:
    """What one child did: exit status (negative: killed by that signal), output, wall time."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    wall_s: float
    timed_out: bool = False
    start_error: OSError | None = None     # it could not be started (no such file, ...)


def run(argv: Sequence[str], env: Mapping[str, str] | None = None, timeout_s: float | None = None,
        cwd: str | os.PathLike | None = None, stdin: bytes | None = None) -> Finished:
    """Run argv to completion in its own session; on a timeout, an exception or Ctrl-C, kill its
    process group. `env` adds to (not replaces) tune's environment."""
    t0 = time.perf_counter()
    full_env = {**os.environ, **(env or {})}
    parent = os.getpid()
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                env=full_env, cwd=cwd, start_new_session=True,
                                preexec_fn=lambda: _child_setup(parent))
    except OSError as e:
        return Finished(None, b"", str(e).encode(), 0.0, start_error=e)
    _guard.watch(proc.pid)
    try:
        try:
            out, err = proc.communicate(input=stdin, timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            out, err = proc.communicate()
            timed_out = True
        except BaseException:
            kill_group(proc.pid)
            proc.wait()
            raise
    finally:
        kill_group(proc.pid)      # whatever the leader left behind (a daemonised helper)
        _guard.forget(proc.pid)
    return Finished(proc.returncode, out, err, time.perf_counter() - t0, timed_out)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

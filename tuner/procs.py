"""Child processes (compilers, measured programs) that never outlive tune.

Each child runs argv (never a shell) as the leader of its own session, so that a timeout or a
Ctrl-C kills it with everything it started (gcc's cc1/as/ld, a program's helpers) by one
`killpg`, and a Ctrl-C in the terminal reaches tune alone. Being in its own session, a child
would survive tune itself being killed (SIGKILL, or `kill -9` of tune's process group), so:

- the child gets PR_SET_PDEATHSIG = SIGKILL: the kernel kills it when tune dies, however tune
  dies. Where util-linux's `setpriv` (>= 2.33) is installed the child is started as
  `setpriv --pdeathsig KILL -- ARGV`, so Python can start it by vfork: a fork of tune (a large
  process: numpy, scikit-learn, optuna) copies its page tables, about 13 ms per child here
  (`python bench/procs.py`). Without setpriv (or with TUNE_PROCS_SPAWN=fork) a pre-exec hook
  calls prctl between fork and exec, as before;
- a guard process (a few lines of Python in a session of its own, started before the first
  child) holds a pipe from tune and the list of the children's process groups; when the pipe
  closes because tune died, it kills those groups. This reaches the grandchildren the
  parent-death signal does not (gcc's cc1 and ld, a shell script's children);
- every child's environment holds TUNE_PROCS_OWNER=<tune's pid>, and a guard whose tune died
  (the pipe closed without tune's goodbye) also kills every process of this user that holds
  it. That covers a tune killed after starting a child but before telling the guard, while
  the child was still on its way to the prctl (setpriv sets it after its own exec; the pre-exec
  hook checks the parent is still there after setting it).

A child that cannot be started (no such program, not executable) is reported as such, naming
the program (never setpriv). The guard costs one small process per tune process; a child costs
two short pipe writes.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

PR_SET_PDEATHSIG = 1
OWNER_VAR = "TUNE_PROCS_OWNER"
SPAWN_VAR = "TUNE_PROCS_SPAWN"     # "fork": the pre-exec hook even where setpriv exists

GUARD = r"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
mark = b"\0" + os.fsencode(sys.argv[1]) + b"\0"
groups, buf, goodbye = set(), b"", False
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
        if line == b".":
            goodbye = True
        elif line:
            (groups.add if line[:1] == b"+" else groups.discard)(int(line[1:]))
for g in groups:
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
if not goodbye:
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if mark in b"\0" + f.read():
                    os.kill(int(name), signal.SIGKILL)
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


@lru_cache(maxsize=1)
def setpriv() -> str | None:
    """util-linux's setpriv if it is here and knows --pdeathsig (>= 2.33; checked by running it
    once), unless TUNE_PROCS_SPAWN=fork; None: children start with the pre-exec hook."""
    if os.environ.get(SPAWN_VAR, "").strip().lower() == "fork" or _prctl is None:
        return None
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        done = subprocess.run([path, "--pdeathsig", "KILL", "--", path, "--version"],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return path if done.returncode == 0 else None


def _unstartable(program: str, env: Mapping[str, str], cwd: str | os.PathLike | None) -> OSError | None:
    """The error Popen would raise for `program` (searched as Popen searches: env's PATH, or a
    path relative to cwd), or None if it looks startable; setpriv would only print it."""
    if os.path.dirname(program):
        found = os.path.join(cwd, program) if cwd is not None else program
        candidates = [found]
    else:
        candidates = [os.path.join(d, program) for d in os.get_exec_path(dict(env))]
    denied = False
    for path in candidates:
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return None
            denied = True
    code = errno.EACCES if denied else errno.ENOENT
    return (PermissionError if denied else FileNotFoundError)(code, os.strerror(code), program)


SETPRIV_FAILED = b"setpriv: failed to execute "


def _exec_failure(program: str, returncode: int | None, stderr: bytes) -> OSError | None:
    """setpriv's own report that it could not execute the program (exit 126/127 and its one
    line), as the OSError Popen would have raised; None for the program's own exit."""
    if returncode not in (126, 127) or not stderr.startswith(SETPRIV_FAILED):
        return None
    why = stderr.splitlines()[0].decode(errors="replace").rsplit(": ", 1)[-1]
    code = next((c for c in (errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR, errno.ELOOP)
                 if os.strerror(c) == why), errno.ENOENT if returncode == 127 else errno.EACCES)
    return OSError(code, os.strerror(code), program)


class _Guard:
    """The watchdog process (see the module docstring); started lazily, once per tune process."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._owner = 0

    def _running(self) -> bool:
        return self._proc is not None and self._owner == os.getpid() and self._proc.poll() is None

    def start(self) -> None:
        """Before a child starts: a guard watching this process (a forked tune gets its own)."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        if self._running():
            return
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-S", "-c", GUARD, f"{OWNER_VAR}={os.getpid()}"], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            self._proc = None
            return     # the parent-death signal still covers the direct child
        self._owner = os.getpid()

    def _send(self, line: str) -> None:
        with self._lock:
            self._start()
            if self._proc is None:
                return
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
        """At a normal exit: goodbye, so the guard kills only what is left in its list (nothing)."""
        proc, self._proc = self._proc, None
        if proc is not None and self._owner == os.getpid():
            try:
                assert proc.stdin is not None
                proc.stdin.write(b".\n")
                proc.stdin.close()
                proc.wait(timeout=2)
            except (OSError, ValueError, subprocess.TimeoutExpired):
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
    argv = list(argv)
    full_env = {**os.environ, **(env or {}), OWNER_VAR: str(os.getpid())}
    wrapper = setpriv()
    if wrapper is not None:
        missing = _unstartable(argv[0], full_env, cwd)
        if missing is not None:
            return Finished(None, b"", str(missing).encode(), 0.0, start_error=missing)
    _guard.start()
    parent = os.getpid()
    try:
        proc = subprocess.Popen([wrapper, "--pdeathsig", "KILL", "--", *argv] if wrapper else argv,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                env=full_env, cwd=cwd, start_new_session=True,
                                preexec_fn=None if wrapper else lambda: _child_setup(parent))
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
    if wrapper is not None:
        failed = _exec_failure(argv[0], proc.returncode, err)
        if failed is not None:
            return Finished(None, b"", str(failed).encode(), 0.0, start_error=failed)
    return Finished(proc.returncode, out, err, time.perf_counter() - t0, timed_out)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

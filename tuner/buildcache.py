"""Content-addressed build cache: the same sources, compiler and flags build once.

The key hashes the compiler's identity (its --version), the argv and every source and
header byte, so a changed header or compiler upgrade never reuses a stale binary.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from tuner import procs
from tuner.errors import MachineFault, machine_fault, machine_fault_in


class CompileError(Exception):
    """The compiler rejected the program; `stderr_tail` says why."""

    def __init__(self, message: str, stderr_tail: str, build_s: float) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail
        self.build_s = build_s


class ToolMissing(Exception):
    """The compiler (or another tool) is not installed."""


@dataclass(frozen=True)
class CompiledBinary:
    path: Path
    key: str
    build_s: float      # wall time of the compile that produced it (0.0 when reused from the cache)
    cached: bool

    @property
    def objects(self) -> list[Path]:
        return sorted(self.path.parent.glob("*.o"))


@lru_cache(maxsize=None)
def compiler_identity(cc: str) -> str:
    """First line of `cc --version`; raises ToolMissing if cc is absent."""
    exe = shutil.which(cc)
    if exe is None:
        raise ToolMissing(f"compiler '{cc}' not found on PATH")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else exe


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


_HOST = socket.gethostname()
STALE_S = 3600       # a temporary build directory of the old naming (no pid) untouched this long is a leftover


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BuildCache:
    """Binaries under `root/<key>/prog`, written atomically (build in a temp dir, rename).

    The temp dir is `.build-HOST-PID-XXXX`: one that a dead process of this host left (a kill
    during a build) is removed when the next cache opens, never one a live worker is using.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.clean()

    def clean(self) -> list[Path]:
        """Remove the temporary build directories that dead processes left behind."""
        removed = []
        try:
            leftovers = list(self.root.glob(".build-*"))
        except OSError:
            return removed
        for path in leftovers:
            host, pid = _owner(path.name)
            if pid is not None:
                stale = host == _HOST and not _alive(pid)
            else:
                try:
                    stale = time.time() - path.stat().st_mtime > STALE_S
                except OSError:
                    continue
            if stale:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    def key(self, cc: str, argv: Sequence[str], sources: Sequence[Path], extra: Sequence[Path] = ()) -> str:
        h = hashlib.sha256(b"tune-build-v2")   # bump when the cache layout changes
        h.update(compiler_identity(cc).encode())
        h.update("\0".join([cc, *argv]).encode())
        for path in [*sources, *extra]:
            h.update(str(Path(path).name).encode())
            h.update(Path(path).read_bytes())
        return h.hexdigest()[:24]

    def compile(
        self,
        cc: str,
        sources: Sequence[Path],
        cflags: Sequence[str] = (),
        ldflags: Sequence[str] = (),
        headers: Sequence[Path] = (),
        timeout_s: float = 300.0,
    ) -> CompiledBinary:
        """Compile (or reuse) `sources` with `cc cflags sources -o prog ldflags`."""
        sources = [Path(s).resolve() for s in sources]
        argv = [*cflags, "|", *ldflags]
        key = self.key(cc, argv, sources, [Path(h) for h in headers])
        final = self.root / key / "prog"
        if final.exists():
            return CompiledBinary(final, key, 0.0, cached=True)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".build-{_HOST}-{os.getpid()}-", dir=self.root))
        except OSError as e:
            raise _fault(e, self.root) from None
        try:
            return self._build(cc, sources, cflags, ldflags, timeout_s, key, tmp)
        except BaseException:      # a failure, a machine fault, Ctrl-C: no temporary directory left
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _build(self, cc: str, sources: Sequence[Path], cflags: Sequence[str], ldflags: Sequence[str],
               timeout_s: float, key: str, tmp: Path) -> CompiledBinary:
        # objects first, then link: the objects' code sections are the program's own code size,
        # which a static libc would otherwise swamp
        commands = [[cc, *cflags, "-c", str(src), "-o", str(tmp / f"{i}-{src.stem}.o")]
                    for i, src in enumerate(sources)]
        commands.append([cc, *cflags, *(c[-1] for c in commands), "-o", str(tmp / "prog"), *ldflags])
        t0 = time.perf_counter()
        for cmd in commands:
            done = procs.run(cmd, None, timeout_s, cwd=tmp)
            if done.start_error is not None:
                raise ToolMissing(f"cannot start compiler '{cc}': {done.start_error.strerror}")
            if done.timed_out:
                raise CompileError(f"compile timed out after {timeout_s:.0f}s", "", time.perf_counter() - t0)
            if done.returncode != 0:
                stderr = done.stderr.decode(errors="replace")
                fault = machine_fault_in(stderr, tmp, cc)   # a full disk is not the configuration's fault
                if fault is not None:
                    raise fault
                raise CompileError(f"{cc} exited with {done.returncode}", _tail(stderr), time.perf_counter() - t0)
        build_s = time.perf_counter() - t0
        try:
            (tmp / "build.txt").write_text("\n".join(" ".join(c) for c in commands) + f"\nbuild_s={build_s:.6f}\n")
            os.rename(tmp, self.root / key)
        except OSError as e:
            fault = machine_fault(e, tmp)
            if fault is not None:
                raise fault from None
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise _fault(e, tmp) from None
            shutil.rmtree(tmp, ignore_errors=True)   # another process built the same key first: keep theirs
        return CompiledBinary(self.root / key / "prog", key, build_s, cached=False)


def _owner(name: str) -> tuple[str, int | None]:
    """(host, pid) of a `.build-HOST-PID-XXXX` directory; pid None for the old naming."""
    host, _, rest = name[len(".build-"):].rpartition("-")       # drop mkdtemp's random suffix
    host, _, pid = host.rpartition("-")
    return (host, int(pid)) if pid.isdigit() and host else ("", None)


def _fault(e: OSError, path: Path) -> MachineFault:
    """The build cache cannot be written: a machine fault (a full disk), else unwritable storage."""
    return machine_fault(e, path) or MachineFault(f"cannot write the build cache: {e.strerror or e}",
                                                  e.filename or path)

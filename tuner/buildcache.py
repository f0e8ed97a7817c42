"""Content-addressed build cache: the same sources, compiler and flags build once.

The key hashes the compiler's identity (its --version), the argv and every source and
header byte, so a changed header or compiler upgrade never reuses a stale binary.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence


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


class BuildCache:
    """Binaries under `root/<key>/prog`, written atomically (build in a temp dir, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

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
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=self.root))
        # objects first, then link: the objects' code sections are the program's own code size,
        # which a static libc would otherwise swamp
        commands = [[cc, *cflags, "-c", str(src), "-o", str(tmp / f"{i}-{src.stem}.o")]
                    for i, src in enumerate(sources)]
        commands.append([cc, *cflags, *(c[-1] for c in commands), "-o", str(tmp / "prog"), *ldflags])
        t0 = time.perf_counter()
        for cmd in commands:
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=tmp)
            except subprocess.TimeoutExpired:
                shutil.rmtree(tmp, ignore_errors=True)
                raise CompileError(f"compile timed out after {timeout_s:.0f}s", "", time.perf_counter() - t0)
            if proc.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise CompileError(f"{cc} exited with {proc.returncode}", _tail(proc.stderr),
                                   time.perf_counter() - t0)
        build_s = time.perf_counter() - t0
        (tmp / "build.txt").write_text("\n".join(" ".join(c) for c in commands) + f"\nbuild_s={build_s:.6f}\n")
        try:
            os.rename(tmp, self.root / key)
        except OSError:  # another process built the same key first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        return CompiledBinary(final, key, build_s, cached=False)

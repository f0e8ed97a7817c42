"""The two kinds of error a user can meet, each turned into one line and an exit code."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class BadInput(Exception):
    """The user's input is wrong: a study file, a knob name, a value. Exit code 2."""

    def __init__(self, message: str, file: Path | str | None = None, key: str | None = None) -> None:
        self.file = str(file) if file is not None else None
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.file, self.key) if p)
        text = f"{where}: {self.message}" if where else self.message
        # one line, always: a value quoted from the user's file may hold a newline
        return text.replace("\r", "\\r").replace("\n", "\\n")


class RunFailure(Exception):
    """Something needed at run time is missing or broken (a compiler, a device). Exit code 1."""


class MachineFault(RunFailure):
    """The machine failed, not the configuration: a full disk (ENOSPC), a read-only file system
    (EROFS), storage that cannot be written. The campaign stops (exit 1) with one line naming the
    path; the trial being measured is recorded as interrupted and retried later, never failed."""

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


# errno values that are the machine's fault, never the configuration's, with how to say them
MACHINE_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system",
                  errno.EDQUOT: "disk quota exceeded", errno.EIO: "input/output error"}
# the same as a tool (gcc, ld, as) prints them (strerror's text)
_MACHINE_TEXTS = {os.strerror(n): text for n, text in MACHINE_ERRNOS.items()}


def machine_fault(err: OSError, path: Path | str | None = None) -> MachineFault | None:
    """A MachineFault for an OSError that is the machine's (a full disk, a read-only file
    system), naming the file (the error's own, else `path`); None for any other error."""
    if err.errno not in MACHINE_ERRNOS:
        return None
    return MachineFault(MACHINE_ERRNOS[err.errno], err.filename or path)


def machine_fault_in(output: str, path: Path | str | None = None, tool: str = "") -> MachineFault | None:
    """A MachineFault when a tool's output reports a full disk or a read-only file system
    (`ld: final link failed: No space left on device`), naming the path on that line if it
    names one, else `path`; None otherwise."""
    for line in output.splitlines():
        for text, what in _MACHINE_TEXTS.items():
            if text in line:
                before = line[:line.index(text)].split()[1:]     # the first word is the tool's name
                named = [w.strip(":'\"`,") for w in before if w.lstrip("'\"`").startswith("/")]
                where = named[-1] if named else path
                return MachineFault(f"{what} ({tool + ': ' if tool else ''}{line.strip()[:200]})", where)
    return None

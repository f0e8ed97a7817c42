"""The two kinds of error a user can meet, each turned into one line and an exit code."""

from __future__ import annotations

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

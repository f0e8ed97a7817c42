"""Where studies, targets, objectives and programs are found.

The built-in library sits beside the package (an editable install, or a source checkout).
A user's own files come first: each directory in $TUNE_LIBRARY (colon-separated), then
the working directory, so a user extends or overrides a component without editing tune.
"""

from __future__ import annotations

import os
from pathlib import Path

from tuner.errors import BadInput

BUILTIN_ROOT = Path(__file__).resolve().parent.parent
KINDS = {"study": "search_spaces", "target": "targets", "objective": "objectives"}


def roots() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("TUNE_LIBRARY", "").split(os.pathsep) if p]
    seen: list[Path] = []
    for root in [*extra, Path.cwd(), BUILTIN_ROOT]:
        root = root.resolve()
        if root not in seen:
            seen.append(root)
    return seen


def find(kind: str, name: str) -> Path:
    """The file for `name`: a path to a .toml file, or a name looked up in the library."""
    if name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise BadInput(f"no such {kind} file", path)
        return path.resolve()
    folder = KINDS[kind]
    for root in roots():
        path = root / folder / f"{name}.toml"
        if path.is_file():
            return path
    known = ", ".join(names(kind)) or "none"
    raise BadInput(f"unknown {kind} '{name}' (known: {known})")


def names(kind: str) -> list[str]:
    found: set[str] = set()
    for root in roots():
        folder = root / KINDS[kind]
        if folder.is_dir():
            found.update(p.stem for p in folder.glob("*.toml"))
    return sorted(found)


def programs_dir() -> Path:
    return BUILTIN_ROOT / "programs"

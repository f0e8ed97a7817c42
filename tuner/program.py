"""What a study builds: sources (or a template), flags, arguments, how outputs are verified."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner import library
from tuner.errors import BadInput
from tuner.tomlfile import check_keys

PROGRAM_KEYS = {"sources", "template", "params", "cflags", "ldflags", "args", "verify",
                "reference_cflags", "module", "language", "timeout_s", "requires"}


@dataclass(frozen=True)
class Verify:
    """exact: checksums must match; rtol: outputs numerically close; none: the program checks itself."""

    mode: str = "exact"
    rtol: float = 0.0
    atol: float = 0.0

    @classmethod
    def parse(cls, text: Any, file: Path | str) -> "Verify":
        if text in ("exact", "none"):
            return cls(str(text))
        if isinstance(text, str) and text.startswith("rtol="):
            parts = dict(p.split("=", 1) for p in text.split(",") if "=" in p)
            try:
                return cls("rtol", float(parts.get("rtol", 0)), float(parts.get("atol", 0)))
            except ValueError:
                pass
        raise BadInput(f"verify must be 'exact', 'none' or 'rtol=1e-5[,atol=...]', got {text!r}",
                       file, "program.verify")


@dataclass(frozen=True)
class ProgramSpec:
    sources: tuple[Path, ...] = ()
    template: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    cflags: tuple[str, ...] = ()
    ldflags: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    verify: Verify = Verify()
    reference_cflags: tuple[str, ...] = ("-O0",)
    module: str | None = None           # a Python module run as `python -m module` (python target)
    language: str = "c"
    timeout_s: float | None = None
    requires: tuple[str, ...] = ()       # Python modules the study needs (optional extras)

    def missing_requirements(self) -> list[str]:
        import importlib.util
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    @property
    def include_dirs(self) -> tuple[Path, ...]:
        dirs = [library.programs_dir()]
        for s in (*self.sources, *([self.template] if self.template else [])):
            if s.parent not in dirs:
                dirs.append(s.parent)
        return tuple(dirs)


def _strs(value: Any, file: Path | str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise BadInput("must be a list of strings", file, key)
    return tuple(str(v) for v in value)


def _resolve(rel: str, study_file: Path) -> Path:
    base = study_file.parent if rel.startswith("./") else library.programs_dir()
    path = (base / rel).resolve()
    if not path.is_file():
        raise BadInput(f"program file '{rel}' not found (looked at {path})", study_file, "program")
    return path


def load_program(table: Any, study_file: Path) -> ProgramSpec:
    if not isinstance(table, dict):
        raise BadInput("missing [program] table", study_file, "program")
    check_keys(table, PROGRAM_KEYS, study_file, "program")
    sources = tuple(_resolve(s, study_file) for s in _strs(table.get("sources", []), study_file, "program.sources"))
    template = _resolve(table["template"], study_file) if "template" in table else None
    if not sources and template is None and "module" not in table:
        raise BadInput("a program needs 'sources', a 'template' or a 'module'", study_file, "program")
    timeout = table.get("timeout_s")
    return ProgramSpec(
        sources=sources,
        template=template,
        params=dict(table.get("params", {})),
        cflags=_strs(table.get("cflags", []), study_file, "program.cflags"),
        ldflags=_strs(table.get("ldflags", []), study_file, "program.ldflags"),
        args=_strs(table.get("args", []), study_file, "program.args"),
        verify=Verify.parse(table.get("verify", "exact"), study_file),
        reference_cflags=_strs(table.get("reference_cflags", ["-O0"]), study_file, "program.reference_cflags"),
        module=table.get("module"),
        language=str(table.get("language", "c")),
        timeout_s=float(timeout) if timeout is not None else None,
        requires=_strs(table.get("requires", []), study_file, "program.requires"),
    )

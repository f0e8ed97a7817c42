"""What a study builds: sources (or a template), flags, arguments, how outputs are verified."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner import library
from tuner.errors import BadInput
from tuner.tomlfile import KINDS, check_keys, describe, get, positive

LANGUAGES = ("c", "c++")
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


def _resolve(rel: str, study_file: Path, key: str) -> Path:
    base = study_file.parent if rel.startswith("./") else library.programs_dir()
    try:
        path = (base / rel).resolve()
        found = path.is_file()
    except (OSError, ValueError):   # a name too long for the file system, a NUL byte
        path, found = base / rel[:60], False
    if not found:
        raise BadInput(f"program file '{rel}' not found (looked at {path})", study_file, key)
    return path


def _params(table: dict[str, Any], study_file: Path) -> dict[str, Any]:
    """Template constants: names (identifiers) to numbers, strings, booleans or lists of them."""
    params = get(table, "params", "a table", study_file, "program", {})
    for name in params:
        if not name.isidentifier():
            raise BadInput("a template parameter's name must be an identifier", study_file, f"program.params.{name}")
        value = params[name]
        if not (KINDS["a string, number or boolean"](value)
                or KINDS["a list of strings, numbers or booleans"](value)):
            raise BadInput(f"must be a string, number, boolean or a list of them, got {describe(value)}",
                           study_file, f"program.params.{name}")
    return dict(params)


def load_program(table: Any, study_file: Path) -> ProgramSpec:
    if not isinstance(table, dict):
        raise BadInput("missing [program] table", study_file, "program")
    check_keys(table, PROGRAM_KEYS, study_file, "program")
    sources = tuple(_resolve(s, study_file, "program.sources")
                    for s in _strs(table.get("sources", []), study_file, "program.sources"))
    template_rel = get(table, "template", "a string", study_file, "program")
    template = _resolve(template_rel, study_file, "program.template") if template_rel is not None else None
    module = get(table, "module", "a string", study_file, "program")
    if not sources and template is None and module is None:
        raise BadInput("a program needs 'sources', a 'template' or a 'module'", study_file, "program")
    language = get(table, "language", "a string", study_file, "program", "c")
    if language not in LANGUAGES:
        raise BadInput(f"must be one of {', '.join(LANGUAGES)}, got {describe(language)}", study_file,
                       "program.language")
    timeout = positive(table, "timeout_s", study_file, "program")
    return ProgramSpec(
        sources=sources,
        template=template,
        params=_params(table, study_file),
        cflags=_strs(table.get("cflags", []), study_file, "program.cflags"),
        ldflags=_strs(table.get("ldflags", []), study_file, "program.ldflags"),
        args=tuple(library.expand(a, study_file, "program.args")
                   for a in _strs(table.get("args", []), study_file, "program.args")),
        verify=Verify.parse(table.get("verify", "exact"), study_file),
        reference_cflags=_strs(table.get("reference_cflags", ["-O0"]), study_file, "program.reference_cflags"),
        module=module,
        language=language,
        timeout_s=float(timeout) if timeout is not None else None,
        requires=_strs(table.get("requires", []), study_file, "program.requires"),
    )

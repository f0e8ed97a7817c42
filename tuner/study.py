"""A study file: a search space, a program, a target and objectives, loaded and checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner import library
from tuner.errors import BadInput
from tuner.knobs import make_knob
from tuner.objectives import Objective, load_objective
from tuner.program import ProgramSpec, load_program
from tuner.samplers import NAMES as SAMPLERS
from tuner.space import SearchSpace, parse_constraints
from tuner.tomlfile import check_keys, describe, get, load_toml

STUDY_KEYS = {"description", "target", "objectives", "trials", "baseline", "include", "sampler",
              "reference_point", "targets", "constants", "seeds"}


@dataclass(frozen=True)
class StudySpec:
    name: str
    file: Path
    description: str
    space: SearchSpace
    program: ProgramSpec
    target: str
    objectives: tuple[Objective, ...]
    trials: int = 40
    sampler: str = "auto"
    baseline: dict[str, Any] = field(default_factory=dict)
    reference_point: dict[str, float] = field(default_factory=dict)
    compatible_targets: tuple[str, ...] = ()
    seeds: tuple[dict[str, Any], ...] = ()      # obvious points measured after the baseline (tuner.seeds)


def _included_knobs(include: Any, study_file: Path) -> dict[str, Any]:
    """Knob tables from include files; `{file=..., tags=[...], names=[...]}` picks a subset."""
    if include is None:
        return {}
    if not isinstance(include, list):
        raise BadInput(f"must be a list of paths or {{file = ..., tags = [...]}} tables, got {describe(include)}",
                       study_file, "study.include")
    knobs: dict[str, Any] = {}
    for i, item in enumerate(include):
        where = f"study.include[{i}]"
        spec = {"file": item} if isinstance(item, str) else item
        if not isinstance(spec, dict) or "file" not in spec:
            raise BadInput("each include is a path or {file = ..., tags = [...]}", study_file, where)
        check_keys(spec, {"file", "tags", "names", "exclude"}, study_file, where)
        rel = get(spec, "file", "a string", study_file, where)
        tags = set(get(spec, "tags", "a list of strings", study_file, where, ()))
        names = set(get(spec, "names", "a list of strings", study_file, where, ()))
        exclude = set(get(spec, "exclude", "a list of strings", study_file, where, ()))
        try:
            path = library.find_include(rel, study_file)
            found = path.is_file()
        except (OSError, ValueError):   # a name too long for the file system, a NUL byte
            path, found = study_file.parent / rel[:60], False
        if not found:
            raise BadInput(f"include file '{rel[:60]}' not found (looked at {str(path)[:300]})",
                           study_file, f"{where}.file" if isinstance(item, dict) else where)
        table = load_toml(path)
        check_keys(table, {"knobs", "description", "generated_by"}, path, "")
        for name, knob in get(table, "knobs", "a table", path, "", {}).items():
            if not isinstance(knob, dict):
                raise BadInput("a knob must be a table", path, f"knobs.{name}")
            if name in exclude or (names and name not in names):
                continue
            if tags and not tags & set(get(knob, "tags", "a list of strings", path, f"knobs.{name}", ())):
                continue
            knobs[name] = (knob, path)
    return knobs


def _constants(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """Named values the conditions and constraints may read (numbers, strings, booleans)."""
    constants = get(meta, "constants", "a table", path, "study", {})
    for name, value in constants.items():
        if not name.isidentifier():
            raise BadInput("a constant's name must be an identifier", path, f"study.constants.{name}")
        get(constants, name, "a string, number or boolean", path, "study.constants")
    return dict(constants)


def _reference_point(meta: dict[str, Any], objectives: list[Objective], path: Path) -> dict[str, float]:
    """Per-objective reference values for the hypervolume: numbers, keyed by objective name."""
    point = get(meta, "reference_point", "a table", path, "study", {})
    known = {o.name for o in objectives}
    for name in point:
        if name not in known:
            raise BadInput(f"names no objective of this study (objectives: {', '.join(sorted(known))})",
                           path, f"study.reference_point.{name}")
        get(point, name, "a number", path, "study.reference_point")
    missing = [o.name for o in objectives if o.name not in point]
    if point and missing:
        raise BadInput(f"gives no value for objective '{missing[0]}' (give one for every objective, or none)",
                       path, "study.reference_point")
    return {k: float(v) for k, v in point.items()}


def load_study(name: str) -> StudySpec:
    path = library.find("study", name)
    table = load_toml(path)
    check_keys(table, {"study", "program", "knobs", "constraints"}, path, "")
    meta = table.get("study")
    if not isinstance(meta, dict):
        raise BadInput("missing [study] table", path, "study")
    check_keys(meta, STUDY_KEYS, path, "study")
    if "target" not in meta:
        raise BadInput("a study needs target = \"...\"", path, "study.target")
    target = get(meta, "target", "a string", path, "study")
    try:
        library.find("target", target)
    except BadInput as e:
        raise BadInput(e.message, path, "study.target") from None
    objective_names = get(meta, "objectives", "a list of strings", path, "study")
    if not objective_names:
        raise BadInput("a study needs objectives = [\"...\", ...]", path, "study.objectives")
    objectives = []
    for obj in objective_names:
        try:
            objectives.append(load_objective(obj))
        except BadInput as e:   # an unknown name is this file's mistake; a broken objective file names itself
            if e.file is not None and e.file != obj:
                raise
            raise BadInput(e.message, path, "study.objectives") from None
    if len({o.name for o in objectives}) != len(objectives):
        raise BadInput("names an objective twice", path, "study.objectives")

    knob_tables = _included_knobs(meta.get("include"), path)
    own = get(table, "knobs", "a table", path, "", {})
    knob_tables.update({n: (k, path) for n, k in own.items()})
    knobs = [make_knob(n, k, f) for n, (k, f) in knob_tables.items()]
    constants = _constants(meta, path)
    constants.setdefault("cores", 0)   # replaced by the target's core count at run time
    space = SearchSpace(knobs, parse_constraints(table.get("constraints"), path), path, constants)

    baseline = get(meta, "baseline", "a table", path, "study", {})
    for k in baseline:
        if k not in space.knobs:
            raise BadInput(f"baseline names unknown knob '{k}'", path, "study.baseline")
    try:
        space.complete(baseline)
    except ValueError as e:
        raise BadInput(str(e), path, "study.baseline") from None
    seeds = get(meta, "seeds", "a list", path, "study", [])
    if not all(isinstance(p, dict) for p in seeds):
        raise BadInput("must be a list of tables of knob values", path, "study.seeds")
    for i, point in enumerate(seeds):
        unknown = [k for k in point if k not in space.knobs]
        if unknown:
            raise BadInput(f"seed names unknown knob '{unknown[0]}'", path, f"study.seeds[{i}]")
        try:
            space.complete(point)
        except ValueError as e:
            raise BadInput(str(e), path, f"study.seeds[{i}]") from None
    trials = get(meta, "trials", "an integer", path, "study", 40)
    if trials < 1:
        raise BadInput(f"must be a positive integer, got {trials}", path, "study.trials")
    sampler = get(meta, "sampler", "a string", path, "study", "auto")
    if sampler not in SAMPLERS:
        raise BadInput(f"unknown sampler '{sampler}' (known: {', '.join(SAMPLERS)})", path, "study.sampler")
    return StudySpec(
        name=path.stem, file=path, description=str(get(meta, "description", "a string", path, "study", "")),
        space=space, program=load_program(table.get("program"), path), target=target,
        objectives=tuple(objectives), trials=trials, sampler=sampler,
        baseline=dict(baseline), reference_point=_reference_point(meta, objectives, path),
        compatible_targets=tuple(get(meta, "targets", "a list of strings", path, "study", ())),
        seeds=tuple(dict(p) for p in seeds),
    )

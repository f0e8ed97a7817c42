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
from tuner.space import SearchSpace, parse_constraints
from tuner.tomlfile import check_keys, load_toml

STUDY_KEYS = {"description", "target", "objectives", "trials", "baseline", "include", "sampler",
              "reference_point", "targets", "constants"}


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


def _included_knobs(include: Any, study_file: Path) -> dict[str, Any]:
    """Knob tables from include files; `{file=..., tags=[...], names=[...]}` picks a subset."""
    if include is None:
        return {}
    if not isinstance(include, list):
        raise BadInput("'include' must be a list", study_file, "study.include")
    knobs: dict[str, Any] = {}
    for i, item in enumerate(include):
        spec = {"file": item} if isinstance(item, str) else item
        if not isinstance(spec, dict) or "file" not in spec:
            raise BadInput("each include is a path or {file = ..., tags = [...]}", study_file, f"study.include[{i}]")
        check_keys(spec, {"file", "tags", "names", "exclude"}, study_file, f"study.include[{i}]")
        path = library.find_include(spec["file"], study_file)
        table = load_toml(path)
        check_keys(table, {"knobs", "description", "generated_by"}, path, "")
        tags = set(spec.get("tags", ()))
        names = set(spec.get("names", ()))
        exclude = set(spec.get("exclude", ()))
        for name, knob in table.get("knobs", {}).items():
            if name in exclude:
                continue
            if names and name not in names:
                continue
            if tags and not tags & set(knob.get("tags", ())):
                continue
            knobs[name] = (knob, path)
    return knobs


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
    objective_names = meta.get("objectives")
    if not isinstance(objective_names, list) or not objective_names:
        raise BadInput("a study needs objectives = [\"...\", ...]", path, "study.objectives")
    objectives = []
    for obj in objective_names:
        try:
            objectives.append(load_objective(obj))
        except BadInput as e:
            raise BadInput(e.message, path, "study.objectives") from None

    knob_tables = _included_knobs(meta.get("include"), path)
    own = table.get("knobs", {})
    if not isinstance(own, dict):
        raise BadInput("[knobs.NAME] tables expected", path, "knobs")
    knob_tables.update({n: (k, path) for n, k in own.items()})
    knobs = [make_knob(n, k, f) for n, (k, f) in knob_tables.items()]
    constants = dict(meta.get("constants", {}))
    constants.setdefault("cores", 0)   # replaced by the target's core count at run time
    space = SearchSpace(knobs, parse_constraints(table.get("constraints"), path), path, constants)

    baseline = meta.get("baseline", {})
    if not isinstance(baseline, dict):
        raise BadInput("baseline must be a table of knob values", path, "study.baseline")
    for k in baseline:
        if k not in space.knobs:
            raise BadInput(f"baseline names unknown knob '{k}'", path, "study.baseline")
    try:
        space.complete(baseline)
    except ValueError as e:
        raise BadInput(str(e), path, "study.baseline") from None
    trials = meta.get("trials", 40)
    if not isinstance(trials, int) or trials < 1:
        raise BadInput("trials must be a positive integer", path, "study.trials")
    return StudySpec(
        name=path.stem, file=path, description=str(meta.get("description", "")), space=space,
        program=load_program(table.get("program"), path), target=str(meta["target"]),
        objectives=tuple(objectives), trials=trials, sampler=str(meta.get("sampler", "auto")),
        baseline=dict(baseline), reference_point=dict(meta.get("reference_point", {})),
        compatible_targets=tuple(meta.get("targets", ())),
    )

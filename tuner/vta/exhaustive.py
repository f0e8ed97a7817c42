"""The exact Pareto front of a VTA study, by evaluating every configuration of its space.

The hardware goes to the simulator as arguments, so one binary evaluates the whole space: the
flagship `resnet18-vta` (9,000 configurations, 4,901 within its declared constraints) takes a
few minutes on two cores. Results are cached under $TUNE_CACHE (default ~/.cache/tune) in
`exhaustive/`, keyed by everything that decides them: the simulator source, the study and its
include files, the network files its arguments name, the compiler. A sampler study (issue #10)
compares its fronts with this one:

    from tuner.vta.exhaustive import exact_front
    front = exact_front("resnet18-vta")            # evaluates (or loads) all configurations
    front.hypervolume((200.0, 1.0, 1.0))           # the exact front's hypervolume there
    front.configs, front.values                    # the front's configurations and values
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from tuner import pareto
from tuner.buildcache import compiler_identity
from tuner.study import StudySpec, load_study
from tuner.vta._sim import build, cache_root, parse_output, source_dir


@dataclass(frozen=True)
class Evaluated:
    """Every configuration of a study's space and what the simulator said about it."""

    study: str
    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    configs: tuple[dict[str, Any], ...]
    values: np.ndarray                  # (n, k); nan rows: infeasible (declared or reported)
    reasons: tuple[str | None, ...]     # why a row is infeasible, else None
    eval_s: float                       # simulator wall time spent (0 when loaded from cache)
    cached: bool

    @property
    def feasible(self) -> np.ndarray:
        return np.all(np.isfinite(self.values), axis=1)

    def front(self) -> "Front":
        mask = pareto.nondominated_mask(self.values, self.directions)
        idx = np.flatnonzero(mask)
        return Front(self.objectives, self.directions, tuple(self.configs[i] for i in idx), self.values[idx])


@dataclass(frozen=True)
class Front:
    """The exact front: its configurations and their objective values (rows match)."""

    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    configs: tuple[dict[str, Any], ...]
    values: np.ndarray

    def hypervolume(self, reference: Sequence[float]) -> float:
        """Hypervolume dominated by the front up to `reference` (tuner.pareto's definition)."""
        return pareto.hypervolume(self.values, self.directions, reference)


def space_configs(spec: StudySpec) -> list[dict[str, Any]]:
    """Every configuration of the (all-discrete) space, in knob order."""
    names, domains = [], []
    for knob in spec.space.knobs.values():
        values = getattr(knob, "values", None) or getattr(knob, "choices", None)
        if values is None:
            raise ValueError(f"knob '{knob.name}' is not discrete; the space cannot be enumerated")
        names.append(knob.name)
        domains.append(list(values))
    return [dict(zip(names, combo)) for combo in itertools.product(*domains)]


def _violated(spec: StudySpec, config: dict[str, Any]) -> str | None:
    broken = spec.space.violations(config)
    return f"violates a declared constraint: {broken[0]}" if broken else None


def _argv(spec: StudySpec, binary: Path, config: dict[str, Any]) -> list[str]:
    """What the study's target runs for `config`: the program's arguments, then the knobs'."""
    return [str(binary), *spec.program.args, *spec.space.render(config).args]


def _cache_key(spec: StudySpec, configs: list[dict[str, Any]], cc: str) -> str:
    h = hashlib.sha256(b"vta-exhaustive-v1")
    h.update((source_dir() / "vta_sim.c").read_bytes())
    h.update(compiler_identity(cc).encode())
    h.update(Path(spec.file).read_bytes())
    for knob in spec.space.knobs.values():
        h.update(json.dumps([knob.name, knob.render(knob.default).args], default=str).encode())
    for a in spec.program.args:
        h.update(a.encode())
        if a.endswith(".toml") and Path(a).is_file():       # a network file: its content counts
            h.update(Path(a).read_bytes())
    h.update(json.dumps([o.metric for o in spec.objectives]).encode())
    h.update(json.dumps(configs, sort_keys=True, default=str).encode())
    return h.hexdigest()[:24]


def evaluate_all(study: str = "resnet18-vta", jobs: int = 2, cache: bool = True, cc: str = "gcc",
                 progress: Callable[[int, int], None] | None = None) -> Evaluated:
    """Evaluate every configuration of `study` (or load the cached evaluation)."""
    import time

    spec = load_study(study)
    configs = space_configs(spec)
    names = tuple(o.name for o in spec.objectives)
    directions = tuple(o.direction for o in spec.objectives)
    path = cache_root().parent / "exhaustive" / f"{spec.name}-{_cache_key(spec, configs, cc)}.json"
    if cache and path.is_file():
        doc = json.loads(path.read_text())
        values = np.array([[np.nan if v is None else v for v in row] for row in doc["values"]], dtype=float)
        return Evaluated(spec.name, names, directions, tuple(configs), values.reshape(len(configs), len(names)),
                         tuple(doc["reasons"]), 0.0, True)
    binary = build(cc=cc).path
    values = np.full((len(configs), len(names)), np.nan)
    reasons: list[str | None] = [None] * len(configs)
    todo = []
    for i, config in enumerate(configs):
        why = _violated(spec, config)
        if why:
            reasons[i] = why
        else:
            todo.append(i)

    def one(i: int) -> tuple[int, dict | None, str | None]:
        p = subprocess.run(_argv(spec, binary, configs[i]), capture_output=True, text=True,
                           timeout=spec.program.timeout_s or 120)
        if p.returncode != 0:
            raise RuntimeError(f"simulator failed on {configs[i]}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
        doc, _ = parse_output(p.stdout)
        return i, doc.get("metrics"), doc.get("infeasible")

    t0 = time.perf_counter()
    done = 0
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for i, metrics, infeasible in pool.map(one, todo):
            if infeasible is not None:
                reasons[i] = str(infeasible)
            else:
                row = [o.value(metrics or {}) for o in spec.objectives]
                values[i] = [np.nan if v is None else v for v in row]
            done += 1
            if progress:
                progress(done, len(todo))
    eval_s = time.perf_counter() - t0
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        rows = [[None if not np.isfinite(v) else float(v) for v in row] for row in values]
        tmp.write_text(json.dumps({"study": spec.name, "objectives": names, "values": rows, "reasons": reasons,
                                   "eval_s": eval_s}))
        tmp.replace(path)
    return Evaluated(spec.name, names, directions, tuple(configs), values, tuple(reasons), eval_s, False)


def exact_front(study: str = "resnet18-vta", jobs: int = 2, cache: bool = True) -> Front:
    """The exact Pareto front of `study` (evaluated once, then read from the cache)."""
    return evaluate_all(study, jobs=jobs, cache=cache).front()

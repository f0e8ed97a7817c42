"""Warm start: a new campaign begins with a finished study's best configurations.

`tune explore NEW --warm-start OLD` enqueues OLD's Pareto front (its verified,
non-dominated configurations) as NEW's first trials, after NEW's baseline, so the sampler
starts from what worked: e.g. a study moved from `local` to `qemu-aarch64`, or a study whose
space grew. Knobs that NEW lacks are dropped, knobs that OLD lacked take their defaults, and
a value outside NEW's domain drops that configuration. It happens once, on NEW's first start;
a resume never enqueues again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuner.errors import BadInput


def front_configs(source: str, results_root: Path) -> tuple[str, list[dict[str, Any]]]:
    """(the source study's name, the configurations of its front), best-known first."""
    from tuner.campaign import open_study
    from tuner.report import build_report
    from tuner.storage import storage_exists
    from tuner.study import load_study

    spec = load_study(source)
    results = results_root / spec.name
    if not storage_exists(results, None):
        raise BadInput(f"no campaign for '{spec.name}' in {results} to warm-start from", None, "--warm-start")
    report = build_report(spec, open_study(spec, results, None, create=False))
    return spec.name, [dict(r.params) for r in report.front]


def enqueue(study: Any, space: Any, configs: list[dict[str, Any]]) -> int:
    """Enqueue each configuration that fits `space`; returns how many were enqueued."""
    n = 0
    seen: set[str] = set()
    for cfg in configs:
        try:
            kept = {k: space.knobs[k].coerce(v) for k, v in cfg.items() if k in space.knobs}
            full = space.complete(kept)
        except (ValueError, TypeError):
            continue
        if space.violations(full):
            continue
        key = repr(sorted(full.items()))
        if key in seen:
            continue
        seen.add(key)
        study.enqueue_trial({k: space.knobs[k].encode(v) for k, v in full.items()})
        n += 1
    return n


def warm_start(study: Any, space: Any, source: str, results_root: Path) -> str | None:
    """On a new study's first start, enqueue `source`'s front; a line to print, or None."""
    started = [t for t in study.get_trials(deepcopy=False) if t.state.name != "WAITING"]
    if started:
        return None
    name, configs = front_configs(source, results_root)
    n = enqueue(study, space, configs)
    return f"warm start: {n} of {len(configs)} configurations of {name}'s front enqueued"

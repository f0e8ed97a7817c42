"""Warm start: a new campaign begins with a finished study's best configurations.

`tune explore NEW --warm-start OLD` proposes OLD's Pareto front (its verified, non-dominated
configurations) as NEW's first trials, right after NEW's baseline, so the sampler starts from
what worked: e.g. a study moved from `local` to `qemu-aarch64`, or a study whose space grew.
It is a proposal source (tuner.proposals): a configuration is due while no trial of NEW
carries it, so a kill or a resume neither loses nor repeats one. Knobs that NEW lacks are
dropped, knobs that OLD lacked take their defaults, and a configuration outside NEW's
domain or constraints is left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuner.errors import BadInput


def front_configs(source: str, results_root: Path) -> tuple[str, list[dict[str, Any]]]:
    """(the source study's name, the configurations of its front), best-known first."""
    from tuner.engine import load_campaign
    from tuner.report import build_report

    try:
        spec, study = load_campaign(source, results_root, None)
    except BadInput as e:
        raise BadInput(f"cannot warm-start from '{source}': {e.message}", None, "--warm-start") from None
    return spec.name, [dict(r.params) for r in build_report(spec, study).front]


def fit(space: Any, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The configurations that fit `space` (completed with its defaults), without repeats."""
    from tuner.space import config_key

    out, seen = [], set()
    for cfg in configs:
        try:
            full = space.complete({k: space.knobs[k].coerce(v) for k, v in cfg.items() if k in space.knobs})
        except (ValueError, TypeError):
            continue
        key = config_key(full)
        if space.violations(full) or key in seen:
            continue
        seen.add(key)
        out.append(full)
    return out


def warm_start(campaign: Any, source: str, results_root: Path) -> str:
    """Add `source`'s front to the campaign's proposals (after the baseline); a line to print."""
    from tuner.proposals import Proposal
    from tuner.result import TrialRecord, TrialStatus
    from tuner.space import config_key

    name, configs = front_configs(source, results_root)
    fitted = [(config_key(c), c) for c in fit(campaign.spec.space, configs)]

    def warm(history: Any) -> Any:
        taken = {r.config_key for r in history.trials.values()}
        for key, cfg in fitted:
            if key not in taken:
                return Proposal(dict(cfg), TrialRecord(-1, TrialStatus.RUNNING, dict(cfg), key))
        return None

    sources = campaign.proposals.sources
    sources.insert(max(len(sources) - 1, 0), warm)       # before retries, after the baseline
    from tuner import trials as T
    taken = {r.config_key for r in T.records(campaign.study, campaign.spec.objectives)}
    pending = sum(key not in taken for key, _ in fitted)
    return (f"warm start: {len(fitted)} of {len(configs)} configurations of {name}'s front "
            f"({pending} not yet measured here)")

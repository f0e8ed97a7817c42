"""Starting and opening campaigns: the engine decisions the command line used to make.

`tune explore` (and scripts, benchmarks, tests) start a campaign with `start`; every other
command reads one with `load_campaign`. What belongs here and not in the CLI: checking that the
constraints can be met (with the target's core count bound into the space first, by the
Evaluator), and finding a study's storage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import optuna

from tuner.seeds import obvious, source as obvious_points
from tuner.space import config_key
from tuner.campaign import Campaign, Observer, Options, Screen
from tuner.errors import BadInput
from tuner.evaluate import Evaluator
from tuner.measure.confirm import Confirming
from tuner.storage import storage_exists
from tuner.study import StudySpec, load_study
from tuner.studystore import open_study
from tuner.targets import Target


def results_dir(results_root: Path | str, spec: StudySpec) -> Path:
    """Where a study's journal, builds and exports live: RESULTS/STUDY."""
    return Path(results_root) / spec.name


def start(spec: StudySpec, target: Target, options: Options, screen: Screen | None = None,
          observers: Sequence[Observer] = (), measuring: bool = True, seeds: bool = True) -> Campaign:
    """A campaign ready to run (or resume). Bad input is refused before any storage is created.

    `measuring`: take timings the campaign's way (tuner.measure.confirm: the baseline re-measured
    as it goes, racing, confirmation of would-be front points, as the target's [measure] table
    says); False measures each configuration as the target says, and nothing more.
    `seeds`: measure the obvious points after the baseline (tuner.seeds)."""
    evaluator = Evaluator(spec, target, options.results_dir)     # binds the target's cores first
    spec.space.check_satisfiable(options.pins)
    campaign = Campaign(spec, target, options, screen, evaluator, observers)
    seeded = obvious(spec.space, spec.baseline, spec.seeds) if seeds and not options.pins else []
    if measuring:     # the obvious points are judged by a paired comparison with the baseline
        campaign.evaluator = Confirming(evaluator, campaign.history, seeded=[config_key(c) for c in seeded])
    if seeded:        # the obvious points, right after the baseline (before retries)
        campaign.proposals.sources.insert(len(campaign.proposals.sources) - 1, obvious_points(seeded))
    return campaign


def load_campaign(study: str, results_root: Path | str, storage_url: str | None) -> tuple[StudySpec, optuna.Study]:
    """An existing campaign, read-only: its study spec and its Optuna study."""
    spec = load_study(study)
    out = results_dir(results_root, spec)
    if not storage_exists(out, storage_url):
        raise BadInput(f"no campaign yet for '{spec.name}' in {out} (run `tune explore {spec.name}`)")
    try:
        return spec, open_study(spec, out, storage_url, create=False)
    except KeyError:
        raise BadInput(f"no study '{spec.name}' in the storage") from None


__all__ = ["load_campaign", "results_dir", "start"]

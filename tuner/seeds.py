"""The obvious configurations: what anyone would try first, measured right after the baseline.

A search that spends its budget on random corners of a 384-knob flag space can end behind
plain `-O3 -march=native`, which any user would have tried first. So a campaign measures these
points early, whatever the sampler, and no front ends behind them:

* declared in the study: `[study] seeds = [{ opt_level = "-O2" }, ...]` (each completed with the
  knobs' defaults, like the baseline);
* otherwise derived from the knobs: the baseline with the -O level (a knob tagged `olevel`, or
  named `opt_level`) at -O2, -O3 and -Os, and the baseline at -O3 with every knob that offers
  the host's own value set to it (`-march=native`, `-mtune=native`).

Points that break the space's constraints or equal the baseline are left out. A seeded point is
judged by paired launches against the baseline (tuner.measure.confirm), not by one screening
series, which can land in a binary's slow mode; the surrogate never prunes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from tuner.result import TrialRecord, TrialStatus
from tuner.space import Config, SearchSpace, config_key

if TYPE_CHECKING:
    from tuner.history import History
    from tuner.proposals import Proposal

OBVIOUS_LEVELS = ("-O2", "-O3", "-Os")
TUNED_LEVEL = "-O3"


def _level_knob(space: SearchSpace) -> Any | None:
    for knob in space.knobs.values():
        if knob.name == "opt_level" or "olevel" in knob.tags:
            if any(str(c) in OBVIOUS_LEVELS for c in getattr(knob, "choices", ())):
                return knob
    return None


def _native_values(space: SearchSpace) -> dict[str, Any]:
    """Knobs with a choice naming the host itself, and that choice."""
    out = {}
    for knob in space.knobs.values():
        for choice in getattr(knob, "choices", ()):
            if isinstance(choice, str) and choice.endswith("=native"):
                out[knob.name] = choice
                break
    return out


def derived(space: SearchSpace, baseline: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The obvious points of a space, as partial configurations over the baseline."""
    level = _level_knob(space)
    points: list[dict[str, Any]] = []
    if level is not None:
        points += [{**baseline, level.name: lv} for lv in OBVIOUS_LEVELS if lv in level.choices]
    native = _native_values(space)
    if native:
        top = {level.name: TUNED_LEVEL} if level is not None and TUNED_LEVEL in level.choices else {}
        points.append({**baseline, **top, **native})
    return points


def obvious(space: SearchSpace, baseline: Mapping[str, Any] | None,
            declared: Sequence[Mapping[str, Any]] | None = None) -> list[Config]:
    """Full configurations to measure after the baseline, in order, without repeats."""
    base = dict(baseline or {})
    partials = list(declared) if declared else derived(space, base)
    skip = {config_key(space.complete(base))} if baseline else set()
    out: list[Config] = []
    for partial in partials:
        config = space.complete(partial)
        key = config_key(config)
        if key in skip or space.violations(config):
            continue
        skip.add(key)
        out.append(config)
    return out


def source(configs: Sequence[Config]) -> Callable[["History"], "Proposal | None"]:
    """A proposal source for the campaign (`Campaign.proposals.sources`) over `obvious(...)`:
    the first obvious point that no trial has carried yet (an interrupted one comes back as a
    retry). Its record says `seeded`: the surrogate does not screen it, and the measurement
    (tuner.measure.confirm) confirms it against the baseline whatever its screening figure."""
    from tuner.proposals import Proposal

    points = [(dict(config), config_key(config)) for config in configs]

    def seeds(history: "History") -> "Proposal | None":
        tried = {r.config_key for r in history.trials.values()}
        for config, key in points:
            if key not in tried:
                return Proposal(config, TrialRecord(-1, TrialStatus.RUNNING, config, key, seeded=True))
        return None
    return seeds


__all__ = ["derived", "obvious", "source"]

"""Configurations a campaign runs before it asks the sampler: the study's baseline, and retries.

They are derived from the history at every trial rather than queued in the storage, so nothing
is lost or doubled when processes die or several workers share a study: the baseline is due
while no trial carries its configuration; an interrupted trial's configuration is due while no
trial finished it and none is measuring it. A new kind of proposal (seeded points) is one more
source: a function `(history) -> Proposal | None` in `Proposals.sources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from tuner.history import History
from tuner.result import TrialRecord, TrialStatus
from tuner.space import Config, SearchSpace, config_key


@dataclass(frozen=True)
class Proposal:
    """A configuration to run as it is, and the record it starts from (baseline, retry_of)."""

    config: Config
    record: TrialRecord

    def params(self, space: SearchSpace, pins: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Optuna params and distributions for it (pinned knobs are not the sampler's)."""
        names = [k for k in self.config if k not in pins]
        return ({k: space.knobs[k].encode(self.config[k]) for k in names},
                {k: space.distribution(space.knobs[k]) for k in names})


Source = Callable[[History], "Proposal | None"]


class Proposals:
    def __init__(self, space: SearchSpace, baseline: Mapping[str, Any] | None, pins: Mapping[str, Any]) -> None:
        self.space = space
        self.pins = dict(pins)
        self.sources: list[Source] = []
        if baseline and not pins:     # a pinned campaign explores a slice that may not hold it
            self.sources.append(self._baseline_source(space.complete(baseline)))
        self.sources.append(self._retry)

    def next(self, history: History) -> Proposal | None:
        for source in self.sources:
            proposal = source(history)
            if proposal is not None:
                return proposal
        return None

    @staticmethod
    def _baseline_source(config: Config) -> Source:
        key = config_key(config)

        def baseline(history: History) -> Proposal | None:
            if any(r.config_key == key for r in history.trials.values()):
                return None       # measured, measuring, or interrupted (then retried as such)
            return Proposal(config, TrialRecord(-1, TrialStatus.RUNNING, config, key, baseline=True))
        return baseline

    def _retry(self, history: History) -> Proposal | None:
        """The oldest interrupted configuration that nobody finished or is measuring."""
        taken = set(history.done) | {r.config_key for r in history.running.values()}
        for rec in history.records():
            if rec.status != TrialStatus.INTERRUPTED or not rec.config_key or not rec.config:
                continue
            # the key of the configuration itself, not the one stored (an old journal's may differ):
            # a retry whose configuration was measured since must not come back for ever
            key = config_key(rec.config)
            if key in taken or rec.config_key in taken or not self._agrees(rec.config):
                continue
            return Proposal(dict(rec.config), TrialRecord(-1, TrialStatus.RUNNING, dict(rec.config), key,
                                                          baseline=rec.baseline, seeded=rec.seeded,
                                                          retry_of=rec.number))
        return None

    def _agrees(self, config: Mapping[str, Any]) -> bool:
        """A retry must respect this run's pins (`--set`), or it would measure outside them."""
        return all(config.get(k) == v for k, v in self.pins.items())


__all__ = ["Proposal", "Proposals", "Source"]

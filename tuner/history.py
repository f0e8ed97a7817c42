"""What a campaign knows of its study: finished trials by configuration, and what runs now.

The loop refreshes it from one storage read per trial (every worker's trials, so workers
sharing a storage do not measure one configuration twice) and hands it to whoever decides
something from the past: deduplication, the surrogate policy (`screen(config, history)`),
retries, the systematic-failure check. It holds records only, never the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

from tuner.objectives import Objective
from tuner.result import TrialRecord, TrialStatus


@dataclass(frozen=True)
class Told:
    """What Optuna was told for a finished trial (a duplicate is told the same)."""

    values: tuple[float, ...] | None
    constraints: tuple[tuple[str, float], ...] = ()


@dataclass
class History:
    objectives: Sequence[Objective]
    trials: dict[int, TrialRecord] = field(default_factory=dict)      # number -> record, every state
    done: dict[str, TrialRecord] = field(default_factory=dict)        # config_key -> first finished
    told: dict[str, Told] = field(default_factory=dict)               # config_key -> told for `done`
    running: dict[int, TrialRecord] = field(default_factory=dict)     # number -> live RUNNING (any worker)
    programs: dict[str, int] = field(default_factory=dict)           # program_key -> the trial that ran it

    # --- filled by the loop ------------------------------------------------------------------
    def add(self, rec: TrialRecord, told: Told | None = None) -> None:
        """A record seen in the storage or just told; finished ones are learned for good."""
        self.trials[rec.number] = rec
        if rec.status != TrialStatus.RUNNING:
            self.running.pop(rec.number, None)
        # a skipped (pruned) configuration is judged for good too, though it does not count: a
        # re-proposal of it is a duplicate, told what it was told
        judged = rec.finished or rec.status == TrialStatus.PRUNED
        if judged and rec.config_key and rec.status != TrialStatus.DUPLICATE \
                and rec.config_key not in self.done:
            self.done[rec.config_key] = rec
            if told is not None:
                self.told[rec.config_key] = told
        if rec.program_key and rec.measured and rec.status != TrialStatus.DUPLICATE:
            self.programs.setdefault(rec.program_key, rec.number)

    def set_running(self, live: Sequence[TrialRecord]) -> None:
        """The trials live workers are measuring now (replaces the previous look)."""
        self.running = {r.number: r for r in live}

    # --- asked by deduplication, the surrogate, retries -------------------------------------------
    def prior(self, key: str, before: int) -> TrialRecord | None:
        """The trial that measured this configuration, or a trial asked before trial `before`
        that is measuring it, if any."""
        if key in self.done:
            return self.done[key]
        return next((r for r in self.running.values() if r.config_key == key and r.number < before), None)

    def later(self, key: str, after: int) -> list[TrialRecord]:
        """Running trials asked after trial `after` with this configuration."""
        return [r for r in self.running.values() if r.config_key == key and r.number > after]

    def same_program(self, program_key: str) -> int | None:
        """The trial that ran this program (the same built bytes, args and env), if any: another
        configuration that builds it is a duplicate of that trial, as a repeated configuration is."""
        number = self.programs.get(program_key)
        return number if number is not None and self.trials[number].config_key in self.told else None

    @property
    def finished(self) -> int:
        """Trials that count toward the budget, every worker's."""
        return sum(r.finished for r in self.trials.values())

    def records(self) -> Iterator[TrialRecord]:
        """Every trial seen, in number order."""
        return (self.trials[n] for n in sorted(self.trials))

    def complete(self) -> list[TrialRecord]:
        """Verified configurations with objective values (one per configuration)."""
        return [r for r in self.done.values() if r.status == TrialStatus.COMPLETE]

    def failures(self) -> list[TrialRecord]:
        """Configurations that failed or broke a constraint (one per configuration)."""
        return [r for r in self.done.values() if r.status in (TrialStatus.FAILED, TrialStatus.INFEASIBLE)]

    def measured(self) -> list[TrialRecord]:
        """Trials built and run, in number order (the systematic-failure check reads the first)."""
        return [r for r in self.records() if r.measured]

    def worst_values(self) -> list[float] | None:
        """The worst value seen of each objective (placeholders told for an infeasible trial)."""
        complete = self.complete()
        if not complete:
            return None
        return [o.worst(r.values[o.name] for r in complete) for o in self.objectives]

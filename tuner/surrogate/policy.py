"""The pruning policy: skip candidates the surrogate is confident cannot improve the front.

After a warm-up, the surrogate predicts a candidate's objectives with an uncertainty. Its
*optimistic* point (the mean moved `kappa` tree-spreads towards better) is added to the measured
front: if even that would raise the front's hypervolume by less than `min_gain` of it (a
dominated point raises it by nothing), the candidate is neither built nor measured. Judging by
hypervolume rather than plain dominance matters with three or more objectives, where most
proposals are non-dominated but add almost nothing. A pruned candidate is recorded with its
predictions and told to the sampler with the predicted values, so the sampler learns the region
is poor and does not propose it again and again. A share of would-be-pruned candidates is
measured anyway (audits); an audit whose real gain exceeds `min_gain` is a false prune, and when
they exceed `max_false_rate` the policy tightens (more optimism, a smaller threshold).

Screening is not free: the policy stands aside (no refit, no prune; every candidate measured,
and its record says why) while a measurement costs less than screening it would save
(`tuner.surrogate.worth`; before the first fit, by a probe that fits one objective's model),
and comes back when measurements get expensive.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner.evaluate import Outcome
from tuner.objectives import sign
from tuner.pareto import default_reference, hypervolume, nondominated_mask
from tuner.records import FailureReason, Measurement
from tuner.history import History
from tuner.result import TrialRecord
from tuner.space import Config, config_key
from tuner.study import StudySpec
from tuner.surrogate.encode import Encoder
from tuner.surrogate.model import Surrogate
from tuner.surrogate.worth import Ledger, Verdict, measurement_seconds


@dataclass
class Settings:
    # Chosen with bench/surrogate.py on resnet18-vta (3 seeds, 100 proposals): kappa 0.5 and
    # 0.2% did the proposals with 41% fewer measurements and ended within 1% of the
    # hypervolume on every seed (0.991-0.992); 0.1% saved 35% (0.992-1.003); kappa 1 and 0.5%
    # saved 47% but lost 1.3% on average; a warm-up of 8 instead of 12 lost 2.7% on one seed.
    warmup: int = 12            # measured trials before the first prune
    kappa: float = 0.5          # optimism, in predictive standard deviations
    min_gain: float = 0.002     # prune below this share of the front's hypervolume
    audit_rate: float = 0.15    # share of would-be-pruned candidates measured anyway
    max_false_rate: float = 0.10
    refit_every: int = 4        # new measurements between refits
    p_fail_prune: float = 0.9   # prune a predicted build/run failure above this chance
    stand_aside: bool = True    # no screening while a measurement costs less than screening saves
    cost_window: int = 16       # recent measured trials whose median time is a measurement's cost


def _minimised(values: np.ndarray, directions: list[str]) -> np.ndarray:
    return values * np.array([sign(d) for d in directions])


def gain(front: np.ndarray, point: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(hypervolume the point adds to the front, the front's hypervolume); minimisation."""
    minimize = ["minimize"] * front.shape[1]
    base = hypervolume(front, minimize, reference)
    return hypervolume(np.vstack([front, point]), minimize, reference) - base, base


class PruningPolicy:
    """The campaign's `screen` hook: returns an Outcome to record instead of measuring, or None."""

    def __init__(self, spec: StudySpec, settings: Settings | None = None, seed: int | None = None) -> None:
        self.spec = spec
        self.settings = settings or Settings()
        self.kappa = self.settings.kappa
        self.min_gain = self.settings.min_gain
        self.encoder = Encoder(spec.space)
        self.model = Surrogate(seed=seed or 0)
        self.rng = random.Random(seed)
        self.directions = [o.direction for o in spec.objectives]
        self._fitted_on = -1
        self.audits = 0
        self.false_prunes = 0
        self._pending_audit: str | None = None
        self._pending_front: tuple[np.ndarray, np.ndarray] | None = None   # (front, reference)
        self.ledger = Ledger()
        self.verdict: Verdict | None = None       # the last cost comparison (None: not yet made)
        self._notes: dict[str, dict[str, Any]] = {}   # config key -> why it was not screened

    # --- the data the surrogate learns from: measured trials only ---------------------
    def _values(self, recs: list[TrialRecord]) -> np.ndarray:
        return np.array([[r.values[o.name] for o in self.spec.objectives] for r in recs], dtype=float)

    def __call__(self, config: Config, history: History) -> Outcome | None:
        t0 = time.perf_counter()
        # learns from one trial per configuration: verified ones, and failed or infeasible ones
        # (the classifier learns both)
        ok, failed = history.complete(), history.failures()
        if len(ok) < self.settings.warmup:
            return None
        if self.settings.stand_aside:
            self.verdict = self.ledger.verdict(
                measurement_seconds(history.measured(), self.settings.cost_window),
                self.settings.refit_every, self.settings.audit_rate)
            if self.verdict is not None and not self.verdict.worth:
                self._notes[config_key(config)] = self.verdict.record()
                return None                   # measured; observe() stores why it was not screened
        n = len(ok) + len(failed)
        fit_s = 0.0
        if self.settings.stand_aside and self.ledger.fits == 0 and self._probe(ok, history) is False:
            self._notes[config_key(config)] = self.verdict.record()
            return None
        if self._fitted_on < 0 or n - self._fitted_on >= self.settings.refit_every:
            t_fit = time.perf_counter()
            X_ok = self.encoder.encode([dict(r.config) for r in ok])
            X_all = self.encoder.encode([dict(r.config) for r in ok + failed])
            failed_mask = np.array([False] * len(ok) + [True] * len(failed))
            self.model.fit(X_ok, self._values(ok), X_all, failed_mask)
            self._fitted_on = n
            fit_s = time.perf_counter() - t_fit
            self.ledger.fitted(fit_s)
        pred = self.model.predict(self.encoder.encode([config])[0])
        Y = _minimised(self._values(ok), self.directions)
        front = Y[nondominated_mask(Y, ["minimize"] * Y.shape[1])]
        reference = default_reference(Y, ["minimize"] * Y.shape[1])
        optimistic = _minimised(pred.mean, self.directions) - self.kappa * pred.std
        added, base = gain(front, optimistic, reference)
        poor = added < self.min_gain * base
        likely_fail = pred.p_fail >= self.settings.p_fail_prune
        cost = time.perf_counter() - t0
        self.ledger.judged(cost - fit_s, poor or likely_fail)
        if not (poor or likely_fail):
            return None
        if self.rng.random() < self.settings.audit_rate:
            self._pending_audit = config_key(config)
            self._pending_front = (front, reference)
            return None                       # measured anyway: observe() checks the call
        why = (f"optimistic prediction adds {added / base:.2%} hypervolume (< {self.min_gain:.2%})"
               if poor else f"predicted to fail (p={pred.p_fail:.2f})")
        surrogate = {"mean": pred.mean.tolist(), "std": pred.std.tolist(), "p_fail": pred.p_fail,
                     "optimistic": _minimised(optimistic, self.directions).tolist(),
                     "gain": added / base if base else 0.0, "kappa": self.kappa, "min_gain": self.min_gain,
                     "why": why, "surrogate_s": cost, "predicted_failure": likely_fail and not poor}
        m = Measurement(metrics={}, reason=FailureReason.PRUNED, detail=why)
        return Outcome(config, m, values={o.name: float(v) for o, v in zip(self.spec.objectives, pred.mean)},
                       timing={"surrogate_s": cost},
                       extra={"surrogate": surrogate})

    def _probe(self, ok: list[TrialRecord], history: History) -> bool | None:
        """Before the first fit: is screening worth a fit, by a probe's estimate of its cost?
        False: stand aside (self.verdict says why); None: no estimate (fit and see)."""
        estimate = self.model.probe_seconds(self.encoder.encode([dict(r.config) for r in ok]), self._values(ok))
        if estimate is None:
            return None
        self.ledger.probed(estimate)
        self.verdict = self.ledger.verdict(measurement_seconds(history.measured(), self.settings.cost_window),
                                           self.settings.refit_every, self.settings.audit_rate)
        return None if self.verdict is None else self.verdict.worth

    def observe(self, outcome: Outcome) -> dict[str, Any] | None:
        """Called with every evaluated outcome, before it is judged. A candidate measured while the
        policy stood aside gets why in `outcome.extra["surrogate"]` (the record's `surrogate`
        field). After an audited candidate: was pruning it wrong? Returns the audit record."""
        note = self._notes.pop(config_key(outcome.config), None)
        if note is not None:
            outcome.extra.setdefault("surrogate", note)
        if self._pending_audit is None or config_key(outcome.config) != self._pending_audit:
            return None
        front, reference = self._pending_front
        self._pending_audit = None
        self.audits += 1
        false_prune = False
        if outcome.ok:
            y = _minimised(np.array([outcome.values[o.name] for o in self.spec.objectives]), self.directions)
            added, base = gain(front, y, reference)
            false_prune = added >= self.min_gain * base
        self.false_prunes += int(false_prune)
        if self.audits >= 4 and self.false_prunes / self.audits > self.settings.max_false_rate:
            self.kappa *= 1.5        # tighten: demand more confidence before pruning
            self.min_gain /= 2
        return {"false_prune": false_prune, "audits": self.audits, "false_prunes": self.false_prunes,
                "kappa": self.kappa, "min_gain": self.min_gain}

"""The pruning policy: skip candidates the surrogate is confident cannot reach the front.

After a warm-up, a candidate whose *optimistic* prediction (mean moved by kappa standard
deviations in the good direction) is still dominated by a measured front point, by a margin,
is neither built nor measured. It is recorded as pruned with its predictions, and told to
the sampler with the predicted values, so the sampler learns the region is poor and does
not propose it again and again. A share of would-be-pruned candidates is measured anyway
(audits); when audits show the front would have moved (a false prune), the policy tightens.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from tuner import trials as T
from tuner.pareto import nondominated_mask
from tuner.evaluate import Outcome
from tuner.records import FailureReason, Measurement
from tuner.space import Config, config_key
from tuner.study import StudySpec
from tuner.surrogate.encode import Encoder
from tuner.surrogate.model import Surrogate


@dataclass
class Settings:
    warmup: int = 16            # measured trials before the first prune
    kappa: float = 1.0          # optimism, in tree-spread standard deviations
    margin: float = 0.02        # of each objective's observed range
    audit_rate: float = 0.15    # share of would-be-pruned candidates measured anyway
    max_false_rate: float = 0.10
    refit_every: int = 4        # new measurements between refits
    p_fail_prune: float = 0.9   # prune a predicted build/run failure above this chance


def _minimised(values: np.ndarray, directions: list[str]) -> np.ndarray:
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    return values * sign


def safely_dominated(front: np.ndarray, point: np.ndarray, span: np.ndarray, margin: float) -> bool:
    """Some front point is at least as good in every objective and better by `margin` in total
    (objectives scaled by their observed span). Ties in one objective (resource counts that
    a configuration fixes exactly) do not save a candidate that is worse elsewhere."""
    weak = np.all(front <= point, axis=1)
    gap = ((point - front) / span).sum(axis=1)
    return bool(np.any(weak & (gap >= margin)))


class PruningPolicy:
    """The campaign's `screen` hook: returns an Outcome to record instead of measuring, or None."""

    def __init__(self, spec: StudySpec, settings: Settings | None = None, seed: int | None = None) -> None:
        self.spec = spec
        self.settings = settings or Settings()
        self.kappa = self.settings.kappa
        self.margin = self.settings.margin
        self.encoder = Encoder(spec.space)
        self.model = Surrogate(seed=seed or 0)
        self.rng = random.Random(seed)
        self.directions = [o.direction for o in spec.objectives]
        self._fitted_on = -1
        self.audits = 0
        self.false_prunes = 0
        self._pending_audit: str | None = None
        self._pending_front: np.ndarray | None = None

    # --- the data the surrogate learns from: measured trials only ---------------------
    def _measured(self, campaign: Any) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        ok, failed = [], []
        for t in campaign.done.values():
            status = t.user_attrs.get("result", {}).get("status")
            if status == T.COMPLETE and t.state == TrialState.COMPLETE:
                ok.append(t)
            elif status in (T.FAILED, T.INFEASIBLE):   # the classifier learns both
                failed.append(t)
        return ok, failed

    def _front(self, ok: list[FrozenTrial]) -> np.ndarray:
        Y = _minimised(np.array([t.values for t in ok], dtype=float), self.directions)
        return Y[nondominated_mask(Y, ["minimize"] * len(self.directions))]

    def __call__(self, config: Config, campaign: Any) -> Outcome | None:
        t0 = time.perf_counter()
        ok, failed = self._measured(campaign)
        if len(ok) < self.settings.warmup:
            return None
        n = len(ok) + len(failed)
        if self._fitted_on < 0 or n - self._fitted_on >= self.settings.refit_every:
            X_ok = self.encoder.encode([t.user_attrs["config"] for t in ok])
            X_all = self.encoder.encode([t.user_attrs["config"] for t in ok + failed])
            failed_mask = np.array([False] * len(ok) + [True] * len(failed))
            self.model.fit(X_ok, np.array([t.values for t in ok], dtype=float), X_all, failed_mask)
            self._fitted_on = n
        pred = self.model.predict(self.encoder.encode([config])[0])
        Y = _minimised(np.array([t.values for t in ok], dtype=float), self.directions)
        span = np.maximum(Y.max(axis=0) - Y.min(axis=0), 1e-12)
        mean = _minimised(pred.mean, self.directions)
        optimistic = mean - self.kappa * pred.std
        front = self._front(ok)
        dominated = safely_dominated(front, optimistic, span, self.margin)
        likely_fail = pred.p_fail >= self.settings.p_fail_prune
        cost = time.perf_counter() - t0
        if not (dominated or likely_fail):
            return None
        if self.rng.random() < self.settings.audit_rate:
            self._pending_audit = config_key(config)
            self._pending_front = front
            return None                       # measured anyway: observe() checks the call
        why = "predicted dominated by the front" if dominated else f"predicted to fail (p={pred.p_fail:.2f})"
        surrogate = {"mean": pred.mean.tolist(), "std": pred.std.tolist(), "p_fail": pred.p_fail,
                     "optimistic": (_minimised(optimistic, self.directions)).tolist(),
                     "kappa": self.kappa, "margin": self.margin, "why": why, "surrogate_s": cost}
        m = Measurement(metrics={}, reason=FailureReason.PRUNED, detail=why)
        return Outcome(config, m, values={o.name: float(v) for o, v in zip(self.spec.objectives, pred.mean)},
                       timing={"surrogate_s": cost},
                       extra={"surrogate": surrogate, "predicted_failure": likely_fail and not dominated})

    def observe(self, outcome: Outcome) -> dict[str, Any] | None:
        """After an audited candidate was measured: was pruning it wrong? Returns the audit record."""
        if self._pending_audit is None or config_key(outcome.config) != self._pending_audit:
            return None
        front = self._pending_front
        self._pending_audit = None
        self.audits += 1
        false_prune = False
        if outcome.ok and front is not None and len(front):
            y = _minimised(np.array([outcome.values[o.name] for o in self.spec.objectives]), self.directions)
            false_prune = not bool(np.any(np.all(front <= y, axis=1) & np.any(front < y, axis=1)))
        self.false_prunes += int(false_prune)
        if self.audits >= 4 and self.false_prunes / self.audits > self.settings.max_false_rate:
            self.kappa *= 1.5        # tighten: demand more confidence before pruning
            self.margin *= 1.5
        return {"false_prune": false_prune, "audits": self.audits, "false_prunes": self.false_prunes,
                "kappa": self.kappa, "margin": self.margin}

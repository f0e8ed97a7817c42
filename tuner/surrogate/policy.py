"""The pruning policy: skip candidates the surrogate is confident cannot improve the front.

After a warm-up, the surrogate predicts a candidate's objectives with an uncertainty. Its
*optimistic* point (the mean moved `kappa` tree-spreads towards better) is added to the measured
front: if even that would raise the front's hypervolume by less than `min_gain` of it (a
dominated point raises it by nothing), the candidate is neither built nor measured. Judging by
hypervolume rather than plain dominance matters with three or more objectives, where most
proposals are non-dominated but add almost nothing. A pruned candidate is recorded with its
predictions and told to the sampler with the predicted values, so the sampler learns the region
is poor and does not propose it again and again. A share of would-be-pruned candidates is
measured anyway (audits); an audit whose real gain exceeds `min_gain` is a false prune. When
they exceed `max_false_rate` the policy tightens (more optimism, a smaller threshold); when the
audits show it with confidence (the Wilson lower bound of the false-prune rate is above
`max_false_rate`: 1 false of 1 audit, 2 of 3, 3 of 6, ...) it stops pruning: every would-be prune
is measured and audited, and the trial's record says why, until enough right calls bring the
bound back under the limit. The counts come from the study's records, so a resumed campaign
keeps them. (Session 4, the sort kernel: 2 of 3 audits were false prunes and pruning went on at
the same rate.)

Screening is not free: the policy stands aside (no refit, no prune; every candidate measured,
and its record says why) while a measurement costs less than screening it would save
(`tuner.surrogate.worth`; before the first fit, by a probe that fits one objective's model),
and comes back when measurements get expensive.
"""

from __future__ import annotations

import math
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


def wilson_low(k: int, n: int, z: float = 1.96) -> float:
    """The lower end of the Wilson score interval (95% by default) of a rate seen k times in n:
    unlike k/n it says how sure a few audits make us (0.0 with no audits)."""
    if n <= 0:
        return 0.0
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z * z / n))


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
        self._pending: dict[str, tuple[np.ndarray, np.ndarray]] = {}   # audited key -> (front, reference)
        self._rows: dict[str, np.ndarray] = {}    # config key -> its encoding (encoded once)
        self.ledger = Ledger()
        self.verdict: Verdict | None = None       # the last cost comparison (None: not yet made)
        self._notes: dict[str, dict[str, Any]] = {}   # config key -> why it was not screened

    # --- the data the surrogate learns from: measured trials only ---------------------
    def _values(self, recs: list[TrialRecord]) -> np.ndarray:
        return np.array([[r.values[o.name] for o in self.spec.objectives] for r in recs], dtype=float)

    def _encode(self, configs: list[Config]) -> np.ndarray:
        """The feature rows of the measured configurations the models learn from; each is encoded
        once (the probe, the first fit and every refit read the same rows)."""
        rows = []
        for c in configs:
            key = config_key(c)
            if key not in self._rows:
                self._rows[key] = np.asarray(self.encoder.encode_one(c), dtype=float)
            rows.append(self._rows[key])
        return np.array(rows, dtype=float).reshape(len(configs), self.encoder.width)

    def _verdict(self, history: History) -> bool | None:
        """Does screening pay now (tuner.surrogate.worth)? Sets self.verdict; None: not known yet."""
        self.verdict = self.ledger.verdict(measurement_seconds(history.measured(), self.settings.cost_window),
                                           self.settings.refit_every, self.settings.audit_rate)
        return None if self.verdict is None else self.verdict.worth

    def gate(self, history: History) -> dict[str, Any] | None:
        """The audit gate: a note on why the policy prunes nothing now, or None. Counts the audits
        in the study's records (a resumed campaign keeps them; this process's own as they come)."""
        audits = [r.audit for r in history.records() if r.audit]
        self.audits = len(audits)
        self.false_prunes = sum(bool(a.get("false_prune")) for a in audits)
        low = wilson_low(self.false_prunes, self.audits)
        if low <= self.settings.max_false_rate:
            return None
        return {"stood_aside": True, "gate": "audits", "audits": self.audits, "false_prunes": self.false_prunes,
                "false_rate_low": low,
                "why": (f"audits found {self.false_prunes} false prunes in {self.audits} (95% lower bound of the "
                        f"false-prune rate {low:.0%} > the {self.settings.max_false_rate:.0%} limit): prunes "
                        "nothing, audits every would-be prune")}

    def __call__(self, config: Config, history: History) -> Outcome | None:
        t0 = time.perf_counter()
        # learns from one trial per configuration: verified ones, and failed or infeasible ones
        # (the classifier learns both)
        ok, failed = history.complete(), history.failures()
        if len(ok) < self.settings.warmup:
            return None
        key = config_key(config)
        if self.settings.stand_aside and (self._verdict(history) is False
                                          or (self.ledger.fits == 0 and self._probe(ok, history) is False)):
            self._notes[key] = self.verdict.record()
            return None                   # measured; observe() stores why it was not screened
        n = len(ok) + len(failed)
        fit_s = 0.0
        if self._fitted_on < 0 or n - self._fitted_on >= self.settings.refit_every:
            t_fit = time.perf_counter()
            X_all = self._encode([dict(r.config) for r in ok + failed])
            failed_mask = np.array([False] * len(ok) + [True] * len(failed))
            self.model.fit(X_all[:len(ok)], self._values(ok), X_all, failed_mask)
            self._fitted_on = n
            fit_s = time.perf_counter() - t_fit
            self.ledger.fitted(fit_s)
        pred = self.model.predict(np.asarray(self.encoder.encode_one(config), dtype=float))
        Y = _minimised(self._values(ok), self.directions)
        front = Y[nondominated_mask(Y, ["minimize"] * Y.shape[1])]
        reference = default_reference(Y, ["minimize"] * Y.shape[1])
        optimistic = _minimised(pred.mean, self.directions) - self.kappa * pred.std
        added, base = gain(front, optimistic, reference)
        poor = added < self.min_gain * base
        likely_fail = pred.p_fail >= self.settings.p_fail_prune
        if not (poor or likely_fail):
            self.ledger.judged(time.perf_counter() - t0 - fit_s, False)
            return None
        gated = self.gate(history)
        cost = time.perf_counter() - t0
        # judged poor, as an audit is, even while gated: the ledger's share is what screening
        # prunes once the audits agree again (counting it as kept would make the cost rule stand
        # aside for good, and no more audits could lift the gate)
        self.ledger.judged(cost - fit_s, True)
        if gated is not None or self.rng.random() < self.settings.audit_rate:
            self._pending[key] = (front, reference)
            if gated is not None:
                self._notes[key] = gated
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
        estimate = self.model.probe_seconds(self._encode([dict(r.config) for r in ok]), self._values(ok))
        if estimate is None:
            return None
        self.ledger.probed(estimate)
        return self._verdict(history)

    def observe(self, outcome: Outcome) -> dict[str, Any] | None:
        """Called with every evaluated outcome, before it is judged. A candidate measured while the
        policy stood aside gets why in `outcome.extra["surrogate"]` (the record's `surrogate`
        field). After an audited candidate: was pruning it wrong? Returns the audit record."""
        note = self._notes.pop(config_key(outcome.config), None)
        if note is not None:
            outcome.extra.setdefault("surrogate", note)
        pending = self._pending.pop(config_key(outcome.config), None)
        if pending is None:
            return None
        front, reference = pending
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

"""Is screening worth its cost? The pruning surrogate's own bookkeeping of time.

A pruned candidate saves one measurement; screening costs the surrogate's refits and
predictions. On a study whose trials are ~50 ms simulations (resnet18-vta) a Gaussian-process
refit of 0.2-0.8 s costs more than all the measurements it could save, so the surrogate made
the campaign slower. The policy therefore keeps a ledger of what it spent and what it judged,
and compares, per screened candidate:

* expected saving = share of candidates pruned x (1 - audit rate) x cost of a measurement
  (the median evaluation time, build + run + verify, of the study's recent measured trials:
  the history's own timing, so it follows trials that get cheaper or dearer);
* expected cost   = a prediction + a refit x the refits per candidate (a refit every
  `refit_every` new measurements; a candidate becomes a measurement unless pruned).

When the saving is below the cost the policy stands aside: no refit, no prune, every
candidate measured, and each such trial records why. It comes back as soon as measurements get
expensive enough. The share pruned follows Laplace's rule of succession ((pruned + 1) /
(screened + 2), 1/2 before any candidate was judged). What a refit costs is first estimated from
a probe (the first objective's model alone, times the number of objectives: see
Surrogate.probe_seconds): when even that says screening does not pay, the policy stands aside
having paid a fraction of one fit; otherwise it fits for real and the ledger holds real times.
Generic: nothing here knows the study; only seconds and counts.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Sequence

from tuner.result import TrialRecord


def measurement_seconds(measured: Sequence[TrialRecord], window: int) -> float | None:
    """The cost of a measurement: median evaluation seconds of the last `window` measured trials
    (None when none recorded a time, e.g. records from an older tune)."""
    times = [_seconds(r.timing) for r in measured[-window:]]
    times = [t for t in times if t is not None]
    return statistics.median(times) if times else None


def _seconds(timing: Any) -> float | None:
    if "total_s" in timing:
        return float(timing["total_s"])
    if "build_s" in timing or "run_s" in timing:
        return float(timing.get("build_s", 0.0)) + float(timing.get("run_s", 0.0))
    return None


@dataclass(frozen=True)
class Verdict:
    """Whether screening pays, with the figures that decided it (stored with the trial)."""

    worth: bool
    measurement_s: float
    saving_s: float            # expected per screened candidate
    cost_s: float              # expected per screened candidate
    share: float               # expected share of candidates pruned (before audits)
    estimated: bool = False    # the refit's cost comes from a probe, not from a real fit

    @property
    def why(self) -> str:
        verb = "pays" if self.worth else "does not pay"
        probe = " (refit cost estimated from one objective's fit)" if self.estimated else ""
        return (f"screening {verb}: a measurement costs {self.measurement_s * 1e3:.0f} ms, screening "
                f"{self.cost_s * 1e3:.0f} ms per candidate{probe} for an expected saving of "
                f"{self.saving_s * 1e3:.0f} ms ({self.share:.0%} pruned)")

    def record(self) -> dict[str, Any]:
        """What a trial measured while the surrogate stood aside stores as its `surrogate`."""
        return {"stood_aside": not self.worth, "why": self.why, "measurement_s": self.measurement_s,
                "saving_s": self.saving_s, "cost_s": self.cost_s, "share": self.share,
                "estimated": self.estimated}


@dataclass
class Ledger:
    """What the surrogate spent and judged so far in this process."""

    fit_s: float = 0.0         # seconds refitting
    fits: int = 0
    predict_s: float = 0.0     # seconds predicting and judging candidates (refits excluded)
    screened: int = 0          # candidates the model judged
    poor: int = 0              # of them, judged not worth measuring (pruned or audited)

    def judged(self, seconds: float, poor: bool) -> None:
        self.predict_s += seconds
        self.screened += 1
        self.poor += int(poor)

    estimated: bool = False    # fit_s is a probe's estimate (replaced by the first real fit)

    def fitted(self, seconds: float) -> None:
        if self.estimated:
            self.fit_s, self.fits, self.estimated = 0.0, 0, False
        self.fit_s += seconds
        self.fits += 1

    def probed(self, seconds: float) -> None:
        """A refit's estimated cost, before any real fit (see Surrogate.probe_seconds)."""
        self.fit_s, self.fits, self.estimated = seconds, 1, True

    @property
    def share(self) -> float:
        """Expected share of candidates judged poor (Laplace's rule of succession)."""
        return (self.poor + 1) / (self.screened + 2)

    def verdict(self, measurement_s: float | None, refit_every: int, audit_rate: float) -> Verdict | None:
        """Whether screening the next candidate pays; None until both costs are known."""
        if measurement_s is None or self.fits == 0:
            return None
        pruned = self.share * (1.0 - audit_rate)            # candidates not measured
        predict = self.predict_s / self.screened if self.screened else 0.0
        cost = predict + (self.fit_s / self.fits) * (1.0 - pruned) / max(refit_every, 1)
        saving = pruned * measurement_s
        return Verdict(saving >= cost, measurement_s, saving, cost, self.share, self.estimated)

"""Head-to-head verdicts: is tune's answer faster than a peer's, on one kernel (bench/peers.py)?

Why not compare each tool's interval against -O3: two 95% intervals that overlap can still
differ significantly, so "tie when the intervals overlap" leaves real gaps undecided (session 5:
stencil, tune 1.19x against random's 1.03x, both against -O3, called a tie). So tune's answer is
measured directly against each peer's answer of the same seed (a duel, bench/peers_remeasure.py:
ABBA pairs of fresh processes in the same shuffled rounds as everything else), and the verdict
comes from that paired ratio (the peer's time over tune's).

Per kernel and peer, the pairs of all seeds are pooled: the median of their log-ratios with the
sign-test interval (tuner.stats.ratio_interval, distribution-free: no interval below 6 pairs).
A seed where both tools answered the same configuration is the same binary: it counts as
pairs of ratio exactly 1, as many as the other seeds' duels have at that point, and is not
measured. The A/A row (-O3 against itself, measured in the same rounds) calibrates: a verdict
needs the interval to clear the band 1 +- max(|A/A median - 1|, `band`), so a bias that even
the same binary shows, or a difference too small to matter (`band`, 1%), is never a win.

Adaptive: after the first `rounds` rounds, a (kernel, peer) verdict that is still a tie gets
more rounds, `step` at a time, up to `max_pairs`; only its duels (and the A/A row, so the
calibration keeps pace) are measured then. Each look at the data is a chance to call a true tie
a win, so every look uses the confidence level 1 - 0.05 / (number of planned looks)
(Bonferroni): over all looks a true tie is called a win or a loss with probability <= 5%. A
look uses only rounds before it, so a resumed run takes the same decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from typing import Callable

from tuner.space import config_key
from tuner.stats import ratio_interval


def looks(rounds: int, max_pairs: int, step: int) -> list[int]:
    """The round counts at which verdicts are taken: rounds, rounds + step, ..., max_pairs."""
    out = [rounds]
    while out[-1] < max_pairs:
        out.append(min(out[-1] + max(1, step), max_pairs))
    return out


def level_for(n_looks: int, alpha: float = 0.05) -> float:
    """The confidence level of each look so that all looks together err at most `alpha`."""
    return 1.0 - alpha / max(1, n_looks)


@dataclass
class Verdict:
    """One kernel's verdict of `mine` against one peer (ratio = the peer's time / mine)."""

    peer: str
    word: str = "not measured"          # "ahead", "behind", "tie", "same answers", "failed: ...", ...
    value: float = math.nan
    low: float = math.nan
    high: float = math.nan
    pairs: int = 0                      # pairs counted (identical seeds included)
    look: int = 0                       # rounds the verdict was taken at
    band: float = 0.0                   # the calibration band used (relative)
    seeds: list[str] = field(default_factory=list)   # per seed: "s0 1.160 [1.08, 1.25]" / "s1 same"
    decided: bool = False               # no more rounds needed (a verdict, or the cap reached)

    def short(self) -> str:
        """For a table cell: the word and the ratio with its interval."""
        if math.isnan(self.value):
            return self.word
        return f"{self.word.split(' after')[0]} {self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def text(self) -> str:
        if math.isnan(self.value):
            return self.word
        gap = f"{100 * abs(self.value - 1):.1f}%"
        what = {"ahead": f"ahead by {gap}", "behind": f"behind by {gap}"}.get(self.word, self.word)
        return (f"{what}: {self.value:.3f} [{self.low:.3f}, {self.high:.3f}] ({self.pairs} pairs, "
                f"band +-{100 * self.band:.1f}%)")


def decide(rem, duels: dict[int, str | None], aa_key: str, schedule: list[int], peer: str,
           band: float = 0.01) -> Verdict:
    """The verdict against `peer` from the cache of `rem` (a peers_remeasure.Remeasure): `duels`
    maps each seed to its duel id, or to None when both tools answered the same configuration.
    Walks the looks of `schedule` (looks()) in order and stops at the first decision, at the
    last look, or where the rounds of a look are not all measured yet (then `decided` is False)."""
    level = level_for(len(schedule))
    v = Verdict(peer)
    measured = [d for d in duels.values() if d is not None]
    if not duels:
        v.word, v.decided = "no duel: an answer is missing", True
        return v
    for did in measured:
        failed = rem.entry(did)["failed"]
        if failed:
            v.word, v.decided = f"failed: {failed}", True
            return v
    if not measured:
        v.word, v.decided, v.value, v.low, v.high = "same answers", True, 1.0, 1.0, 1.0
        v.seeds = [f"s{s} same" for s in duels]
        return v
    for look in schedule:
        if any(rem.pairs(d, upto=look) < look for d in measured) or rem.pairs(aa_key, upto=look) < look:
            return v                                        # this look's rounds are not all done
        logs: list[float] = []
        v.seeds = []
        for seed, did in duels.items():
            if did is None:
                v.seeds.append(f"s{seed} same")
                continue
            iv = rem.interval(did, upto=look, level=level)
            pairs = rem.counted(did, upto=look, level=level)
            logs += [math.log(other.value / mine.value) for mine, other in pairs if mine.value > 0 and other.value > 0]
            v.seeds.append(f"s{seed} {iv.value:.3f} [{iv.low:.3f}, {iv.high:.3f}]")
        logs += [0.0] * (look * sum(1 for d in duels.values() if d is None))
        iv = ratio_interval([math.exp(x) for x in logs], [1.0] * len(logs), level)
        aa = rem.interval(aa_key, upto=look, level=level)
        v.band = max(abs(aa.value - 1.0) if math.isfinite(aa.value) else 0.0, band)
        v.value, v.low, v.high, v.pairs, v.look = iv.value, iv.low, iv.high, iv.n, look
        if iv.confident and iv.low > 1.0 + v.band:
            v.word, v.decided = "ahead", True
        elif iv.confident and iv.high < 1.0 / (1.0 + v.band):
            v.word, v.decided = "behind", True
        else:
            v.word = f"tie after {look} rounds"
            v.decided = look == schedule[-1]
        if v.decided:
            return v
    return v


def register(rem, got: dict, goal: str, peers: list[str], seeds: list[int]) -> dict[str, dict[int, str | None]]:
    """Per peer, seed -> the duel of `goal`'s answer at equal wall time against the peer's (None:
    the same configuration). A seed where either tool has no answer has no duel."""
    out: dict[str, dict[int, str | None]] = {}
    for peer in peers:
        duels: dict[int, str | None] = {}
        for seed in seeds:
            mine, other = got.get((goal, seed, "wall")), got.get((peer, seed, "wall"))
            if not mine or not other:
                continue
            same = config_key(mine["config"]) == config_key(other["config"])
            duels[seed] = None if same else rem.add_duel(mine["config"], other["config"])
        out[peer] = duels
    return out


def extend(rem, duels: dict[str, dict[int, str | None]], aa_key: str, schedule: list[int],
           stop: Callable[[], bool], say: Callable[[str], None], band: float = 0.01) -> bool:
    """The adaptive rounds after the first schedule[0]: look by look, more rounds for the duels of
    the peers still tied (and the A/A row). False when `stop()` interrupted it."""
    for i in range(1, len(schedule)):
        verdicts = {peer: decide(rem, d, aa_key, schedule, peer, band) for peer, d in duels.items()}
        todo = sorted({did for peer, v in verdicts.items() if not v.decided
                       for did in duels[peer].values() if did})
        if not todo:
            return True
        say(f"  still tied: {', '.join(p for p, v in verdicts.items() if not v.decided)}: "
            f"rounds {schedule[i - 1] + 1}-{schedule[i]} for {len(todo)} duels and the A/A row")
        if not rem.run([aa_key] + todo, schedule[i], stop, say, start=schedule[i - 1]):
            return False
    return True

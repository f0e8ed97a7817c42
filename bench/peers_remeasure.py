"""Re-measuring every tool's answer side by side, in interleaved rounds (bench/peers.py).

Why rounds: on a shared machine the time of a binary drifts by more than the differences the
bench judges (session 4: plain -O3 re-measured against itself read 0.825 under load). When each
answer is re-measured in a block of its own, a load spike during one block moves that tool's
figure alone. So all candidates of a kernel (every tool x seed answer, -O3 -march=native, and -O3
itself as an A/A control) are re-measured together: each round gives every candidate ONE ABBA
pair against the reference (-O3), one fresh process each, with the candidates in an order
shuffled per round (seeded: a resumed run takes the same order), and the first of the pair
alternating with the round. A spike then hits every candidate alike, and the A/A row shows how
far two launches of the same binary disagree: the noise floor.

Each candidate's figure is the reference's time over the candidate's, from the per-pair ratios:
median with its sign-test 95% interval (tuner.measure.paired.pair_interval, the statistic tune's
own confirmation uses; pairs where a launch shared its core are left out when >= 6 clean ones
remain). Launches go through the study's target (`Target.launcher`: the harness's repetitions,
pinned to the run core), builds are cached. Durable as it goes: every pair is written to the
cache file before the next starts, so a crashed or time-boxed re-measurement resumes where it
stopped. A candidate whose output differs from the reference's (checksum) or that fails to build
or run is marked failed with the reason and never measured again.

Head to head (bench/peers_verdict.py): a duel is a pair of two candidates measured against each
other (tune's answer against a peer's, seed by seed), one ABBA pair per round in the same
shuffled rounds as the candidates, so the goal's question (is tune's answer faster than the
peer's?) is answered by one paired ratio instead of by two intervals against -O3 overlapping or
not (two overlapping 95% intervals can still differ significantly). Rounds past the first
`rounds` (`run(..., start=...)`) go to the undecided duels and the A/A row only.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from tuner.measure.launches import launch_of
from tuner.measure.paired import PairPolicy, counted_pairs, pair_interval
from tuner.records import Launch
from tuner.space import config_key
from tuner.stats import Interval
from tuner.study import StudySpec
from tuner.targets import load_target, make_target


class Remeasure:
    """The interleaved re-measurement of one kernel's candidates against `reference`."""

    def __init__(self, spec: StudySpec, folder: Path, reference: Mapping[str, Any], seed: int = 0) -> None:
        self.spec = spec
        self.folder = folder
        self.seed = seed
        self.reference = spec.space.complete(dict(reference))
        self.ref_key = config_key(self.reference)
        self.cache_file = folder / "remeasure.json"
        doc = json.loads(self.cache_file.read_text()) if self.cache_file.exists() else {}
        if doc and doc.get("reference") != self.ref_key:
            raise SystemExit(f"{self.cache_file}: re-measured against another reference; move it aside")
        self.candidates: dict[str, dict[str, Any]] = doc.get("candidates", {})
        self.duels: dict[str, dict[str, Any]] = doc.get("duels", {})
        self._target: Any = None
        self._once: dict[str, Callable[[int], Any]] = {}

    # --- builds and launches ------------------------------------------------------------------
    @property
    def target(self) -> Any:
        if self._target is None:
            self._target = make_target(load_target(self.spec.target), self.folder / "builds")
        return self._target

    def _launcher(self, config: Mapping[str, Any]) -> Callable[[int], Any]:
        key = config_key(config)
        if key not in self._once:
            rendering = self.spec.space.render(dict(config))
            built = self.target.build(self.spec.program, rendering)
            if not hasattr(built, "command"):
                raise BuildFailed(f"build failed: {' '.join(str(built.detail).split())[:200]}")
            self._once[key] = self.target.launcher(built, self.spec.program, rendering)
        return self._once[key]

    def _launch(self, config: Mapping[str, Any]) -> Launch:
        started = time.time()
        m = self._launcher(config)(0)
        if not m.ok:
            raise BuildFailed(f"run failed ({m.reason}): {' '.join(str(m.detail).split())[:200]}")
        return launch_of(m, started, self.target.spec.measure.launch_policy())

    # --- the rounds ---------------------------------------------------------------------------
    def add(self, config: Mapping[str, Any]) -> str:
        """Register a candidate (idempotent); returns its key."""
        key = config_key(dict(config))
        self.candidates.setdefault(key, {"config": dict(config), "pairs": [], "failed": None})
        return key

    def add_duel(self, mine: Mapping[str, Any], other: Mapping[str, Any]) -> str:
        """Register a duel of two candidates (idempotent); returns its id. Its figure is `mine`'s
        speed-up over `other` (other's time / mine)."""
        a, b = self.add(mine), self.add(other)
        if a == b:
            raise ValueError("a duel needs two different configurations")
        did = f"{a}~{b}"
        self.duels.setdefault(did, {"a": a, "b": b, "pairs": [], "failed": None})
        return did

    def order(self, round_no: int, keys: list[str]) -> list[str]:
        """Round `round_no`'s candidate order: a seeded shuffle, the same on every resume."""
        keys = sorted(keys)
        random.Random(f"{self.seed}:{round_no}").shuffle(keys)
        return keys

    def entry(self, key: str) -> dict[str, Any]:
        """A candidate's or a duel's record (ids of duels hold a "~")."""
        return self.duels[key] if "~" in key else self.candidates[key]

    def run(self, keys: list[str], rounds: int, stop: Callable[[], bool] = lambda: False,
            say: Callable[[str], None] = lambda m: None, start: int = 0) -> bool:
        """Give each of `keys` (candidates registered with `add`, duels with `add_duel`) one pair
        in each round from `start` to `rounds` - 1; False when `stop()` said to stop before all
        were done (the cache keeps what was done)."""
        for r in range(start, rounds):
            todo = [k for k in self.order(r, keys) if not self.entry(k)["failed"]
                    and not any(p["round"] == r for p in self.entry(k)["pairs"])]
            if todo:
                say(f"  round {r + 1}/{rounds}: {len(todo)} candidates and duels")
            for k in todo:
                if stop():
                    return False
                self._pair(k, r)
        return True

    def _pair(self, key: str, round_no: int) -> None:
        cand = self.entry(key)
        if "~" in key:                                   # a duel: a = mine, b = the other
            configs = {"a": self.candidates[cand["a"]]["config"], "b": self.candidates[cand["b"]]["config"]}
        else:                                            # a candidate: a = the reference
            configs = {"a": self.reference, "b": cand["config"]}
        try:
            first_a = round_no % 2 == 0                 # ABBA across rounds: A B, then B A, ...
            got: dict[str, Launch] = {}
            for who in (("a", "b") if first_a else ("b", "a")):
                got[who] = self._launch(configs[who])
            if got["a"].checksum != got["b"].checksum:
                raise BuildFailed("output differs from the reference's (checksum)" if "~" not in key
                                  else "the two outputs differ (checksum)")
            cand["pairs"].append({"round": round_no, "a": got["a"].as_dict(), "b": got["b"].as_dict()})
        except BuildFailed as e:
            cand["failed"] = str(e)
        self._save()

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"reference": self.ref_key, "candidates": self.candidates, "duels": self.duels},
                              default=str))
        os.replace(tmp, self.cache_file)

    # --- the figures --------------------------------------------------------------------------
    def pairs(self, key: str, upto: int | None = None) -> int:
        """How many pairs `key` (candidate or duel) has, counting rounds before `upto` only."""
        if key not in self.candidates and key not in self.duels:
            return 0
        return sum(1 for p in self.entry(key)["pairs"] if upto is None or p["round"] < upto)

    def policy(self, level: float = 0.95) -> PairPolicy:
        return PairPolicy(exclude_contended=self.target_excludes(), level=level)

    def counted(self, key: str, upto: int | None = None, level: float = 0.95) -> list[tuple[Launch, Launch]]:
        """The (a, b) launches of `key`'s pairs from rounds before `upto` that its figure counts
        (contended pairs left out as tuner.measure.paired does)."""
        pairs = [p for p in self.entry(key)["pairs"] if upto is None or p["round"] < upto]
        return counted_pairs([Launch.from_dict(p["a"]) for p in pairs],
                             [Launch.from_dict(p["b"]) for p in pairs], self.policy(level))

    def interval(self, key: str, upto: int | None = None, level: float = 0.95) -> Interval:
        """A candidate's speed-up over the reference, or a duel's first over its second: the
        median pair ratio (the second's time / the first's) and its sign-test interval."""
        pairs = self.counted(key, upto, level)
        a, b = [x for x, _ in pairs], [y for _, y in pairs]
        num, den = (b, a) if "~" in key else (a, b)
        return pair_interval(num, den, PairPolicy(exclude_contended=False, level=level))

    def result(self, key: str, upto: int | None = None) -> dict[str, Any] | None:
        """{"speedup", "low", "high", "n"} (reference's time / candidate's, 95% interval, rounds
        before `upto`), or {"failed": reason}; None before any pair."""
        cand = self.candidates.get(key)
        if cand is None:
            return None
        if cand["failed"]:
            return {"failed": cand["failed"]}
        if not cand["pairs"]:
            return None
        iv = self.interval(key, upto)
        return {"speedup": iv.value, "low": iv.low, "high": iv.high, "n": iv.n}

    def target_excludes(self) -> bool:
        return bool(load_target(self.spec.target).measure.exclude_contended)

    def cleanup(self) -> None:
        if self._target is not None:
            self._target.cleanup()


class BuildFailed(Exception):
    """A candidate that cannot be re-measured (build, run or output): recorded, not raised on."""

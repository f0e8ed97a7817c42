"""bench/peers.py's two judgements: which configuration is each tool's answer, and the side-by-side
re-measurement of all answers in interleaved rounds (on the sleeping kernel of
tests/test_measure_campaign.py: `base` 8 ms, `fast` 2 ms, gaps far wider than scheduling noise)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from test_measure_campaign import launches, write

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from peers_answers import answer  # noqa: E402
from peers_remeasure import Remeasure  # noqa: E402


def ev(t: float, opt: str, ms: float, trial: int, confirmed: float | None = None, baseline: bool = False,
       tried: bool | None = None) -> dict:
    return {"t": t, "config": {"opt": opt}, "latency_ms": ms, "status": "complete", "trial": trial,
            "baseline": baseline, "confirm_tried": confirmed is not None if tried is None else tried,
            "confirmed": None if confirmed is None else {"value": confirmed, "low": confirmed * 0.95,
                                                         "high": confirmed * 1.05}}


def tune_run(evals: list[dict], topups: list[dict] = (), first_end: float = 100.0) -> dict:
    return {"tool": "tune", "answer_rule": "confirmed", "evals": evals, "topups": list(topups),
            "first_end": first_end}


def test_tunes_answer_is_its_best_confirmed_point_not_its_fastest_single_measurement():
    run = tune_run([ev(1, "O3", 10.0, 0, baseline=True),
                    ev(5, "lucky", 6.0, 1),                  # fastest once, never confirmed
                    ev(9, "good", 8.0, 2, confirmed=1.20),
                    ev(20, "better", 7.5, 3, confirmed=1.30)])
    assert answer(run, wall=30)["config"] == {"opt": "better"}
    assert answer(run, wall=30)["how"] == "confirmed"
    # stopped at 10 s it would have printed "good"; the first 3 evaluations likewise
    assert answer(run, wall=10)["config"] == {"opt": "good"}
    assert answer(run, evals=3)["config"] == {"opt": "good"}
    # the same run judged as random search is judged (its fastest measurement)
    assert answer({**run, "tool": "random"}, wall=30)["config"] == {"opt": "lucky"}


def test_a_topped_up_figure_counts_only_when_finished_inside_the_budget():
    run = tune_run([ev(1, "O3", 10.0, 0, baseline=True), ev(9, "good", 8.0, 1, confirmed=1.20),
                    ev(20, "better", 7.5, 2, confirmed=1.30)],
                   topups=[{"trial": 2, "t": 50.0, "speedup": {"value": 1.10}}], first_end=40.0)
    assert answer(run, wall=30)["config"] == {"opt": "better"}       # top-up after 30 s: not yet
    assert answer(run, wall=60)["config"] == {"opt": "good"}         # it brought "better" down to 1.10
    assert answer(run, evals=3)["config"] == {"opt": "better"}       # explore --trials 3 ended at 40 s


def test_nothing_confirmed_faster_is_the_baseline_and_no_confirmation_at_all_falls_back_to_the_minimum():
    slower = tune_run([ev(1, "O3", 10.0, 0, baseline=True), ev(5, "x", 6.0, 1, confirmed=0.97)])
    assert answer(slower, wall=30) == {"config": {"opt": "O3"}, "how": "baseline", "in_campaign": 1.0}
    raced = tune_run([ev(1, "O3", 10.0, 0, baseline=True), ev(5, "x", 6.0, 1, tried=True)])
    assert answer(raced, wall=30)["how"] == "baseline"               # confirmation tried, raced out
    none = tune_run([ev(1, "O3", 10.0, 0, baseline=True), ev(5, "x", 6.0, 1)])
    assert answer(none, wall=30)["config"] == {"opt": "x"}
    assert answer(none, wall=30)["how"] == "minimum: nothing confirmed"
    assert answer(none, wall=0.5) is None


def test_all_candidates_are_remeasured_together_in_shuffled_rounds_and_a_crash_resumes(lab, tmp_path):
    from tuner.study import load_study

    spec = load_study(write(lab, "peers", ["base", "fast", "slow"]))
    folder = tmp_path / "rem"
    rem = Remeasure(spec, folder, {"mode": "base"}, seed=3)
    keys = [rem.add(spec.space.complete({"mode": m})) for m in ("base", "fast", "slow")]
    orders = [rem.order(r, keys) for r in range(6)]
    assert len({tuple(o) for o in orders}) > 1                    # the order changes between rounds
    calls = []
    stop_after = lambda: len(calls) >= 7 or calls.append(1) is not None   # noqa: E731 (a crash after 7 pairs)
    assert rem.run(keys, 6, stop_after) is False
    rem.cleanup()
    assert sum(rem.pairs(k) for k in keys) == 7
    # a new process continues from the cache file, nothing measured twice
    rem = Remeasure(spec, folder, {"mode": "base"}, seed=3)
    assert rem.run(keys, 6) is True
    rem.cleanup()
    mode = {k: rem.candidates[k]["config"]["mode"] for k in keys}
    expected = []
    for r, order in enumerate(orders):                       # round by round, every candidate once,
        for k in order:                                      # A first in even rounds, B first in odd
            expected += ["base", mode[k]] if r % 2 == 0 else [mode[k], "base"]
    assert launches(lab, "peers") == expected
    assert all(sorted(p["round"] for p in rem.candidates[k]["pairs"]) == list(range(6)) for k in keys)
    by = {mode[k]: rem.result(k) for k in keys}
    assert by["fast"]["low"] > 2.0 and by["fast"]["n"] == 6                 # 8 ms / 2 ms
    assert by["slow"]["high"] < 0.5                                        # 8 ms / 24 ms
    assert by["base"]["low"] <= 1.0 <= by["base"]["high"]                  # the A/A control
    doc = json.loads((folder / "remeasure.json").read_text())
    assert set(doc["candidates"]) == set(keys)


def test_a_candidate_whose_output_differs_from_the_references_is_marked_failed_and_not_retried(lab, tmp_path):
    """`flip` computes another result from its 17th launch: the log says it has had 17 already."""
    from tuner.study import load_study

    spec = load_study(write(lab, "peersflip", ["base", "flip"]))
    (lab.root / "peersflip-log" / "launches.log").write_text("flip\n" * 17)
    rem = Remeasure(spec, tmp_path / "rem", {"mode": "base"})
    flip = rem.add(spec.space.complete({"mode": "flip"}))
    assert rem.run([flip], 4) is True
    rem.cleanup()
    assert rem.result(flip) == {"failed": "output differs from the reference's (checksum)"}
    assert launches(lab, "peersflip")[17:] == ["base", "flip"]          # one pair, then never again

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
    # the A/A control is unbiased: its ratio is 1 up to scheduling noise. Not "its interval holds
    # 1": a 95% interval from 6 pairs misses the truth in 1 run of 32 by construction (seen once)
    assert abs(by["base"]["speedup"] - 1.0) < 0.05
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


def test_head_to_head_decides_a_real_gap_keeps_a_true_tie_and_gives_extra_rounds_only_to_the_tied(lab, tmp_path):
    """Two peers: against one, tune's answer is 12x faster (`fast` 2 ms vs `slow` 24 ms); against
    the other it is a true tie (`slow` vs `m1`, both 24 ms; seed 1 the same answer). Looks at 6, 9,
    12 rounds, each at 98.3%: 6 pairs cannot reach that level, so both go on; at 9 the gap is
    decided and its duel stops; the tie goes on to the cap and stays a tie."""
    from peers_verdict import decide, extend, looks
    from tuner.study import load_study

    spec = load_study(write(lab, "duel", ["base", "fast", "slow", "m1"]))
    cfg = lambda m: spec.space.complete({"mode": m})          # noqa: E731
    folder = tmp_path / "rem"
    rem = Remeasure(spec, folder, {"mode": "base"}, seed=1)
    aa = rem.add(cfg("base"))
    gap, tie = rem.add_duel(cfg("fast"), cfg("slow")), rem.add_duel(cfg("slow"), cfg("m1"))
    duels = {"gapped": {0: gap}, "tied": {0: tie, 1: None}}
    schedule = looks(6, 12, 3)
    assert schedule == [6, 9, 12]
    assert rem.run([aa, gap, tie], 6) is True
    base_rounds = launches(lab, "duel")
    assert len(base_rounds) == 6 * 3 * 2
    assert all(not decide(rem, d, aa, schedule, p).decided for p, d in duels.items())
    assert extend(rem, duels, aa, schedule, lambda: False, lambda m: None) is True
    rem.cleanup()
    more = launches(lab, "duel")[len(base_rounds):]
    assert sorted(more[:18]) == sorted(["base"] * 6 + ["fast", "slow"] * 3 + ["slow", "m1"] * 3)
    assert sorted(more[18:]) == sorted(["base"] * 6 + ["slow", "m1"] * 3)     # the decided duel rests
    assert (rem.pairs(gap), rem.pairs(tie), rem.pairs(aa)) == (9, 12, 12)
    won = decide(rem, duels["gapped"], aa, schedule, "gapped")
    assert (won.word, won.look, won.decided) == ("ahead", 9, True)
    assert won.low > 2 and won.short().startswith("ahead 1")
    tied = decide(rem, duels["tied"], aa, schedule, "tied")
    assert (tied.word, tied.look, tied.decided) == ("tie after 12 rounds", 12, True)
    assert tied.low <= 1.0 <= tied.high and tied.pairs == 24 and tied.seeds[1] == "s1 same"
    # a new process finds everything done: no launch, the same verdicts
    again = Remeasure(spec, folder, {"mode": "base"}, seed=1)
    n = len(launches(lab, "duel"))
    assert extend(again, duels, aa, schedule, lambda: False, lambda m: None) is True
    assert len(launches(lab, "duel")) == n
    assert decide(again, duels["gapped"], aa, schedule, "gapped").text() == won.text()


def test_a_duel_whose_two_outputs_differ_is_failed_and_the_verdict_says_so(lab, tmp_path):
    from peers_verdict import decide, looks
    from tuner.study import load_study

    spec = load_study(write(lab, "duelflip", ["base", "fast", "flip"]))
    (lab.root / "duelflip-log" / "launches.log").write_text("flip\n" * 17)
    rem = Remeasure(spec, tmp_path / "rem", {"mode": "base"})
    duel = rem.add_duel(spec.space.complete({"mode": "fast"}), spec.space.complete({"mode": "flip"}))
    assert rem.run([duel], 3) is True
    rem.cleanup()
    assert launches(lab, "duelflip")[17:] == ["fast", "flip"]          # one pair, then never again
    v = decide(rem, {0: duel}, rem.add(rem.reference), looks(3, 3, 1), "random")
    assert v.decided and v.word == "failed: the two outputs differ (checksum)"

"""`tune confirm`: every front point re-measured against the baseline in ABBA pairs of fresh
processes; medians, ranges and (for timed objectives) paired speed-ups reported."""

from __future__ import annotations

import json

KNOBS = """
[knobs.x]
kind = "int"
low = 0
high = 3
to = "define"
define = "X"

[knobs.y]
kind = "int"
low = 0
high = 3
to = "define"
define = "Y"
"""


def test_confirm_remeasures_front_and_baseline(lab):
    study = lab.study("cf", KNOBS, meta='baseline = { x = 2, y = 2 }')
    lab.ok("explore", study, "--trials", "8", "--seed", "3", "--surrogate", "off", "--no-export")
    front = {p["trial"] for p in lab.json("pareto", study)}
    doc = lab.json("confirm", study, "--pairs", "2")
    by_trial = {r["trial"]: r for r in doc}
    assert front <= set(by_trial)
    baseline = [r for r in doc if r["baseline"]]
    assert len(baseline) == 1 and baseline[0]["trial"] == 0
    compared = [r for r in doc if not r["baseline"]]
    assert compared
    for r in doc:
        for name in ("cost", "gain"):
            c = r["confirmed"][name]
            # 2 launches of each point; the baseline launches once in every pair of every point
            assert c["n"] == (2 * len(compared) if r["baseline"] else 2) and c["min"] <= c["median"] <= c["max"]
            assert c["median"] == r["campaign"][name]     # the lab's objectives are deterministic
        assert "speedup" not in r                         # cost and gain are not timings
        assert isinstance(r["on_confirmed_front"], bool)
    assert {r["trial"] for r in doc if r["on_confirmed_front"]} == front
    saved = json.loads((lab.root / "results" / "cf" / "confirm.json").read_text())
    assert saved == doc
    assert len(lab.records(study)) >= 8                  # the campaign itself is untouched

"""Which configuration is each tool's answer, within a budget (bench/peers.py).

A tool is judged by what it would report as its best, not by the bench's guess:

* OpenTuner and uniform random search report the configuration with their lowest measured time:
  their answer is the minimum of their own single measurements.
* tune reports the confirmed point with the best paired speed-up over its baseline (what
  `tune explore` prints as "best latency_ms vs baseline", tuner.measure.summary.paired_best;
  a figure `explore` topped up at its end counts with its topped-up value). When it confirmed
  points but none beat the baseline, explore prints the baseline: that is its answer. Taking
  the minimum of its single measurements instead would pick whichever point was measured in a
  quiet moment, which is exactly what tune's confirmation guards against. Only when a run
  confirmed nothing at all (confirmation off) does the minimum stand in, and the row says so.

Budgets: "evals" = the first N counted evaluations (the first `explore --trials N`, top-ups
done at its end included); "wall" = what was finished by T seconds (confirmations and top-ups
finished by then): the answer tune would have printed had it been stopped at T.
"""

from __future__ import annotations

from typing import Any, Mapping

MINIMUM_TOOLS = ("opentuner", "random")      # tools whose own answer is their fastest measurement


def pool(run: Mapping[str, Any], evals: int | None = None, wall: float | None = None) -> list[dict]:
    """The evaluations inside the budget."""
    if evals is not None:
        return list(run["evals"][:evals])
    return [e for e in run["evals"] if e["t"] <= wall]


def minimum(evals: list[dict]) -> dict | None:
    ok = [e for e in evals if e["status"] == "complete" and e["latency_ms"] is not None]
    return min(ok, key=lambda e: e["latency_ms"]) if ok else None


def answer(run: Mapping[str, Any], evals: int | None = None, wall: float | None = None) -> dict | None:
    """{"config", "how", "in_campaign"} of the run's answer within the budget (None: nothing
    measured). `how`: "minimum" (that tool's own answer), "confirmed" (tune's paired best),
    "baseline" (tune confirmed nothing faster than its baseline), "minimum: nothing confirmed"."""
    inside = pool(run, evals, wall)
    if run["tool"] in MINIMUM_TOOLS or "answer_rule" not in run:
        e = minimum(inside)
        how = "minimum" if run["tool"] in MINIMUM_TOOLS else "minimum: old run, no confirmations stored"
        return {"config": e["config"], "how": how, "in_campaign": e["latency_ms"]} if e else None
    # tune: its confirmed points, topped-up figures finished inside the budget
    limit = run.get("first_end", float("inf")) if evals is not None else wall
    topped = {u["trial"]: u["speedup"] for u in run.get("topups", []) if u["t"] <= limit}
    best, top = None, 1.0
    confirmed_any = False
    for e in inside:
        confirmed_any = confirmed_any or bool(e.get("confirm_tried"))
        conf = e.get("confirmed")
        if conf is None:
            continue
        value = topped.get(e["trial"], conf)["value"]
        if not e.get("baseline") and value > top:
            best, top = e, value
    if best is not None:
        return {"config": best["config"], "how": "confirmed", "in_campaign": top}
    base = next((e for e in inside if e.get("baseline") and e["status"] == "complete"), None)
    if confirmed_any and base is not None:
        return {"config": base["config"], "how": "baseline", "in_campaign": 1.0}
    e = minimum(inside)
    return {"config": e["config"], "how": "minimum: nothing confirmed", "in_campaign": e["latency_ms"]} if e else None

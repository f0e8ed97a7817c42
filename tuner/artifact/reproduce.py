"""Re-measure recorded points against the baseline and say, per point and objective,
whether each reproduced (`tune reproduce`).

Each point is measured again (a full measurement: a series of launches, its output verified
against the reference) and compared with the baseline in ABBA pairs (tuner.measure).

- Same machine (the point's recorded machine is this one): a timed objective's recorded
  value must lie in the new 95% interval across launches, or within `tolerance` of the new
  value; failing that, its recorded ratio to the baseline must come back in the new paired
  ABBA ratio (its interval or `tolerance`): "reproduced (relative to the baseline)", because
  the same machine's absolute speed moves between processes and over hours while the paired
  ratio is what the measurement stands for. Any other objective (a code size, a simulator's
  figure, a count) must be equal.
- Another machine, or another target: absolute values are not comparable, so the recorded
  ratio point/baseline is compared with the new one, the paired ABBA ratio for the timed
  objective (within its interval or `tolerance`), the ratio of the new values otherwise
  (within `tolerance`): "other machine: compared relative to its baseline".

A point whose rebuild fails or whose output differs from the reference did not reproduce.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

from tuner import provenance
from tuner.artifact.probe import Interval3, Measured, Probe

SCHEMA = "tune.reproduce/1"
REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"
OTHER = "other machine: compared relative to its baseline"
BY_RATIO = "(relative to the baseline)"
FINGERPRINT = ("cpu_model", "cores", "memory_bytes", "hostname")


def same_machine(recorded: Mapping[str, Any] | None, here: Mapping[str, Any]) -> bool | None:
    """True/False when the point's run recorded its machine, None when it did not."""
    if not recorded or not recorded.get("machine"):
        return None
    return all(recorded["machine"].get(k) == here.get(k) for k in FINGERPRINT)


def close(a: float, b: float, tolerance: float) -> bool:
    return a == b or abs(a - b) <= tolerance * max(abs(a), abs(b))


def judge(recorded: float | None, new: Interval3 | None, tolerance: float) -> bool:
    """Recorded value within the new interval, or within `tolerance` (relative) of the new value."""
    if new is None or recorded is None or not math.isfinite(recorded):
        return False
    value, low, high = new
    return low <= recorded <= high or close(recorded, value, tolerance)


def recorded_ratio(point: Any, baseline: Any, objective: Any) -> float:
    """The point's recorded value over the baseline's: for a timed objective of a point the
    campaign confirmed, the paired ABBA ratio of that confirmation (both builds measured
    together), not a ratio of two values measured minutes apart."""
    from tuner.artifact.table import confirmation, timed

    rec, base = point.values[objective.name], baseline.values[objective.name]
    conf, sign = confirmation(point), timed(objective)
    ratio = (conf or {}).get("ratio")
    if not sign or not isinstance(ratio, Mapping) or not ratio.get("value"):
        return rec / base
    try:    # a per-batch latency differs from the kernel's time by a factor timing does not change
        exact = (rec / base) / (point.metrics["latency_ms"] / baseline.metrics["latency_ms"]) ** sign
    except (KeyError, ZeroDivisionError, TypeError, AttributeError):
        exact = 1.0
    return float(ratio["value"]) ** sign * exact


def verdicts(point: Any, baseline: Any | None, objectives: Sequence[Any], m: Measured, base_m: Measured | None,
             ratios: Mapping[str, Interval3], relative: bool, tolerance: float) -> dict[str, Any]:
    """One point's verdict per objective (the `objectives` entry of the JSON)."""
    out: dict[str, Any] = {}
    for o in objectives:
        rec = point.values.get(o.name)
        new = (m.values or {}).get(o.name)
        ci = m.ci.get(o.name)
        exact = o.name not in m.noisy
        by_ratio = False
        row: dict[str, Any] = {"recorded": rec, "new": new, "ci": list(ci) if ci else None, "exact": exact}
        rec_base = baseline.values.get(o.name) if baseline is not None else None
        if rec_base and rec is not None:
            paired = ratios.get(o.name)
            new_base = (base_m.values or {}).get(o.name) if base_m and base_m.values else None
            if paired is None and new is not None and new_base:
                paired = (new / new_base, math.nan, math.nan)
            row["ratio"] = {"recorded": recorded_ratio(point, baseline, o), "new": paired[0] if paired else None,
                            "ci": [paired[1], paired[2]] if paired and math.isfinite(paired[1]) else None,
                            "paired": o.name in ratios}
        if m.values is None:
            ok = False
        elif relative:
            r = row.get("ratio")
            ok = bool(r) and r["new"] is not None and judge(
                r["recorded"], (r["new"], *(r["ci"] or (math.nan, math.nan))), tolerance)
        elif exact:
            ok = new is not None and rec is not None and close(rec, new, 1e-9)
        else:    # timed: within the interval across launches (when there is one) or the tolerance
            ok = new is not None and judge(rec, (new, *(ci or (new, new))), tolerance)
            r = row.get("ratio")
            if not ok and r and r["paired"] and r["new"] is not None:
                # the machine's speed moved (a process's time is bimodal here, and drifts), but
                # the paired ratio to the baseline, the figure a paper cites, came back
                ok = by_ratio = judge(r["recorded"], (r["new"], *(r["ci"] or (math.nan, math.nan))), tolerance)
        row["verdict"] = ((f"{OTHER}: " if relative else "") + (REPRODUCED if ok else NOT_REPRODUCED)
                          + (f" {BY_RATIO}" if by_ratio else ""))
        row["reproduced"] = bool(ok)
        out[o.name] = row
    return out


def reproduce(points: Sequence[Any], baseline: Any | None, objectives: Sequence[Any], probe: Probe, *,
              runs: Mapping[str, Mapping[str, Any]], tolerance: float, force_relative: bool = False,
              log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Re-measure each point, pair it with the baseline; the `tune.reproduce/1` document."""
    here = provenance.machine()
    doc: dict[str, Any] = {"schema": SCHEMA, "machine": here, "tolerance": tolerance, "points": []}
    base_m = None
    if baseline is not None:
        log(f"baseline (trial {baseline.number}): measuring")
        base_m = probe.measure(baseline.params)
    for p in points:
        run = runs.get(str((provenance.of(p) or {}).get("run")))
        same = same_machine(run, here)
        relative = force_relative or same is False
        is_base = baseline is not None and p.number == baseline.number
        pairs = not (is_base or baseline is None or getattr(probe, "deterministic", False))
        if not (is_base and base_m is not None):     # the baseline was measured just above
            log(f"trial {p.number}: measuring" + (", then ABBA pairs against the baseline" if pairs else "")
                + (" (relative: another machine or target)" if relative else ""))
        m = base_m if is_base and base_m is not None else probe.measure(p.params)
        ratios = {}
        if baseline is not None and not is_base and m.values is not None:
            ratios = probe.compare(p.params, baseline.params)
        per = verdicts(p, baseline, objectives, m, base_m, ratios, relative, tolerance)
        doc["points"].append({"trial": p.number, "baseline": is_base, "same_machine": same,
                              "relative": relative, "failure": m.detail if m.values is None else "",
                              "objectives": per, "reproduced": all(r["reproduced"] for r in per.values())})
    doc["launches"] = probe.launches
    doc["reproduced"] = bool(doc["points"]) and all(pt["reproduced"] for pt in doc["points"])
    return doc

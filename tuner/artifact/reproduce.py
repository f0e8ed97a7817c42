"""Re-measure recorded points against the baseline and say, per point and objective,
whether each reproduced (`tune reproduce`).

Same machine (the point's recorded machine is this one): the new measurement's 95% CI (of
the median across launches) must contain the recorded value, or the two must agree within
`tolerance`. A deterministic objective (every launch equal) must equal the recorded value.
Another machine, or another target: absolute values are not comparable, so each point is
measured in ABBA pairs with the baseline, and the recorded ratio point/baseline must fall in
the new ratio's CI (or within `tolerance` of it): "other machine: compared relative to its
baseline". A point whose rebuild fails or whose output differs from the reference did not
reproduce.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

from tuner import provenance
from tuner.artifact.paired import Paired, abba, summary

SCHEMA = "tune.reproduce/1"
REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"
OTHER = "other machine: compared relative to its baseline"
FINGERPRINT = ("cpu_model", "cores", "memory_bytes", "hostname")


def same_machine(recorded: Mapping[str, Any] | None, here: Mapping[str, Any]) -> bool | None:
    """True/False when the point's run recorded its machine, None when it did not."""
    if not recorded or not recorded.get("machine"):
        return None
    return all(recorded["machine"].get(k) == here.get(k) for k in FINGERPRINT)


def _close(a: float, b: float, tolerance: float) -> bool:
    return a == b or abs(a - b) <= tolerance * max(abs(a), abs(b))


def judge(recorded: float, new: tuple[float, float, float] | None, tolerance: float) -> bool:
    """Recorded value within the new CI, or within `tolerance` (relative) of the new value."""
    if new is None or recorded is None or not math.isfinite(recorded):
        return False
    med, lo, hi = new
    return lo <= recorded <= hi or _close(recorded, med, tolerance)


def compare(point: Any, baseline: Any, objectives: Sequence[Any], paired: Paired, relative: bool,
            tolerance: float, deterministic: bool = False) -> dict[str, Any]:
    """One point's verdict per objective (the `objectives` entry of the JSON)."""
    out: dict[str, Any] = {}
    for o in objectives:
        rec = point.values.get(o.name)
        new = summary(paired.a.get(o.name, []))
        row: dict[str, Any] = {"recorded": rec, "new": new[0] if new else None,
                               "ci": [new[1], new[2]] if new else None,
                               "launches": len(paired.a.get(o.name, []))}
        ratio = paired.ratio(o.name) if baseline is not None else None
        if baseline is not None and baseline.values.get(o.name):
            rec_ratio = rec / baseline.values[o.name] if rec is not None else None
            row["ratio"] = {"recorded": rec_ratio, "new": ratio[0] if ratio else None,
                            "ci": [ratio[1], ratio[2]] if ratio else None}
        if relative:
            ok = baseline is not None and ratio is not None and row["ratio"]["recorded"] is not None \
                and judge(row["ratio"]["recorded"], ratio, tolerance)
            row["verdict"] = f"{OTHER}: {REPRODUCED if ok else NOT_REPRODUCED}"
        elif new is not None and new[1] == new[2] and (row["launches"] > 1 or deterministic):
            # deterministic (every launch equal: a simulator, a count, a code size): exactly
            ok = rec is not None and _close(rec, new[0], 1e-9)
            row["exact"] = True
            row["verdict"] = REPRODUCED if ok else NOT_REPRODUCED
        else:
            ok = judge(rec, new, tolerance)
            row["verdict"] = REPRODUCED if ok else NOT_REPRODUCED
        row["reproduced"] = bool(ok)
        out[o.name] = row
    return out


def reproduce(points: Sequence[Any], baseline: Any | None, objectives: Sequence[Any],
              measure: Callable[[Mapping[str, Any]], Mapping[str, float] | None], *,
              runs: Mapping[str, Mapping[str, Any]], pairs: int, tolerance: float,
              force_relative: bool = False, deterministic: bool = False,
              log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Re-measure each point in ABBA pairs with the baseline; the `tune.reproduce/1` document.

    `measure(config)` is one launch: objective values, or None when the build, run or
    verification failed. `deterministic` (a simulator or counting target): one launch says
    it all, and a value reproduces only if it is equal."""
    here = provenance.machine()
    doc: dict[str, Any] = {"schema": SCHEMA, "machine": here, "pairs": pairs, "tolerance": tolerance,
                           "points": []}
    base_cfg = dict(baseline.params) if baseline is not None else None
    for p in points:
        prov = provenance.of(p)
        run = runs.get(str((prov or {}).get("run"))) if prov else None
        same = same_machine(run, here)
        relative = force_relative or same is False
        log(f"trial {p.number}: {pairs} ABBA pair(s) against the baseline"
            + (" (relative: other machine or target)" if relative else ""))
        cfg = dict(p.params)
        if base_cfg is not None and (baseline is None or p.number != baseline.number):
            paired = abba(lambda: measure(cfg), lambda: measure(base_cfg), pairs)
        else:   # the baseline itself (or no baseline): launches of the point alone
            paired = Paired()
            for _ in range(pairs):
                v = measure(cfg)
                if v is None:
                    paired.failures.append("a")
                    continue
                for k, x in v.items():
                    paired.a.setdefault(k, []).append(float(x))
                    paired.b.setdefault(k, []).append(float(x))
        per = compare(p, baseline, objectives, paired, relative, tolerance, deterministic)
        failed = len([f for f in paired.failures if f == "a"])
        ok = all(r["reproduced"] for r in per.values()) and failed == 0
        doc["points"].append({"trial": p.number,
                              "baseline": baseline is not None and p.number == baseline.number,
                              "same_machine": same, "relative": relative, "failed_launches": failed,
                              "objectives": per, "reproduced": ok})
    doc["reproduced"] = bool(doc["points"]) and all(pt["reproduced"] for pt in doc["points"])
    return doc

"""What a campaign's measurements say, for `tune explore` and `tune status`.

`speedups` gives, for each objective, the best verified point's figure against the baseline:
for a timed objective only a *confirmed* one (the paired ABBA ratio with its 95% interval,
tuner.measure.confirm), never a ratio of two values measured minutes apart; for an exact one
(code size, accuracy), and for every objective of a deterministic target (a simulator's reported
latency: `noisy=False`, nothing to confirm), the ratio of the values. `savings` sums what racing saved (and
promotion: screening cut short for a point going to confirmation anyway), the confirmations,
the top-ups of printed figures (records merged by tuner.measure.topup.merge) and the baseline's drift.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from tuner.measure.front import timed


def confirmation(rec: Any) -> Mapping[str, Any] | None:
    """A record's confirmation against the baseline, if it was confirmed (not raced out)."""
    conf = (getattr(rec, "measurement", None) or {}).get("confirmation")
    if isinstance(conf, Mapping) and conf.get("confirmed") and "speedup" in conf:
        return conf
    return None


def speedups(verified: Sequence[Any], baseline: Any | None, objectives: Sequence[Any],
             noisy: bool = True) -> dict[str, dict[str, Any]]:
    """objective -> {"value", "low", "high", "pairs", "trial", "kind"}; kind "paired" (timed,
    confirmed), "exact" (a ratio of exact values), "baseline" (nothing beat the baseline) or
    "unconfirmed" (the best point of a timed objective has no confirmation: no figure).
    `noisy` is the target's (TargetSpec.measure.noisy): a deterministic target's times are exact."""
    out: dict[str, dict[str, Any]] = {}
    if baseline is None or not verified:
        return out
    for o in objectives:
        vals = [r for r in verified if o.name in r.values]
        if not vals or o.name not in baseline.values:
            continue
        best = min(vals, key=lambda r: o.sign * r.values[o.name])
        beats = best.number != baseline.number and o.better(best.values[o.name], baseline.values[o.name])
        if noisy and timed(o):
            top = paired_best(verified, baseline, o)
            if top is None:
                unconfirmed = beats and confirmation(best) is None
                out[o.name] = ({"kind": "unconfirmed", "trial": best.number} if unconfirmed
                               else {"kind": "baseline", "trial": baseline.number})
                continue
            best, conf = top, confirmation(top)
            sp = conf["speedup"]
            k = _exact_part(o, best.metrics, baseline.metrics)
            out[o.name] = {"kind": "paired", "trial": best.number, "value": sp["value"] * k, "low": sp["low"] * k,
                           "high": sp["high"] * k, "pairs": conf.get("pairs", sp.get("n")),
                           "coverage": sp.get("coverage"), "admitted_at": _admitted_at(conf)}
            continue
        if not beats:
            out[o.name] = {"kind": "baseline", "trial": baseline.number}
            continue
        b, v = baseline.values[o.name], best.values[o.name]
        if b > 0 and v > 0:
            out[o.name] = {"kind": "exact", "trial": best.number, "value": (b / v) ** o.sign}
    return out


def paired_best(verified: Sequence[Any], baseline: Any, objective: Any) -> Any | None:
    """For a timed objective: the confirmed point (not the baseline) with the best paired
    speed-up over the baseline, when that is above 1; else None. Not the best told value: the
    baseline's told value is its own first measurement and the others' their confirmations',
    taken at other moments on a machine whose speed drifts (a baseline measured in a quiet
    minute looks faster than a point confirmed 1.2x faster than it under load); the paired
    ratio was taken next to the baseline."""
    best, top = None, 1.0
    for r in verified:
        conf = confirmation(r) if r.number != baseline.number and objective.name in r.values else None
        if conf is None:
            continue
        v = conf["speedup"]["value"] * _exact_part(objective, r.metrics, baseline.metrics)
        if v > top:
            best, top = r, v
    return best


def _admitted_at(conf: Mapping[str, Any]) -> int | None:
    """The pairs the confirmation had at admission, when explore topped it up since
    (tuner.measure.topup), else None."""
    up = conf.get("topped_up")
    return int(up["from"]) if isinstance(up, Mapping) and up.get("added") else None


def pairs_text(pairs: Any, admitted_at: int | None) -> str:
    """"16 ABBA pairs (6 at admission, 10 more at the end)", or "6 ABBA pairs"."""
    text = f"{pairs} ABBA pairs"
    if admitted_at is not None and isinstance(pairs, int) and pairs > admitted_at:
        text += f" ({admitted_at} at admission, {pairs - admitted_at} more at the end)"
    return text


def _exact_part(o: Any, best: Mapping[str, float], base: Mapping[str, float]) -> float:
    """The paired speed-up is of the kernel's time; an objective derived from it may differ from
    it by a factor that does not depend on timing (the batch size in a per-batch latency): that
    factor, from the two points' own metrics (1 for latency_ms and gflops)."""
    m, lat = o.metric, "latency_ms"
    try:
        obj = (base[m] / best[m]) ** o.sign
        return obj / (base[lat] / best[lat])
    except (KeyError, ZeroDivisionError, TypeError):
        return 1.0


def format_speedup(name: str, s: Mapping[str, Any], front: Sequence[int] | None = None) -> str:
    """`front`: the trial numbers of the front's table. A paired best point off it is said to be:
    the table holds medians taken at different moments (a drifting machine moves them), this line
    the ratio taken next to the baseline, so a reader does not take one for a slip of the other.
    A best point whose interval reaches 1 is said to be a tie: its median is above 1 by choice
    (the best of several), and a reader who quotes "1.16x" from [0.99, 1.32] quotes noise."""
    kind = s["kind"]
    if kind == "paired":
        off = (f"; not in the table above, whose medians were taken at other moments: this ratio, taken "
               f"next to the baseline, is the one to quote" if front is not None and s["trial"] not in front else "")
        tie = ("; its interval reaches 1: a tie with the baseline, not shown faster beyond the noise"
               if s["low"] <= 1.0 else "")
        return (f"best {name} vs baseline: {s['value']:.3f}x [{s['low']:.3f}, {s['high']:.3f}] "
                f"(95% CI, {pairs_text(s['pairs'], s.get('admitted_at'))} of launches; trial {s['trial']}{off}){tie}")
    if kind == "exact":
        return f"best {name} vs baseline: {s['value']:.3f}x (exact; trial {s['trial']})"
    if kind == "baseline":
        return f"best {name}: the baseline itself (no configuration confirmed better)"
    return (f"best {name}: trial {s['trial']}, not confirmed against the baseline (no figure printed; "
            f"`tune confirm` measures it)")


def savings(records: Sequence[Any]) -> dict[str, Any]:
    """For `tune status`: launches and seconds saved by racing, confirmations, baseline checks."""
    launches, seconds, confirmed, raced_out, checks, measured = 0, 0.0, 0, 0, [], 0
    topped, topped_pairs, topped_s = 0, 0, 0.0
    for r in records:
        meas = getattr(r, "measurement", None) or {}
        if meas.get("launches"):
            measured += 1
        conf = meas.get("confirmation") if isinstance(meas.get("confirmation"), Mapping) else {}
        for part in (meas, conf):
            s = part.get("saved")
            if isinstance(s, Mapping):
                launches += int(s.get("launches", 0))
                seconds += float(s.get("seconds", 0.0))
        up = conf.get("topped_up")
        if isinstance(up, Mapping):          # explore's top-up of a printed figure (tuner.measure.topup)
            topped += 1
            topped_pairs += int(up.get("added", 0))
            topped_s += float(up.get("seconds", 0.0))
        if "speedup" in conf:
            confirmed += bool(conf.get("confirmed"))
            raced_out += not conf.get("confirmed")
        if isinstance(meas.get("baseline_check"), Mapping):
            checks.append(meas["baseline_check"])
    drift = [float(c["drift"]) for c in checks if "drift" in c]
    return {"measured": measured, "launches_saved": launches, "seconds_saved": round(seconds, 1),
            "confirmed": confirmed, "confirmations_raced_out": raced_out, "baseline_checks": len(checks),
            "baseline_drift": {"min": min(drift), "max": max(drift)} if drift else None,
            "raced": sum(1 for r in records if (getattr(r, "measurement", None) or {}).get("stopped") == "raced"),
            "promoted": sum(1 for r in records
                            if (getattr(r, "measurement", None) or {}).get("stopped") == "promoted"),
            "topped_up": topped, "topup_pairs": topped_pairs, "topup_seconds": round(topped_s, 1)}


def format_savings(s: Mapping[str, Any]) -> str:
    text = (f"measurement: {s['raced']} candidates raced out early, {s['launches_saved']} launches "
            f"(about {s['seconds_saved']:.1f}s) saved; {s['confirmed']} confirmed against the baseline"
            + (f", {s['confirmations_raced_out']} confirmation{'s' if s['confirmations_raced_out'] != 1 else ''} "
               "stopped as out of the running" if s["confirmations_raced_out"] else ""))
    if s.get("promoted"):
        text += f" ({s['promoted']} sent to confirmation after their first launches)"
    if s.get("topped_up"):
        text += (f"; {s['topped_up']} printed figure{'s' if s['topped_up'] != 1 else ''} topped up at the end "
                 f"({s['topup_pairs']} more pairs, {s['topup_seconds']:.1f}s)")
    if s["baseline_checks"]:
        d = s["baseline_drift"]
        n = s["baseline_checks"]
        text += f"; baseline measured {n} time{'s' if n != 1 else ''}" + (
            f" (drift {100 * d['min']:+.1f}% to {100 * d['max']:+.1f}%)" if d else "")
    return text

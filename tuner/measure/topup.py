"""Topping up the figures `explore` prints: more ABBA pairs for the points it names as best.

Why: a campaign's confirmation (tuner.measure.confirm) stops as soon as admission to the front
is decided (`confirm_decided_rel`, from 6 pairs). That is right for admission, where more pairs
would only narrow a figure nobody reads, but the best point of each timed objective and the
knee are the figures a user quotes, and 6 pairs on a shared machine leave them a +-4-5%
interval. So at the end of `explore`, for those points only, the confirmation goes on against
the baseline (fresh processes, interleaved ABBA, continuing the stored pairs' order) until its
interval is within `confirm_ci_rel` or it has `confirm_max_pairs` pairs.

Durable as it goes: a finished trial's record cannot change in Optuna, so each new pair is a
study user attribute of its own, ``tune.topup.<trial>.<pair index>`` = {"a": launch, "b": launch},
written before the next pair starts, and the end is ``tune.topup.<trial>`` = the summary (the
ratio over all pairs, why it stopped). A kill -9 during the top-up loses no stored pair; until
the summary exists the printed figure stays the decided one, and the next `explore` (a resume,
even with the budget already spent) continues from the stored pairs. `merge` puts a finished
top-up into a record's `measurement.confirmation` (all launches, the topped-up ratio and
speed-up, `topped_up`), which tuner.report.build_report applies, so explore, export, the paper
table and the bundle all quote the same figure. The told values (front membership) stay those
of admission.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

from tuner.measure.front import timed
from tuner.measure.paired import PairPolicy, compare_builds, counted_pairs, pair_interval
from tuner.records import Launch, Measurement

PREFIX = "tune.topup."


def chosen(report: Any, objectives: Sequence[Any]) -> list[Any]:
    """The confirmed points explore names: the best verified point of each timed objective and
    the knee, not the baseline, each once."""
    from tuner.measure.summary import confirmation, paired_best
    base = report.baseline.number if report.baseline is not None else None
    out: list[Any] = []
    picks = []
    for o in objectives:
        top = paired_best(report.verified, report.baseline, o) if timed(o) and report.baseline else None
        if top is not None:                  # the point explore prints as the best (summary.speedups)
            picks.append(top)
    if report.knee is not None:
        picks.append(report.knee)
    for r in picks:
        if r.number != base and confirmation(r) is not None and all(r.number != x.number for x in out):
            out.append(r)
    return out


def stored(attrs: Mapping[str, Any], number: int) -> tuple[list[tuple[Launch, Launch]], Mapping[str, Any] | None]:
    """The top-up pairs stored for trial `number` (in pair order) and its summary (None while
    unfinished)."""
    head = f"{PREFIX}{number}"
    pairs: dict[int, tuple[Launch, Launch]] = {}
    for key, doc in attrs.items():
        if not key.startswith(head + ".") or not isinstance(doc, Mapping):
            continue
        try:
            i = int(key[len(head) + 1:])
            pairs[i] = (Launch.from_dict(doc["a"]), Launch.from_dict(doc["b"]))
        except (KeyError, TypeError, ValueError):
            continue
    done = attrs.get(head)
    return [pairs[i] for i in sorted(pairs)], done if isinstance(done, Mapping) else None


def merge(records: Sequence[Any], attrs: Mapping[str, Any]) -> list[Any]:
    """The records with each finished top-up folded into `measurement.confirmation`."""
    if not any(k.startswith(PREFIX) for k in attrs):
        return list(records)
    out = []
    for r in records:
        conf = (r.measurement or {}).get("confirmation")
        pairs, done = stored(attrs, r.number)
        if isinstance(conf, Mapping) and done and "speedup" in done:
            merged = {**conf, "a": list(conf.get("a", [])) + [a.as_dict() for a, _ in pairs],
                      "b": list(conf.get("b", [])) + [b.as_dict() for _, b in pairs],
                      **{k: done[k] for k in ("ratio", "speedup", "pairs", "candidate_ms", "baseline_ms")},
                      "topped_up": {k: done[k] for k in ("from", "added", "stopped", "seconds", "at") if k in done}}
            r = replace(r, measurement={**r.measurement, "confirmation": merged})
        elif isinstance(conf, Mapping) and done:           # stopped by a failure: the decided figure stays
            r = replace(r, measurement={**r.measurement,
                                        "confirmation": {**conf, "topped_up": dict(done)}})
        out.append(r)
    return out


def _pairs(conf: Mapping[str, Any]) -> tuple[list[Launch], list[Launch]]:
    """A stored confirmation's launches, candidate's and baseline's, cut to whole pairs."""
    la = [Launch.from_dict(x) for x in conf.get("a", [])]
    lb = [Launch.from_dict(x) for x in conf.get("b", [])]
    n = min(len(la), len(lb))
    return la[:n], lb[:n]


def needed(conf: Mapping[str, Any], policy: PairPolicy) -> bool:
    """Whether a stored confirmation is short of the policy: fewer than max pairs and its
    interval wider than ci_rel."""
    la, lb = _pairs(conf)
    return 0 < len(la) < policy.max_pairs and not policy.settled(pair_interval(la, lb, policy))


def top_up(study: Any, spec: Any, target: Any, rec: Any, say: Callable[[str], None] = lambda m: None) -> Mapping[str, Any] | None:
    """Continue trial `rec`'s confirmation against the baseline to the target's confirm_ci_rel /
    confirm_max_pairs, storing each pair in `study`'s user attributes as it comes; returns the
    summary stored (None when nothing was needed or possible)."""
    conf = (rec.measurement or {}).get("confirmation")
    head = f"{PREFIX}{rec.number}"
    if not isinstance(conf, Mapping) or not spec.baseline or head in study.user_attrs:
        return None
    policy = target.spec.measure.pair_policy()
    earlier, _ = stored(study.user_attrs, rec.number)
    la, lb = _pairs(conf)
    first = len(la)
    if not first:
        return None
    la, lb = la + [a for a, _ in earlier], lb + [b for _, b in earlier]
    if len(la) >= policy.max_pairs or policy.settled(pair_interval(la, lb, policy)):
        if not earlier:
            return None                      # the confirmation already met the policy
    cand_r = spec.space.render(dict(rec.config))
    base_r = spec.space.render(spec.space.complete(spec.baseline))
    cand_b, base_b = target.build(spec.program, cand_r), target.build(spec.program, base_r)
    if isinstance(cand_b, Measurement) or isinstance(base_b, Measurement):
        return None                          # cannot rebuild now: the decided figure stays, retried next run
    exact = spec.program.verify.mode == "exact" and rec.checksum is not None
    wrong: list[str] = []

    def keep(i: int, a: Launch, b: Launch) -> None:
        # a new pair (i counts from the confirmation's first): durable before the next one starts
        study.set_user_attr(f"{head}.{i - first}", {"a": a.as_dict(), "b": b.as_dict()})
        if exact and a.checksum not in (None, rec.checksum):
            wrong.append(str(a.checksum))

    say(f"topping up trial {rec.number}'s figure: {len(la)} pairs so far, up to {policy.max_pairs} "
        f"(until the 95% interval is within {100 * policy.ci_rel:.0f}%)")
    c = compare_builds(target, spec.program, (cand_b, cand_r), (base_b, base_r), policy=policy,
                       race=lambda iv: "wrong output" if wrong else False, on_pair=keep, prior=(la, lb))
    doc: dict[str, Any] = {"from": first, "added": c.pairs - first, "seconds": round(c.seconds, 3),
                           "at": time.time()}
    if c.failure is not None or wrong:
        doc["stopped"] = "failed" if c.failure is not None else "wrong output"
        doc["detail"] = (c.failure.detail[-300:] if c.failure is not None
                         else f"a launch gave checksum {wrong[0]}, not {rec.checksum}")
    else:
        counted = counted_pairs(c.a, c.b, policy)
        doc.update(stopped=c.stopped, ratio=c.ratio.as_dict(), speedup=c.speedup.as_dict(), pairs=c.pairs,
                   candidate_ms=statistics.median(x.value for x, _ in counted),
                   baseline_ms=statistics.median(y.value for _, y in counted))
    study.set_user_attr(head, doc)
    return doc


def top_up_all(study: Any, spec: Any, target: Any, report: Any,
               say: Callable[[str], None] = lambda m: None) -> dict[int, Mapping[str, Any]]:
    """Top up every point `chosen` names whose confirmation is short of the policy (or whose
    top-up a killed run left unfinished); trial number -> the summary stored."""
    policy = target.spec.measure.pair_policy()
    done: dict[int, Mapping[str, Any]] = {}
    for rec in chosen(report, spec.objectives):
        conf = rec.measurement["confirmation"]
        started = any(k.startswith(f"{PREFIX}{rec.number}.") for k in study.user_attrs)
        if "topped_up" in conf or not (started or needed(conf, policy)):
            continue
        doc = top_up(study, spec, target, rec, say)
        if doc is not None:
            done[rec.number] = doc
    return done


__all__ = ["PREFIX", "chosen", "merge", "needed", "stored", "top_up", "top_up_all"]

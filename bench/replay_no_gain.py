"""Replay the confirmations bench/peers.py's tune runs stored: how many pairs the "no gain" stop
(tuner.measure.paired.no_gain) would have saved in each run's first T seconds, and how often it
would have changed which point is faster than the fastest one by median.

Why: the stop was chosen from these figures (README, Measurement, Confirmation); they come from
the stored pairs, so they can be recomputed without measuring anything:

    python bench/replay_no_gain.py --out results/peers-s11 [--tool tune] [--margin 0.05]

The front's fastest point is approximated by the best confirmed speed-up so far (at least the
baseline's 1.0). Reads the cache only (OUT/<kernel>-gcc/<tool>-s<seed>/).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuner.measure.paired import NO_GAIN, PairPolicy, no_gain, pair_interval  # noqa: E402
from tuner.measure.summary import confirmation  # noqa: E402
from tuner.records import Launch  # noqa: E402
from tuner.result import TrialRecord  # noqa: E402
from tuner.study import load_study  # noqa: E402
from tuner.studystore import open_study  # noqa: E402

KERNELS = ("depthwise", "digits", "stencil", "sort", "nbody", "conv2d")


def replay(study: object, objectives: object, margin: float, wall: float, policy: PairPolicy) -> dict[str, float]:
    trials = sorted((t for t in study.get_trials(deepcopy=False) if t.datetime_start), key=lambda t: t.number)
    out = {"confirmations": 0, "pairs": 0, "saved_pairs": 0, "saved_s": 0.0, "flips": 0}
    if not trials:
        return out
    t0 = min(t.datetime_start.timestamp() for t in trials)
    fastest = 1.0                              # the best confirmed speed-up so far (the baseline's)
    for t in trials:
        if t.datetime_start.timestamp() - t0 > wall:
            break
        rec = TrialRecord.from_trial(t, objectives)
        conf = (rec.measurement or {}).get("confirmation") or {}
        if not conf.get("a"):
            continue
        la = [Launch.from_dict(x) for x in conf["a"]]
        lb = [Launch.from_dict(x) for x in conf["b"]]
        pairs = min(len(la), len(lb))
        out["confirmations"] += 1
        out["pairs"] += pairs
        stop = no_gain(1.0 / fastest, margin, policy.min_pairs)
        for k in range(policy.min_pairs, pairs):
            if stop(pair_interval(la[:k], lb[:k], policy)) == NO_GAIN:
                out["saved_pairs"] += pairs - k
                out["saved_s"] += (pairs - k) / pairs * float(conf.get("seconds") or 0.0)
                short, full = pair_interval(la[:k], lb[:k], policy), pair_interval(la, lb, policy)
                out["flips"] += (short.value < 1.0 / fastest) != (full.value < 1.0 / fastest)
                break
        if confirmation(rec) is not None and rec.values:     # as Confirming._fastest_ratio
            fastest = max(fastest, float(conf["speedup"]["value"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="bench/peers.py's --out folder")
    ap.add_argument("--tool", default="tune")
    ap.add_argument("--margin", type=float, default=0.05, help="race_margin (default 0.05)")
    ap.add_argument("--wall", type=float, default=60.0, help="seconds from each run's first trial")
    ap.add_argument("--kernels", default=",".join(KERNELS))
    args = ap.parse_args()
    policy = PairPolicy(min_pairs=6, max_pairs=16, ci_rel=0.04)
    print(f"'no gain' at margin {args.margin:.0%} replayed on {args.out}'s {args.tool} runs, first {args.wall:.0f} s")
    print(f"{'kernel':10s} {'seeds':>5s} {'confirmations':>13s} {'pairs':>6s} {'saved pairs':>11s} {'saved s':>8s} {'fastest flips':>13s}")
    for kernel in args.kernels.split(","):
        name = f"{kernel}-gcc"
        spec = load_study(name)
        runs = sorted((args.out / name).glob(f"{args.tool}-s*/{name}"))
        tot = {"confirmations": 0, "pairs": 0, "saved_pairs": 0, "saved_s": 0.0, "flips": 0}
        for run in runs:
            for k, v in replay(open_study(spec, run, None, create=False), spec.objectives, args.margin,
                               args.wall, policy).items():
                tot[k] += v
        print(f"{kernel:10s} {len(runs):5d} {tot['confirmations']:13d} {tot['pairs']:6d} {tot['saved_pairs']:11d} "
              f"{tot['saved_s']:8.1f} {tot['flips']:13d}")


if __name__ == "__main__":
    main()

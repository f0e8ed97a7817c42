"""Where tune's first T seconds went in bench/peers.py's runs: the obvious points, the sweeps, the
search proposals, and how much of each was confirmation.

Why: at 60 s the peers table judges what tune had confirmed by then, and on some kernels it
ties. This prints, per kernel over the cached seeds, how the budget was spent (from the trial
records the runs stored: start and end of each trial, its confirmation's seconds), so the
reason for a tie is a figure and not a guess:

    python bench/peers_budget.py --out results/peers-s10 --wall 60 [--tool s9]

Reads the cache only (OUT/<kernel>-gcc/<tool>-s<seed>/); measures nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuner.result import TrialRecord, TrialStatus  # noqa: E402
from tuner.study import load_study  # noqa: E402
from tuner.studystore import open_study  # noqa: E402

OP_ATTR = "tune:anchored_op"
KINDS = ("obvious", "sweep", "search")


def kind(rec: TrialRecord, op: str | None) -> str:
    if rec.baseline or rec.seeded:
        return "obvious"               # the baseline and the seeded points (-O2, -Os, -O3 -march=native)
    return "sweep" if op == "sweep" else "search"


def budget(study: Any, objectives: Any, wall: float) -> dict[str, Any]:
    """Seconds and trials of each kind that started before `wall` s after the first trial,
    clipped at `wall`; confirmation seconds apart."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_start]
    t0 = min(t.datetime_start.timestamp() for t in trials)
    out: dict[str, Any] = {k: {"s": 0.0, "confirm_s": 0.0, "measured": 0, "skipped": 0, "copies": 0} for k in KINDS}
    first_search = None
    for t in trials:
        start = t.datetime_start.timestamp() - t0
        if start >= wall:
            continue
        end = (t.datetime_complete.timestamp() - t0) if t.datetime_complete else wall
        rec = TrialRecord.from_trial(t, objectives)
        k = kind(rec, t.system_attrs.get(OP_ATTR))
        row = out[k]
        row["s"] += min(end, wall) - start
        if rec.status == TrialStatus.DUPLICATE and rec.program_key:
            row["copies"] += 1            # built a program measured before: not run
            continue
        if rec.status in (TrialStatus.PRUNED, TrialStatus.DUPLICATE):
            row["skipped"] += 1
            continue
        row["measured"] += 1
        conf = (rec.measurement or {}).get("confirmation")
        if isinstance(conf, dict):
            # the confirmation ran at the trial's end: the part of it before `wall`
            secs = float(conf.get("seconds", 0.0))
            row["confirm_s"] += max(0.0, min(end, wall) - max(start, end - secs))
        if k == "search" and first_search is None:
            first_search = start
    out["first_search_s"] = first_search
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="a bench/peers.py --out folder")
    ap.add_argument("--kernels", default="depthwise,digits,stencil,sort,nbody,conv2d")
    ap.add_argument("--tool", default="tune")
    ap.add_argument("--wall", type=float, default=60.0)
    args = ap.parse_args(argv)
    out = Path(args.out)
    print(f"tune's first {args.wall:.0f} s per kernel (mean over seeds): seconds [of which confirmation], trials "
          f"measured (+ skipped by the surrogate or repeated / built a program measured before)")
    print(f"{'kernel':10s} {'seeds':>5s}  {'obvious points':>28s}  {'sweeps':>28s}  {'search':>28s}  first search")
    for kernel in args.kernels.split(","):
        name = f"{kernel}-gcc"
        runs = sorted((out / name).glob(f"{args.tool}-s*/{name}"))
        if not runs:
            continue
        spec = load_study(name)
        rows = [budget(open_study(spec, r, None, create=False), spec.objectives, args.wall) for r in runs]
        cells = []
        for k in KINDS:
            s = statistics.mean(r[k]["s"] for r in rows)
            c = statistics.mean(r[k]["confirm_s"] for r in rows)
            n = statistics.mean(r[k]["measured"] for r in rows)
            sk = statistics.mean(r[k]["skipped"] for r in rows)
            cp = statistics.mean(r[k]["copies"] for r in rows)
            cells.append(f"{s:5.1f}s [{c:4.1f}] {n:4.1f} (+{sk:4.1f}/{cp:4.1f})")
        firsts = [r["first_search_s"] for r in rows if r["first_search_s"] is not None]
        first = f"{statistics.median(firsts):5.1f}s" if firsts else "  none"
        print(f"{kernel:10s} {len(rows):5d}  {cells[0]:>28s}  {cells[1]:>28s}  {cells[2]:>28s}  {first}"
              f" ({len(firsts)}/{len(rows)} seeds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

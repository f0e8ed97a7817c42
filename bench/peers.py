"""tune against its peers, side by side: the same kernels, evaluation budget and wall-clock budget.

    python bench/peers.py --setup-opentuner          # once: a venv for OpenTuner 0.8.8 (see below)
    python bench/peers.py --kernels sort --seeds 0,1,2 --evals 60 --wall 120
    python bench/peers.py --report                   # the table from what is cached
    python bench/peers.py --remeasure-only --redo    # re-measure the cached answers from round 1

Tools, all searching the generated gcc space of each kernel's `<kernel>-gcc` study:

* `tune`: `tune explore` with its defaults (sampler `auto`, which is `anchored` at 384 knobs,
  surrogate on);
* `random`: uniform random search over the same knobs, every knob drawn independently (the
  style of Collective Knowledge's random exploration), `--sampler random --surrogate off
  --no-seeds` (no obvious points first: the peer is random search alone);
* `opentuner`: OpenTuner 0.8.8 with its default search (an AUC bandit over differential
  evolution, greedy mutation and Nelder-Mead) over the -O level and the same on/off/default
  flags (and the multi-valued -f options); no params, no -march (as its gccflags example);
* `O3`, `O3-native`: plain `-O3` and `-O3 -march=native`, no search.

Extra tune variants for choosing the default: `--tool 'tpe=--sampler tpe'` (any `tune explore`
arguments); `--goal NAME` judges that variant in the goal line. OpenTuner needs SQLAlchemy < 2.0 and Optuna >= 2.0, so it lives in its own venv
(`.venv-opentuner` in this worktree, not committed; `--setup-opentuner` creates it with
`pip install opentuner==0.8.8 "sqlalchemy<2.0"`) and runs as a subprocess
(bench/opentuner_driver.py); this process builds, runs and verifies its configurations with
tune's evaluator, so all tools are measured and checked the same way.

One search run per tool, kernel and seed goes on until it has done `--evals` evaluations AND
spent `--wall` seconds; "equal evaluations" reads its answer after the first N evaluations,
"equal wall time" its answer after T seconds. A tool's answer is what that tool would report
(bench/peers_answers.py): OpenTuner's and random's fastest own measurement; tune's best
*confirmed* point (its paired speed-up over its baseline, what `tune explore` prints).

Then, per kernel, all answers (every tool x seed x budget), -O3 -march=native and -O3 itself
(the A/A control: the noise floor) are re-measured side by side against plain -O3
(bench/peers_remeasure.py): `--pairs` rounds, each round one ABBA pair of fresh processes of
every candidate, in a seeded shuffled order, so a load spike hits every tool alike. Per
candidate: the median pair ratio with its 95% interval; per tool: geometric means over seeds of
the medians, lows and highs. Against -O3 -march=native the verdict is "ahead" / "behind by x%"
when the intervals are apart, "tie (within noise)" when they overlap. Against the peers it is
head to head (bench/peers_verdict.py): in the same rounds, tune's answer meets each peer's answer
of the same seed in ABBA pairs of its own (a duel); the pooled paired ratio decides "ahead" /
"behind" / "tie", calibrated by the A/A row, and a tie gets more rounds (`--max-pairs`, `--step`,
only its duels and the A/A row) with a confidence level that pays for every look. Runs and re-measurements are
cached in `--out`, so a long bench splits into short runs (`--max-minutes`), a crashed one
resumes, and `--remeasure-only [--redo]` re-measures the cached answers without searching
(e.g. again on a quiet machine). The goal line: tune ahead of OpenTuner and random on every
kernel at equal wall time (head to head, beyond the noise), and never behind -O3 -march=native.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402

from tuner.space import config_key  # noqa: E402
from tuner.study import StudySpec, load_study  # noqa: E402

from peers_answers import answer, minimum, pool  # noqa: E402
from peers_remeasure import Remeasure  # noqa: E402
from peers_runs import opentuner_run, run_path, say, setup_opentuner, tune_run  # noqa: E402
from peers_verdict import decide, extend, level_for, looks, register  # noqa: E402

KERNELS = {"conv2d": "conv2d-gcc", "depthwise": "depthwise-gcc", "digits": "digits-gcc",
           "sort": "sort-gcc", "stencil": "stencil-gcc", "nbody": "nbody-gcc"}
TUNE_TOOLS = {"tune": [], "random": ["--sampler", "random", "--surrogate", "off", "--no-seeds"]}
FIXED = {"O3": {"opt_level": "-O3"}, "O3-native": {"opt_level": "-O3", "march": "-march=native"}}

optuna.logging.set_verbosity(optuna.logging.WARNING)


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


# --- the side-by-side re-measurement and the report ------------------------------------------------
VIEWS = ("wall", "evals")


def budget_of(view: str, evals: int, wall: float) -> dict:
    return {"evals": evals} if view == "evals" else {"wall": wall}


def answers(out: Path, kernel: str, tools: list[str], seeds: list[int], evals: int,
            wall: float) -> tuple[dict[tuple[str, int, str], dict | None], int]:
    """(tool, seed, view) -> the run's answer (bench/peers_answers.py); and how many runs are missing."""
    got: dict[tuple[str, int, str], dict | None] = {}
    missing = 0
    for tool in tools:
        for seed in seeds:
            path = run_path(out, kernel, tool, seed)
            if not path.exists():
                missing += 1
                continue
            run = json.loads(path.read_text())
            for view in VIEWS:
                got[(tool, seed, view)] = answer(run, **budget_of(view, evals, wall))
    return got, missing


def remeasurer(out: Path, kernel: str) -> Remeasure:
    return Remeasure(load_study(KERNELS[kernel]), out / KERNELS[kernel] / "interleaved", FIXED["O3"])


@dataclass(frozen=True)
class Rounds:
    """How many rounds: `pairs` for everything, then up to `max_pairs` for tied duels, `step` at a
    time; `band`: the smallest gap a head-to-head verdict calls a win (bench/peers_verdict.py)."""

    pairs: int = 15
    max_pairs: int = 45
    step: int = 10
    band: float = 0.01

    @property
    def schedule(self) -> list[int]:
        return looks(self.pairs, self.max_pairs, self.step)


def peers_of(tools: list[str], goal: str) -> list[str]:
    return [t for t in ("opentuner", "random") if t in tools and t != goal]


def remeasure_kernel(out: Path, kernel: str, tools: list[str], seeds: list[int], evals: int, wall: float,
                     rounds: Rounds, stop: Callable[[], bool], goal: str = "tune") -> bool:
    """Re-measure all of a kernel's answers, -O3 -march=native and -O3 itself together, and the
    duels of `goal`'s answers against each peer's (equal wall time, seed by seed), in rounds; then
    more rounds for the tied duels. Only once every run of the kernel is done (a late candidate
    would not share the rounds). False when not done (runs missing, or `stop()`)."""
    got, missing = answers(out, kernel, tools, seeds, evals, wall)
    if missing:
        return False
    rem = remeasurer(out, kernel)
    spec = rem.spec
    keys = [rem.add(spec.space.complete(partial)) for partial in FIXED.values()]
    keys += [rem.add(a["config"]) for a in got.values() if a is not None]
    keys = list(dict.fromkeys(keys))
    duels = register(rem, got, goal, peers_of(tools, goal), seeds)
    ids = sorted({d for by_seed in duels.values() for d in by_seed.values() if d})
    say(f"[{kernel}] re-measuring {len(keys)} distinct candidates and {len(ids)} duels side by side, "
        f"{rounds.pairs} rounds (tied duels: up to {rounds.max_pairs})")
    try:
        return (rem.run(keys + ids, rounds.pairs, stop, say)
                and extend(rem, duels, rem.ref_key, rounds.schedule, stop, say, rounds.band))
    finally:
        rem.cleanup()


def summarise(figs: list[dict]) -> dict | None:
    """Over seeds: geometric means of the medians, of the lows and of the highs."""
    if not figs or any("failed" in f for f in figs):
        return None
    return {k: geomean([f[k] for f in figs]) for k in ("speedup", "low", "high")}


def cell(s: dict | None) -> str:
    return "-" if s is None else f"{s['speedup']:.3f} [{s['low']:.3f}, {s['high']:.3f}]"


def verdict(mine: dict, other: dict) -> str:
    if mine["low"] > other["high"]:
        return "ahead"
    if mine["high"] < other["low"]:
        return f"behind by {100 * (1 - mine['speedup'] / other['speedup']):.1f}%"
    return "tie (within noise)"


def flags_text(spec: StudySpec, config: dict) -> str:
    """The -O level and -march of an answer, and how many other knobs it moved from their defaults."""
    moved = [k for k, v in config.items() if k in spec.space.knobs and v != spec.space.knobs[k].default
             and k not in ("opt_level", "march")]
    main = " ".join(str(config[k]) for k in ("opt_level", "march") if config.get(k) not in (None, ""))
    return f"{main} + {len(moved)} other knobs moved" if moved else main


def report(out: Path, kernels: list[str], tools: list[str], seeds: list[int], evals: int, wall: float,
           rounds: Rounds, goal: str = "tune") -> int:
    """Print the tables from the cache (measures nothing)."""
    n_rounds = rounds.pairs
    missing = 0
    tables: dict[str, list[str]] = {v: [] for v in VIEWS}
    means: dict[str, list[float]] = {t: [] for t in tools}
    goal_ok = True
    detail = ["", "per seed (equal wall time): tool seed: how the answer was chosen, its flags, "
                  "re-measured speed-up [95% interval]"]
    duel_lines = ["", f"head to head at equal wall time: {goal}'s answer against each peer's, seed by seed "
                      "(the peer's time / tune's; pairs of all seeds pooled; looks at rounds "
                      f"{rounds.schedule}, each at level {100 * level_for(len(rounds.schedule)):.2f}%)"]
    for kernel in kernels:
        got, miss = answers(out, kernel, tools, seeds, evals, wall)
        rem = remeasurer(out, kernel)
        spec = rem.spec
        fig = lambda config: rem.result(config_key(config), upto=n_rounds)     # noqa: E731
        aa = fig(rem.reference)
        native = fig(spec.space.complete(FIXED["O3-native"]))
        incomplete = miss > 0 or aa is None or rem.pairs(rem.ref_key) < n_rounds
        for view in VIEWS:
            row = [kernel, cell(aa), cell(native)]
            per_tool = {}
            seed_behind: list[str] = []
            for tool in tools:
                figs = []
                for seed in seeds:
                    a = got.get((tool, seed, view))
                    f = fig(a["config"]) if a else {"failed": "nothing measured"}
                    if f is None or ("failed" not in f and rem.pairs(config_key(a["config"]), n_rounds) < n_rounds):
                        incomplete = True
                        continue
                    figs.append(f)
                    if view == "wall" and tool == goal and native and "failed" not in f \
                            and verdict(f, native).startswith("behind"):
                        seed_behind.append(f"seed {seed} {verdict(f, native)} -O3 -march=native")
                    if view == "wall" and a:
                        detail.append(f"  {kernel} {tool} s{seed}: {a['how']}, {flags_text(spec, a['config'])}: "
                                      + (f"FAILED {f['failed']}" if "failed" in f else cell(f)))
                per_tool[tool] = summarise(figs) if len(figs) == len(seeds) else None
                row.append(cell(per_tool[tool]))
            if view == "wall":
                mine = per_tool.get(goal)
                words = []
                duels = register(rem, got, goal, peers_of(tools, goal), seeds)
                no_answer = [s for s in seeds if not got.get((goal, s, view))]
                if no_answer:
                    words.append(f"{goal} has no answer on seed(s) {no_answer}")
                    goal_ok = False
                for peer, by_seed in duels.items():
                    v = decide(rem, by_seed, rem.ref_key, rounds.schedule, peer, rounds.band)
                    incomplete = incomplete or not v.decided
                    words.append(f"vs {peer}: {v.short()}")
                    duel_lines.append(f"  {kernel} vs {peer}: {v.text()}; per seed: {', '.join(v.seeds)}")
                    goal_ok = goal_ok and v.word == "ahead"
                if mine and native:
                    v = verdict(mine, native)
                    words.append(f"vs -O3 -march=native: {v}")
                    goal_ok = goal_ok and not v.startswith("behind") and not seed_behind
                words += seed_behind
                row.append("; ".join(words) or "-")
                for tool, s in per_tool.items():
                    if s:
                        means[tool].append(s["speedup"])
            tables[view].append("| " + " | ".join(row) + " |")
        missing += incomplete
    head = ["kernel", "-O3 vs itself (A/A)", "-O3 -march=native"] + tools
    print(f"\nspeed-up over plain -O3, re-measured side by side: {n_rounds} rounds, each one ABBA pair of fresh "
          f"processes of every candidate against -O3 in a shuffled order; per candidate the median pair "
          f"ratio [95% interval]; per tool the geometric mean over seeds {seeds} of the medians [of the lows, "
          f"of the highs]; answers: tune's best confirmed point, the others' fastest measurement")
    for view, title in (("wall", f"at equal wall time ({wall:g} s)"), ("evals", f"at equal evaluations ({evals})")):
        print(f"\n{title}")
        cols = head + (["verdict for " + goal] if view == "wall" else [])
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        print("\n".join(tables[view]))
    print("\n".join(detail + duel_lines))
    print("geometric mean over kernels at equal wall time: "
          + ", ".join(f"{t} {geomean(v):.3f}x" for t, v in means.items() if v))
    if missing:
        print(f"INCOMPLETE: {missing} kernel(s) not searched or not re-measured yet; run the same command again")
        return 3
    print(("GOAL MET: " if goal_ok else "GOAL NOT MET: ") +
          f"{goal} ahead of OpenTuner and random on every kernel at equal wall time, head to head beyond "
          "the noise, and never behind -O3 -march=native")
    return 0



def own_table(out: Path, kernels: list[str], tools: list[str], seeds: list[int], evals: int, wall: float) -> int:
    """Each tool's best latency by its own measurements (no re-measurement): a first look while the
    re-measurement waits, biased towards tools that measured more (the minimum of more noisy
    values is lower)."""
    print(f"\nbest latency_ms by each tool's own measurements (not re-measured); mean over seeds {seeds}; "
          f"budget {evals} evaluations / {wall:g} s; last row: geometric mean of (first tool's ms / tool's ms)")
    head = ["kernel"] + [f"{t} @{evals} evals" for t in tools] + [f"{t} @{wall:g} s" for t in tools]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    ratios: dict[tuple[str, str], list[float]] = {}
    for kernel in kernels:
        cells = [kernel]
        for view, budget in (("evals", {"evals": evals}), ("wall", {"wall": wall})):
            ref = None
            for tool in tools:
                vals = []
                for seed in seeds:
                    path = run_path(out, kernel, tool, seed)
                    b = minimum(pool(json.loads(path.read_text()), **budget)) if path.exists() else None
                    if b is not None:
                        vals.append(b["latency_ms"])
                cells.append(fmt(vals))
                mean = statistics.mean(vals) if vals else None
                ref = mean if ref is None and tool == tools[0] else ref
                if mean and ref:
                    ratios.setdefault((tool, view), []).append(ref / mean)
        print("| " + " | ".join(cells) + " |")
    print("| geometric mean | " + " | ".join(f"{geomean(ratios.get((t, v), [])):.3f}" for v in ("evals", "wall")
                                            for t in tools) + " |")
    return 0


def fmt(vals: list[float]) -> str:
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{statistics.mean(vals):.3f} [{min(vals):.2f}-{max(vals):.2f}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", default=",".join(KERNELS), help="comma list of " + ", ".join(KERNELS))
    ap.add_argument("--tools", default="tune,opentuner,random", help="comma list (default: tune,opentuner,random)")
    ap.add_argument("--tool", action="append", default=[], metavar="NAME=ARGS",
                    help="define a tune variant to name in --tools: NAME='tune explore arguments' "
                         "(e.g. tpe='--sampler tpe')")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--evals", type=int, default=60, help="evaluation budget N (default 60)")
    ap.add_argument("--wall", type=float, default=120.0, help="wall-clock budget T in seconds (default 120)")
    ap.add_argument("--pairs", type=int, default=15, metavar="R",
                    help="re-measurement rounds: ABBA pairs per candidate against -O3 (default 15)")
    ap.add_argument("--max-pairs", type=int, default=45, metavar="R",
                    help="head to head: rounds a tied duel may get in all (default 45; = --pairs: no extra rounds)")
    ap.add_argument("--step", type=int, default=10, help="head to head: extra rounds between looks (default 10)")
    ap.add_argument("--band", type=float, default=0.01,
                    help="head to head: the smallest gap called a win, relative (default 0.01; the A/A "
                         "row's bias when larger)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "peers")
    ap.add_argument("--report", action="store_true", help="only print the table from the cache (measures nothing)")
    ap.add_argument("--no-remeasure", action="store_true", help="run the searches only")
    ap.add_argument("--remeasure-only", action="store_true",
                    help="search nothing: re-measure the cached answers (and continue an unfinished re-measurement)")
    ap.add_argument("--redo", action="store_true",
                    help="with --remeasure-only: set the kernels' cached re-measurements aside "
                         "(renamed, kept) and re-measure from round 1, e.g. on a quiet machine")
    ap.add_argument("--own", action="store_true",
                    help="only print each tool's best by its own measurements, from the cache (no re-measurement)")
    ap.add_argument("--setup-opentuner", action="store_true", help="create the OpenTuner venv and exit")
    ap.add_argument("--goal", default="tune", metavar="TOOL",
                    help="the tool the goal line judges (default: tune, i.e. tune's defaults)")
    ap.add_argument("--max-minutes", type=float, default=None, metavar="M",
                    help="start no new search or re-measurement after M minutes (the cache keeps what is "
                         "done: run the same command again to go on); for chunks under a shared lock")
    args = ap.parse_args()
    if args.setup_opentuner:
        setup_opentuner()
        return 0
    kernels = [k for k in args.kernels.split(",") if k]
    unknown = [k for k in kernels if k not in KERNELS]
    if unknown:
        ap.error(f"unknown kernel {unknown[0]} (known: {', '.join(KERNELS)})")
    extra = dict(item.split("=", 1) for item in args.tool)
    tune_tools = {**TUNE_TOOLS, **{name: value.split() for name, value in extra.items()}}
    tools = [t for t in args.tools.split(",") if t]
    for t in tools:
        if t not in tune_tools and t != "opentuner":
            ap.error(f"unknown tool {t} (known: opentuner, {', '.join(tune_tools)}; define more with --tool)")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.goal not in tools:
        ap.error(f"--goal {args.goal} is not in --tools")
    if args.own:
        return own_table(args.out, kernels, tools, seeds, args.evals, args.wall)
    if args.redo and not args.remeasure_only:
        ap.error("--redo goes with --remeasure-only")
    stop_at = time.time() + 60 * args.max_minutes if args.max_minutes is not None else math.inf
    stop = lambda: time.time() > stop_at       # noqa: E731
    rounds = Rounds(args.pairs, max(args.pairs, args.max_pairs), args.step, args.band)
    table = lambda: report(args.out, kernels, tools, seeds, args.evals, args.wall, rounds, args.goal)  # noqa: E731
    if args.report:
        return table()
    if not args.remeasure_only:
        # seed by seed, so that a chunked bench has every kernel and tool for seed 0 first
        for seed in seeds:
            for kernel in kernels:
                spec = load_study(KERNELS[kernel])
                for tool in tools:
                    path = run_path(args.out, kernel, tool, seed)
                    if path.exists():
                        continue
                    if stop():
                        say("--max-minutes reached: run the same command again to go on")
                        return table()
                    say(f"[{kernel}] {tool} seed {seed}: searching ({args.evals} evaluations and {args.wall:g} s)")
                    run = (opentuner_run(spec, seed, args.evals, args.wall, args.out) if tool == "opentuner"
                           else tune_run(spec, tool, tune_tools[tool], seed, args.evals, args.wall, args.out))
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps(run, default=str))
                    a = answer(run, wall=args.wall)
                    say(f"[{kernel}] {tool} seed {seed}: {len(run['evals'])} evaluations in {run['wall_s']:.0f} s, "
                        f"answer at {args.wall:g} s: {a['how'] if a else None} {a['in_campaign'] if a else ''} "
                        f"{' '.join(run['notes'])}")
    if not args.no_remeasure:
        for kernel in kernels:
            if args.redo:
                cache = remeasurer(args.out, kernel).cache_file
                if cache.exists():
                    aside = cache.with_name(f"remeasure-{dt.datetime.now():%Y%m%dT%H%M%S}.json")
                    cache.rename(aside)
                    say(f"[{kernel}] earlier re-measurement set aside: {aside}")
            if stop():
                say("--max-minutes reached: run the same command again to go on")
                break
            t = time.time()
            done = remeasure_kernel(args.out, kernel, tools, seeds, args.evals, args.wall, rounds, stop, args.goal)
            say(f"[{kernel}] re-measurement {'done' if done else 'not finished'} ({time.time() - t:.0f} s)")
    return table()


if __name__ == "__main__":
    sys.exit(main())

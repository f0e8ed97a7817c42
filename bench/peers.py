"""tune against its peers, side by side: the same kernels, evaluation budget and wall-clock budget.

    python bench/peers.py --setup-opentuner          # once: a venv for OpenTuner 0.8.8 (see below)
    python bench/peers.py --kernels sort --seeds 0,1,2 --evals 60 --wall 120
    python bench/peers.py --report                   # the table from what is cached

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
spent `--wall` seconds; "equal evaluations" reads its best after the first N evaluations,
"equal wall time" its best after T seconds (each tool judges its best by its own measurements).
Each best is then re-measured against plain -O3 by this bench's own loop: `--pairs` ABBA pairs
of fresh processes (A = -O3, B = the candidate, in the order A B B A A B B A ...), each process
running the kernel a fixed number of times; the speedup is the median over pairs of
A's median / B's median, with a 95% interval from the pairs' order statistics. Runs and
re-measurements are cached in `--out` (results/peers) so a long bench can be split across
short runs. The goal line: tune ahead of OpenTuner and random on every kernel at equal wall
time, and never behind -O3 -march=native.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402

from tuner.evaluate import Evaluator  # noqa: E402
from tuner.knobs.categorical import CategoricalKnob  # noqa: E402
from tuner.knobs.flag import FlagKnob  # noqa: E402
from tuner.result import TrialRecord, TrialStatus  # noqa: E402
from tuner.space import config_key  # noqa: E402
from tuner.study import StudySpec, load_study  # noqa: E402
from tuner.studystore import open_study  # noqa: E402
from tuner.targets import load_target, make_target  # noqa: E402

KERNELS = {"conv2d": "conv2d-gcc", "depthwise": "depthwise-gcc", "digits": "digits-gcc",
           "sort": "sort-gcc", "stencil": "stencil-gcc", "nbody": "nbody-gcc"}
TUNE_TOOLS = {"tune": [], "random": ["--sampler", "random", "--surrogate", "off", "--no-seeds"]}
FIXED = {"O3": {"opt_level": "-O3"}, "O3-native": {"opt_level": "-O3", "march": "-march=native"}}
OT_VENV = ROOT / ".venv-opentuner"
OT_PYTHON = OT_VENV / "bin" / "python"
REPS_PER_PROCESS = 5          # kernel calls timed in each re-measurement process (after 1 warm-up)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- OpenTuner's venv ---------------------------------------------------------------------
def setup_opentuner() -> None:
    if not OT_PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(OT_VENV)], check=True)
    subprocess.run([str(OT_PYTHON), "-m", "pip", "install", "-q", "opentuner==0.8.8", "sqlalchemy<2.0"], check=True)
    subprocess.run([str(OT_PYTHON), "-c", "import opentuner"], check=True)
    say(f"OpenTuner 0.8.8 is ready in {OT_VENV}")


# --- search runs ----------------------------------------------------------------------------
def run_path(out: Path, kernel: str, tool: str, seed: int) -> Path:
    return out / kernel / f"run-{tool}-s{seed}.json"


def tune_run(spec: StudySpec, tool: str, args: list[str], seed: int, evals: int, wall: float, out: Path) -> dict:
    """`tune explore` until `evals` trials have finished, then on (SIGINT) until `wall` seconds."""
    results = out / spec.name / f"{tool}-s{seed}"
    if results.exists():
        subprocess.run(["rm", "-rf", str(results)], check=True)
    base = [sys.executable, "-m", "tuner", "explore", spec.name, "--seed", str(seed), "--results", str(results),
            "--no-export", "--no-progress", *args]
    t0 = time.time()
    proc = subprocess.run([*base, "--trials", str(evals)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"tune explore failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    stderr = proc.stderr
    left = wall - (time.time() - t0)
    if left > 0:
        # SIGINT stops it as Ctrl-C would (a background shell starts us with SIGINT ignored, and
        # Python keeps an inherited "ignore": reset it for the child)
        p = subprocess.Popen([*base, "--trials", "100000"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            p.wait(timeout=left)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGINT)
        stderr += p.communicate(timeout=600)[1]
    wall_s = time.time() - t0
    study = open_study(spec, results / spec.name, None, create=False)
    start = dt.datetime.fromtimestamp(t0)
    evals_out = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        r = TrialRecord.from_trial(t, spec.objectives)
        if not r.finished or t.datetime_complete is None:
            continue
        evals_out.append({"t": (t.datetime_complete - start).total_seconds(), "config": r.config,
                          "latency_ms": r.values.get("latency_ms") if r.status == TrialStatus.COMPLETE else None,
                          "status": str(r.status.value)})
    overhead = [ln for ln in stderr.splitlines() if "engine overhead" in ln]
    status = subprocess.run([sys.executable, "-m", "tuner", "status", spec.name, "--results", str(results),
                             "--format", "json"], capture_output=True, text=True)
    surrogate = json.loads(status.stdout).get("surrogate") if status.returncode == 0 else None
    return {"tool": tool, "args": args, "seed": seed, "evals": evals_out, "wall_s": wall_s,
            "surrogate": surrogate,
            "notes": overhead + [ln for ln in stderr.splitlines() if ln.startswith("sampler:")][:1]}


def opentuner_params(spec: StudySpec) -> list[dict]:
    """The -O level and the on/off/default flags (and multi-valued -f options) of the space."""
    params = []
    for k in spec.space.knobs.values():
        if k.name == "opt_level" or isinstance(k, FlagKnob) or (isinstance(k, CategoricalKnob) and k.name.startswith("f_")):
            choices = list(k.states if isinstance(k, FlagKnob) else k.choices)
            params.append({"name": k.name, "choices": choices})
    return params


def opentuner_run(spec: StudySpec, seed: int, evals: int, wall: float, out: Path) -> dict:
    if not OT_PYTHON.exists():
        raise SystemExit(f"OpenTuner is not installed: run `python bench/peers.py --setup-opentuner` ({OT_VENV})")
    results = out / spec.name / f"opentuner-s{seed}"
    target = make_target(load_target(spec.target), results / "builds")
    evaluator = Evaluator(spec, target, results)
    params = opentuner_params(spec)
    proc = subprocess.Popen([str(OT_PYTHON), str(ROOT / "bench" / "opentuner_driver.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    t0 = time.time()
    assert proc.stdin and proc.stdout
    proc.stdin.write(json.dumps({"params": params, "seed": seed}) + "\n")
    proc.stdin.flush()
    evals_out: list[dict] = []
    while True:
        line = proc.stdout.readline()
        if not line:
            break
        chosen = json.loads(line)["config"]
        config = spec.space.complete(chosen)
        outcome = evaluator.evaluate(config)
        latency = outcome.values["latency_ms"] if outcome.ok else None
        evals_out.append({"t": time.time() - t0, "config": config, "latency_ms": latency,
                          "status": "complete" if outcome.ok else str(outcome.reason)})
        done = len(evals_out) >= evals and time.time() - t0 >= wall
        proc.stdin.write(json.dumps({"stop": True} if done else {"time": None if latency is None else latency / 1e3}) + "\n")
        proc.stdin.flush()
        if done:
            break
    proc.wait(timeout=60)
    target.cleanup()
    return {"tool": "opentuner", "args": [], "seed": seed, "evals": evals_out, "wall_s": time.time() - t0,
            "notes": [f"{len(params)} OpenTuner parameters"]}


def best(run: dict, evals: int | None = None, wall: float | None = None) -> dict | None:
    """The run's best measured configuration within a budget (by the tool's own measurements)."""
    pool = run["evals"][:evals] if evals is not None else [e for e in run["evals"] if e["t"] <= wall]
    ok = [e for e in pool if e["status"] == "complete" and e["latency_ms"] is not None]
    return min(ok, key=lambda e: e["latency_ms"]) if ok else None


# --- the bench's own re-measurement: ABBA pairs of fresh processes ------------------------------
class Remeasure:
    """Builds configurations with tune's target (cached) and times them in fresh processes."""

    def __init__(self, spec: StudySpec, out: Path, pairs: int) -> None:
        self.spec = spec
        self.pairs = pairs
        self.dir = out / spec.name / "remeasure"
        self.target = make_target(load_target(spec.target), self.dir / "builds")
        self.cache_file = out / spec.name / "remeasure.json"
        self.cache: dict[str, Any] = json.loads(self.cache_file.read_text()) if self.cache_file.exists() else {}

    def command(self, config: dict) -> tuple[list[str], dict[str, str]]:
        rendering = self.spec.space.render(config)
        built = self.target.build(self.spec.program, rendering)
        if not hasattr(built, "command"):
            raise RuntimeError(f"cannot build {config_key(config)}: {built.detail[:300]}")
        env = {**os.environ, **rendering.env, "TUNE_WARMUP": "1", "TUNE_MIN_REPS": str(REPS_PER_PROCESS),
               "TUNE_MAX_REPS": str(REPS_PER_PROCESS), "TUNE_MAX_SECONDS": "60"}
        return [*built.command, *self.spec.program.args, *rendering.args], env

    @staticmethod
    def launch(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("@tune ")]
        if proc.returncode != 0 or not line:
            raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-300:]}")
        doc = json.loads(line[-1][6:])
        return statistics.median(doc["samples_ms"]), doc.get("checksum", "")

    def speedup(self, config: dict) -> dict:
        """-O3's time over the candidate's, median of ABBA pairs, with a 95% interval."""
        key = config_key(config)
        if key in self.cache and len(self.cache[key]["ratios"]) >= self.pairs:
            return self.cache[key]
        a_cmd, a_env = self.command(self.spec.space.complete(FIXED["O3"]))
        b_cmd, b_env = self.command(config)
        ratios, a_ms, b_ms = [], [], []
        for i in range(self.pairs):
            order = ("A", "B") if i % 2 == 0 else ("B", "A")
            got: dict[str, tuple[float, str]] = {}
            for who in order:
                got[who] = self.launch(a_cmd, a_env) if who == "A" else self.launch(b_cmd, b_env)
            if got["A"][1] != got["B"][1]:
                raise RuntimeError(f"candidate {key}: output differs from -O3's")
            a_ms.append(got["A"][0])
            b_ms.append(got["B"][0])
            ratios.append(got["A"][0] / got["B"][0])
        lo, hi = median_interval(ratios)
        res = {"speedup": statistics.median(ratios), "low": lo, "high": hi, "ratios": ratios,
               "a_ms": a_ms, "b_ms": b_ms, "config": config}
        self.cache[key] = res
        self.cache_file.write_text(json.dumps(self.cache, indent=1, default=str))
        return res


def median_interval(xs: list[float]) -> tuple[float, float]:
    """Distribution-free 95% interval of the median (order statistics, normal approximation)."""
    s = sorted(xs)
    n = len(s)
    half = 0.98 * math.sqrt(n)
    lo, hi = max(0, math.floor(n / 2 - half)), min(n - 1, math.ceil(n / 2 + half))
    return s[lo], s[hi]


# --- the report --------------------------------------------------------------------------------
def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def report(out: Path, kernels: list[str], tools: list[str], seeds: list[int], evals: int, wall: float,
           pairs: int, measure: Callable[[], bool], goal: str = "tune") -> int:
    """Print the table; `measure()` says whether a configuration not yet re-measured may be now."""
    rows = []
    goal_ok = True
    missing = 0     # runs not done or bests not re-measured yet
    table: dict[tuple[str, str, str], list[float]] = {}
    for kernel in kernels:
        spec = load_study(KERNELS[kernel])
        rem = Remeasure(spec, out, pairs)
        fixed = {}
        for name, partial in FIXED.items():
            if name == "O3":
                continue
            if config_key(spec.space.complete(partial)) in rem.cache or measure():
                fixed[name] = rem.speedup(spec.space.complete(partial))
        for tool in tools:
            for view, budget in (("evals", {"evals": evals}), ("wall", {"wall": wall})):
                vals = []
                for seed in seeds:
                    path = run_path(out, kernel, tool, seed)
                    if not path.exists():
                        missing += 1
                        continue
                    run = json.loads(path.read_text())
                    b = best(run, **budget)
                    if b is None:
                        vals.append(0.0)
                        continue
                    key = config_key(b["config"])
                    if key not in rem.cache and not measure():
                        missing += 1
                        continue
                    vals.append(rem.speedup(b["config"])["speedup"])
                table[(kernel, tool, view)] = vals
        for name, res in fixed.items():
            table[(kernel, name, "fixed")] = [res["speedup"]]
        rem.target.cleanup()
    print(f"\nspeedup over plain -O3, re-measured ({pairs} ABBA pairs of fresh processes, median of pair ratios); "
          f"per tool: mean over seeds {seeds} [min-max]; budget {evals} evaluations / {wall:g} s")
    head = ["kernel", "-O3 -march=native"] + [f"{t} @{evals} evals" for t in tools] + [f"{t} @{wall:g} s" for t in tools]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for kernel in kernels:
        cells = [kernel, fmt(table.get((kernel, "O3-native", "fixed"), []))]
        for view in ("evals", "wall"):
            cells += [fmt(table.get((kernel, t, view), [])) for t in tools]
        print("| " + " | ".join(cells) + " |")
        tune_wall = table.get((kernel, goal, "wall"), [])
        native = table.get((kernel, "O3-native", "fixed"), [])
        for peer in ("opentuner", "random"):
            other = table.get((kernel, peer, "wall"), [])
            if tune_wall and other and statistics.mean(tune_wall) <= statistics.mean(other):
                goal_ok = False
                rows.append(f"  {kernel}: {goal} {statistics.mean(tune_wall):.3f}x is not ahead of {peer} "
                            f"{statistics.mean(other):.3f}x at equal wall time")
        if tune_wall and native and min(tune_wall) < native[0] * 0.98:
            goal_ok = False
            rows.append(f"  {kernel}: {goal}'s worst seed {min(tune_wall):.3f}x is behind -O3 -march=native {native[0]:.3f}x")
    means = {t: geomean([statistics.mean(v) for (k, tt, vw), v in table.items() if tt == t and vw == "wall" and v])
             for t in tools}
    print("geometric mean at equal wall time: " + ", ".join(f"{t} {m:.3f}x" for t, m in means.items()))
    if missing:
        print(f"INCOMPLETE: {missing} (kernel, tool, seed, budget) cells are not run or not re-measured yet; "
              "run the same command again")
        return 3
    print(("GOAL MET: " if goal_ok else "GOAL NOT MET: ") +
          f"{goal} ahead of OpenTuner and random on every kernel at equal wall time, and never behind -O3 -march=native")
    for r in rows:
        print(r)
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
                    b = best(json.loads(path.read_text()), **budget) if path.exists() else None
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
    ap.add_argument("--pairs", type=int, default=15, help="ABBA pairs per re-measurement (default 15)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "peers")
    ap.add_argument("--report", action="store_true", help="only print the table from the cache (measures nothing)")
    ap.add_argument("--no-remeasure", action="store_true", help="run the searches only")
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
    stop_at = time.time() + 60 * args.max_minutes if args.max_minutes is not None else math.inf
    if not args.report:
        # seed by seed, so that a chunked bench has every kernel and tool for seed 0 first
        for seed in seeds:
            for kernel in kernels:
                spec = load_study(KERNELS[kernel])
                for tool in tools:
                    path = run_path(args.out, kernel, tool, seed)
                    if path.exists():
                        continue
                    if time.time() > stop_at:
                        say(f"--max-minutes reached: run the same command again to go on")
                        return report(args.out, kernels, tools, seeds, args.evals, args.wall, args.pairs,
                                      lambda: False, args.goal)
                    say(f"[{kernel}] {tool} seed {seed}: searching ({args.evals} evaluations and {args.wall:g} s)")
                    run = (opentuner_run(spec, seed, args.evals, args.wall, args.out) if tool == "opentuner"
                           else tune_run(spec, tool, tune_tools[tool], seed, args.evals, args.wall, args.out))
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps(run, default=str))
                    b = best(run, wall=args.wall)
                    say(f"[{kernel}] {tool} seed {seed}: {len(run['evals'])} evaluations in {run['wall_s']:.0f} s, "
                        f"best {b['latency_ms'] if b else None} ms {' '.join(run['notes'])}")
    remeasure = not args.report and not args.no_remeasure
    return report(args.out, kernels, tools, seeds, args.evals, args.wall, args.pairs,
                  lambda: remeasure and time.time() < stop_at, args.goal)


if __name__ == "__main__":
    sys.exit(main())

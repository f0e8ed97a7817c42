"""Why a measurement spans processes, and whether tune's figures survive re-measurement.

    python bench/noise.py causes   [--rounds 12]        # what makes launches differ here
    python bench/noise.py aa       [--repeats 20]       # (a) A/A: baseline confirmed against itself
    python bench/noise.py agree    [--studies ...]      # (b) tune's printed speedup vs the bench's own
    python bench/noise.py walltime [--trials 16]        # (c) wall time per measured trial, before/after
    python bench/noise.py trial0   [--concurrent N]     # why trial 0 was often the slow mode
    python bench/noise.py pressure --results R --trial N # the other core's memory traffic vs a ratio

Run it under the shared lock (`flock /tmp/tune-heavy.lock python bench/noise.py all`); on a
machine shared with other jobs the figures move, which is the point of the first section.

**causes** launches bench/noise_probe.c (the conv2d C9 kernel; per repetition wall *and* CPU
time, context switches, a fixed ALU loop, alignment, huge pages, page colours) under each
hypothesis for across-process variation, alternating the arms so that load drifts hit all:
the core it is pinned to; the first launch of a freshly written binary (page cache just
written, or dropped when we may) against its next launches; ASLR off (`setarch -R`) against on;
the size of the environment (which moves the stack); the other core idle, compiling, or
spinning; and, from the probe's own fields, huge pages and page colouring. For each arm it
prints the median across launches of the per-launch median wall time and CPU time, the spread
of the launch medians (max/min), and the share of wall time the process was off its core.

**aa** builds conv2d at -O3 and confirms it against itself `--repeats` times with
tuner.measure.compare_builds (paired ABBA launches), under each stopping rule: the campaign's
(a confirmation inside explore of a point that enters the front whatever its time stops as
soon as the interval is within `confirm_decided_rel`) and `tune confirm`'s (until `confirm_ci_rel`
or `confirm_max_pairs`): the 95% interval of the speedup should contain 1.0 in at least 95% of
the repeats (the issue asks for 90%).

**agree** runs `tune explore` on each study (default: conv2d-flags, sort-gcc and stencil-gcc:
a compute-bound convolution, a branchy integer sort, a memory-bound stencil; single-threaded,
as a figure meant to hold to 5% on a shared 2-core machine must be), takes the speedup it
prints for its best latency (or, when the baseline is the fastest, the fastest confirmed front
point's) and that configuration, then re-measures the configuration against the baseline with
the bench's own timer (bench/noise_timer.c: its own main and clock loop linked to the same
kernel objects, no tune harness, no tune measurement code): `--pairs` ABBA pairs of fresh
processes, and reports the ratio of the two speedups (target: within +-5%).

**walltime** runs the same short campaign with the measurement of before launches (one
process, 5-30 repetitions, 5 s), with launches, with racing, with confirmation without its
"decided" stop, with confirmation but without explore's final top-up of the figures it prints
(tuner.measure.topup), and with the defaults, `--rounds` times in rotated order, and prints the
median run time per measured trial, the campaign's wall time and what the top-up cost.

**trial0** runs fresh campaigns measured the old way (one process per trial, runs pinned to
the last core as `--target-opt pin_cpu=1` did) and prints each trial's wall time, CPU time and
share off its core; `--concurrent N` starts N campaigns at once, as a user tuning several
kernels side by side would.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuner.measure import environment  # noqa: E402

PROBE = ROOT / "bench" / "noise_probe.c"
CONV = ROOT / "programs" / "conv2d" / "conv2d.c"


# --- helpers -------------------------------------------------------------------------------
def compile_c(src: Path, out: Path, *flags: str) -> Path:
    subprocess.run(["gcc", "-O3", "-std=c11", f"-I{ROOT / 'programs'}", *flags, str(src), "-lm", "-o", str(out)],
                   check=True)
    return out


def probe_once(exe: Path | str, prefix: Sequence[str] = (), env: dict[str, str] | None = None,
               reps: int = 8) -> dict[str, Any]:
    out = subprocess.run([*prefix, str(exe), str(reps)], capture_output=True, text=True, check=True,
                         env=env if env is not None else os.environ.copy()).stdout
    d = json.loads(out)
    d["wall_med"] = statistics.median(d["wall"])
    d["cpu_med"] = statistics.median(d["cpu"])
    d["offcpu"] = max(0.0, 1 - sum(d["cpu"]) / sum(d["wall"]))
    return d


def summarise(rows: list[dict[str, Any]]) -> str:
    w = [r["wall_med"] for r in rows]
    c = [r["cpu_med"] for r in rows]
    off = statistics.median(r["offcpu"] for r in rows)
    return (f"wall {statistics.median(w):6.2f} ms [{min(w):6.2f}, {max(w):6.2f}] spread {max(w) / min(w):4.2f}x | "
            f"cpu {statistics.median(c):6.2f} ms [{min(c):6.2f}, {max(c):6.2f}] spread {max(c) / min(c):4.2f}x | "
            f"off-core {100 * off:4.1f}% | n={len(rows)}")


def machine_line() -> str:
    m = environment.machine()
    load = Path("/proc/loadavg").read_text().split()[:3]
    return (f"machine: {m.get('cpu_model', '?')}, {m['cpus']} cpus, governor {m['governor']}"
            f"{', virtualised' if m.get('virtualised') else ''}; load average {' '.join(load)}")


class Busy:
    """A load on a given core for the duration of a `with`: an ALU spin, a compile loop, or a
    memory stream (copying 64 MiB back and forth: the shared cache and the memory bus)."""

    def __init__(self, kind: str, cpu: int, workdir: Path) -> None:
        self.kind, self.cpu, self.workdir = kind, cpu, workdir
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Busy":
        if self.kind == "spin":
            argv = [sys.executable, "-c", "while True: pass"]
        elif self.kind == "stream":
            argv = [sys.executable, "-c", "import numpy as np\na = np.ones(1 << 23); b = np.empty_like(a)\n"
                                          "while True: np.copyto(b, a); np.copyto(a, b)"]
        elif self.kind == "compile":
            argv = ["sh", "-c", f"while :; do gcc -O2 -std=c11 -I{ROOT / 'programs'} -c {CONV} "
                                f"-o {self.workdir / 'busy.o'}; done"]
        else:
            return self
        self.proc = subprocess.Popen(["taskset", "-c", str(self.cpu), *argv], start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()


def alternate(arms: dict[str, Callable[[int], dict[str, Any]]], rounds: int) -> dict[str, list[dict[str, Any]]]:
    """Run every arm once per round, in a rotated order, so that drifts hit all arms alike."""
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in arms}
    names = list(arms)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            rows[name].append(arms[name](r))
    return rows


# --- causes --------------------------------------------------------------------------------
def causes(args: argparse.Namespace) -> None:
    cpus = environment.available_cpus()
    run_cpu, other = cpus[-1], cpus[0]
    pin = ["taskset", "-c", str(run_cpu)]
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="tune-noise-") as tmp:
        work = Path(tmp)
        exe = compile_c(PROBE, work / "probe")
        n = args.rounds

        print(f"\n1. launches of one -O3 binary, by core ({n} launches per arm, {args.reps} repetitions each)")
        arms = {f"cpu{c}": (lambda r, c=c: probe_once(exe, ["taskset", "-c", str(c)])) for c in cpus}
        arms["unpinned"] = lambda r: probe_once(exe)
        res = alternate(arms, n)
        for name, rows in res.items():
            print(f"   {name:<22} {summarise(rows)}")
        allrows = [r for rows in res.values() for r in rows]
        inproc = statistics.median((max(r["wall"]) - min(r["wall"])) / statistics.median(r["wall"]) for r in allrows)
        contended = [r for r in allrows if r["offcpu"] > 0.05]
        clean = [r for r in allrows if r["offcpu"] <= 0.05]
        print(f"   launches off-core > 5% of the time: {len(contended)} of {len(allrows)}; "
              f"their wall medians {summarise(contended)}" if contended else "   no launch was off-core > 5%")
        if clean:
            print(f"   launches that kept their core:     {summarise(clean)}")
        print(f"   involuntary context switches per launch: median "
              f"{statistics.median(r['ctxsw'][1] for r in allrows):.0f}; in-process spread of repetitions "
              f"(max-min)/median: median {100 * inproc:.1f}%")

        print("\n2. the first launch of a freshly written binary vs its next two launches (pinned to the run core)")
        first, later = [], []
        for r in range(n):
            fresh = work / f"fresh-{r}"
            shutil.copyfile(exe, fresh)          # a new file: written just now, like a new build
            fresh.chmod(0o755)
            dropped = False
            if args.drop_caches and os.geteuid() == 0:
                os.sync()
                try:
                    Path("/proc/sys/vm/drop_caches").write_text("1\n")
                    dropped = True
                except OSError:
                    pass
            first.append(probe_once(fresh, pin))
            later.extend(probe_once(fresh, pin) for _ in range(2))
        print(f"   first launch{' (page cache dropped)' if dropped else ''}:  {summarise(first)}")
        print(f"   next launches:                  {summarise(later)}")
        paired = [f["cpu_med"] / statistics.median([later[2 * i]["cpu_med"], later[2 * i + 1]["cpu_med"]])
                  for i, f in enumerate(first)]
        print(f"   first/next CPU time per round: median {statistics.median(paired):.3f} "
              f"[{min(paired):.3f}, {max(paired):.3f}]")

        print("\n3. address-space layout: ASLR on vs off (setarch -R), pinned")
        arms = {"aslr on": lambda r: probe_once(exe, pin),
                "aslr off (setarch -R)": lambda r: probe_once(exe, ["setarch", "-R", *pin])}
        for name, rows in alternate(arms, n).items():
            print(f"   {name:<22} {summarise(rows)}")
        stacks = {r["align"]["stack"] for r in res[f"cpu{run_cpu}"]}
        print(f"   with ASLR the stack offset within its page took {len(stacks)} values in {n} launches")

        print("\n4. environment size (moves the initial stack, Mytkowicz et al.): two sweeps of 0..4032 bytes")
        sizes = list(range(0, 4096, 256))
        sweeps = []
        for s in range(2):
            sweep = []
            for size in sizes:
                env = {**os.environ, "TUNE_NOISE_PAD": "x" * size}
                sweep.append(probe_once(exe, ["setarch", "-R", *pin], env=env)["cpu_med"])
            sweeps.append(sweep)
        r = float(np.corrcoef(sweeps[0], sweeps[1])[0, 1])
        allc = sweeps[0] + sweeps[1]
        print(f"   CPU time over sizes: {min(allc):.2f}-{max(allc):.2f} ms (spread {max(allc) / min(allc):.3f}x); "
              f"correlation between the two sweeps {r:+.2f} (a real alignment effect repeats)")

        if len(cpus) >= 2 and shutil.which("taskset"):
            print(f"\n5. the other core (cpu{other}) idle, compiling, or spinning, while the probe runs on cpu{run_cpu}")
            arms = {}
            for kind in ("idle", "compile", "spin"):
                arms[f"other core {kind}"] = (lambda r, kind=kind: _with_busy(kind, other, work, exe, pin))
            for name, rows in alternate(arms, max(4, n // 2)).items():
                spin = statistics.median(x["spin"][0] for x in rows)
                print(f"   {name:<22} {summarise(rows)} | ALU loop {spin:.2f} ms")
            print(f"\n   the same core (cpu{run_cpu}) spinning too (time sharing):")
            rows = [_with_busy("spin", run_cpu, work, exe, pin) for _ in range(max(3, n // 4))]
            print(f"   {'run core shared':<22} {summarise(rows)}")

        print("\n6. frequency, huge pages, page colours (from every launch above)")
        spins = [x for r in allrows for x in r["spin"]]
        print(f"   ALU loop CPU time: median {statistics.median(spins):.2f} ms, range {min(spins):.2f}-{max(spins):.2f} "
              f"(a frequency change would move it); cpufreq governor: {environment.machine()['governor']}")
        huge = {r["huge_kb"] for r in allrows}
        thp = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip() \
            if Path("/sys/kernel/mm/transparent_hugepage/enabled").exists() else "?"
        print(f"   AnonHugePages per launch: {sorted(huge)} kB (THP setting: {thp})")
        col = np.array([r["colour"] for r in allrows if r["colour"] > 0])
        cpu_t = np.array([r["cpu_med"] for r in allrows if r["colour"] > 0])
        if len(col) > 3 and col.std() > 0:
            print(f"   page-colour imbalance of the weights vs CPU time: correlation {np.corrcoef(col, cpu_t)[0, 1]:+.2f} "
                  f"over {len(col)} launches")


def _with_busy(kind: str, cpu: int, work: Path, exe: Path, pin: list[str]) -> dict[str, Any]:
    with Busy(kind, cpu, work):
        return probe_once(exe, pin)


# --- shared by aa / agree / walltime ---------------------------------------------------------
def tune(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNE_")}
    return subprocess.run([sys.executable, "-m", "tuner", *argv], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=7200)


def study_parts(name: str, config_pins: dict[str, Any] | None, results: Path):
    """The study, its target, and a (Build, Rendering) for a configuration (None: the baseline)."""
    from tuner.study import load_study
    from tuner.targets import load_target, make_target

    spec = load_study(name)
    target = make_target(load_target(spec.target), results / "builds")
    spec.space.constants["cores"] = target.cores()
    config = spec.space.complete(config_pins if config_pins is not None else spec.baseline)
    return spec, target, config, spec.space.render(config)


@contextlib.contextmanager
def _workdir(keep: Path | None, name: str) -> Iterator[Path]:
    """A temporary directory, or DIR/NAME (created afresh) when the results are to be kept."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="tune-noise-") as tmp:
            yield Path(tmp)
        return
    work = (keep / name).resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    yield work


# --- (a) A/A -------------------------------------------------------------------------------
def aa(args: argparse.Namespace) -> None:
    import math

    from tuner.measure import admitted, compare_builds

    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="tune-noise-") as tmp:
        spec, target, config, rendering = study_parts(args.study, None, Path(tmp))
        build = target.build(spec.program, rendering)
        ms = target.spec.measure
        base = " ".join(f"{k}={v}" for k, v in spec.baseline.items()) or "all knobs at their defaults"
        rules = {"campaign": (f"as inside explore for a point that enters the front at any time: stop once the "
                              f"interval is within confirm_decided_rel {ms.confirm_decided_rel} (or ci_rel)",
                              admitted(math.inf, ms.confirm_decided_rel, ms.confirm_min_pairs)),
                 "policy": (f"as `tune confirm`: until ci_rel {ms.confirm_ci_rel} or max pairs", None)}
        wanted = list(rules) if args.rule == "both" else [args.rule]
        print(f"A/A: the {args.study} baseline ({base}) confirmed against itself {args.repeats} times per rule, "
              f"paired ABBA launches ({ms.confirm_min_pairs}-{ms.confirm_max_pairs} pairs)")
        for rule in wanted:
            text, race = rules[rule]
            print(f" rule '{rule}' ({text}):")
            contains, widths, pairs, seconds = 0, [], [], []
            for i in range(args.repeats):
                c = compare_builds(target, spec.program, (build, rendering), (build, rendering), race=race)
                sp = c.speedup
                ok = sp.low <= 1.0 <= sp.high
                contains += ok
                widths.append(sp.high / sp.low - 1)
                pairs.append(c.pairs)
                seconds.append(c.seconds)
                print(f"  {i + 1:2d}: speedup {sp.value:.3f} [{sp.low:.3f}, {sp.high:.3f}] "
                      f"{'contains 1' if ok else 'MISSES 1'}  ({c.pairs} pairs, {sp.n} counted, {c.stopped}, "
                      f"{c.seconds:.1f}s)")
            print(f"  rule '{rule}': the 95% interval contained 1.0 in {contains} of {args.repeats} "
                  f"({100 * contains / args.repeats:.0f}%; target >= 90%); median width "
                  f"{100 * statistics.median(widths):.1f}%, median {statistics.median(pairs):.0f} pairs, "
                  f"{statistics.median(seconds):.1f} s per confirmation")


# --- (b) agreement with an independent re-measurement ----------------------------------------
TIMER = ROOT / "bench" / "noise_timer.c"


def own_build(target: Any, program: Any, rendering: Any, out: Path) -> Path:
    """The configuration's kernel objects with the bench's own main (noise_timer.c)."""
    out.mkdir(parents=True, exist_ok=True)
    cc = rendering.compiler or target.spec.toolchain.cc
    flags = target.compile_flags(rendering, list(rendering.cflags), program)
    objs = []
    for i, src in enumerate(target.sources(program, rendering)):
        obj = out / f"{i}.o"
        subprocess.run([cc, *flags, "-Dmain=tune_harness_main_", "-c", str(src), "-o", str(obj)], check=True)
        objs.append(str(obj))
    timer = out / "timer.o"
    subprocess.run(["gcc", "-O2", "-c", str(TIMER), "-o", str(timer)], check=True)
    exe = out / "timed"
    subprocess.run([cc, *flags, *objs, str(timer), "-o", str(exe), *program.ldflags,
                    *target.spec.toolchain.ldflags], check=True)
    return exe


def own_time(exe: Path, program: Any, rendering: Any, pin: list[str], reps: int) -> float:
    env = {**os.environ, **rendering.env, "NOISE_REPS": str(reps)}
    out = subprocess.run([*pin, str(exe), *program.args, *rendering.args], capture_output=True, text=True,
                         check=True, env=env).stdout
    return float(out.strip().splitlines()[-1])


def own_watched(exe: Path, program: Any, rendering: Any, pin: list[str], reps: int) -> tuple[float, float]:
    """One process of the bench's timer, with the share of the *whole machine* (every core)
    that other processes used meanwhile: a memory-bound kernel feels the other core's jobs
    through the shared cache and memory bus even when its own core is free."""
    with environment.Watch(environment.Placement(), 1.0) as w:
        ms = own_time(exe, program, rendering, pin, reps)
    return ms, float(w.record.get("other_frac", float("nan")))


def spread(xs: Sequence[float]) -> str:
    q = np.percentile(xs, [0, 25, 50, 75, 100])
    return " ".join(f"{v:.2f}" for v in q)


def agree(args: argparse.Namespace) -> None:
    import re

    print(machine_line())
    pin: list[str] = []      # the bench's own way: no pinning (tune pins single-threaded runs)
    rows = []
    for name in args.studies:
        with _workdir(args.keep, name) as work:
            t0 = time.perf_counter()
            proc = tune("explore", name, "--trials", str(args.trials), "--seed", str(args.seed), "--no-progress",
                        "--no-export", "--results", str(work / "results"), cwd=work)
            if proc.returncode != 0:
                print(f"{name}: tune explore failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
                continue
            explore_s = time.perf_counter() - t0
            from tuner.study import load_study
            spec = load_study(name)
            obj = next(o for o in spec.objectives if o.name in ("latency_ms", "gflops", "batch_latency_ms", "throughput"))
            # the figure explore prints for the best point of the timed objective; when the
            # baseline itself is the fastest, the fastest confirmed front point's paired figure
            m = re.search(rf"best {obj.name} vs baseline: ([0-9.]+)x(.*)", proc.stdout)
            fronts = [(int(t), float(v), rest) for t, v, rest in
                      re.findall(r"^  trial (\d+): ([0-9.]+)x (\[.*)$", proc.stdout, re.M)]
            front = json.loads(tune("pareto", name, "--format", "json", "--results", str(work / "results"),
                                    cwd=work).stdout)
            if m:
                printed, said = float(m.group(1)), m.group(2).rstrip()
                number = int(re.search(r"trial (\d+)\)", said).group(1))     # the point explore printed
                rec = _record_of(name, number, work / "results")
                best = {"trial": number, "params": dict(rec.config)}
            elif fronts:
                number, printed, said = max(fronts, key=lambda f: f[1])
                best = next(p for p in front if p["trial"] == number)
                said = f" {said} (front point; the baseline is the best {obj.name})"
            else:
                print(f"{name}: no confirmed speedup in the output:\n{proc.stdout[-1500:]}")
                continue
            _, target, config, rendering = study_parts(name, best["params"], work)
            _, _, _, base_r = study_parts(name, None, work)
            cand_exe = own_build(target, spec.program, rendering, work / "own-cand")
            base_exe = own_build(target, spec.program, base_r, work / "own-base")
            details: list[str] = []
            run_pin = ["taskset", "-c", str(environment.available_cpus()[-1])]
            arms = {"none": [pin], "run": [run_pin], "both": [pin, run_pin]}[args.pin]
            got: dict[int, tuple[list[float], list[float], list[float]]] = {k: ([], [], []) for k in range(len(arms))}
            for i in range(args.pairs):
                order = [("c", cand_exe, rendering), ("b", base_exe, base_r)]
                for k, how in enumerate(arms):          # the arms interleaved: the same moments for both
                    cand, base, busy = got[k]
                    for which, exe, r in (order if i % 2 == 0 else order[::-1]):
                        ms, other = own_watched(exe, spec.program, r, how, args.reps)
                        (cand if which == "c" else base).append(ms)
                        busy.append(other)
            if len(arms) > 1:
                c2, b2, _ = got[1]
                details.append(f"   the bench's timer pinned to the run core as tune pins (same moments): candidate "
                               f"{statistics.median(c2):.3f} ms, baseline {statistics.median(b2):.3f} ms -> "
                               f"{statistics.median(b2) / statistics.median(c2):.3f}x; processes (ms, min q1 median q3 "
                               f"max): candidate {spread(c2)}, baseline {spread(b2)}")
            cand, base, busy = got[0]
            if args.detail:
                conf = _confirmation_of(name, best["trial"], work / "results")
                if conf:
                    details.append(f"   tune's confirmation launches (ms, min q1 median q3 max): candidate "
                                   f"{spread([x['value'] for x in conf['a']])}, baseline "
                                   f"{spread([x['value'] for x in conf['b']])}; environment: "
                                   f"{environment.describe(conf.get('environment', {}))}")
                details.append(f"   bench processes (ms, min q1 median q3 max): candidate {spread(cand)}, baseline "
                               f"{spread(base)}; other processes used {100 * statistics.median(busy):.0f}% (median; max "
                               f"{100 * max(busy):.0f}%) of the machine's cores during them")
            ratio_of_medians = statistics.median(base) / statistics.median(cand)
            pair_ratios = sorted(b / c for b, c in zip(base, cand))
            own = ratio_of_medians
            paired = statistics.median(pair_ratios)
            agreement = printed / own
            print(f"{name}: tune explore --trials {args.trials} --seed {args.seed} printed {obj.name} "
                  f"{printed:.3f}x{said} ({explore_s:.0f} s); trial {best['trial']}")
            print(f"   bench re-measurement, {args.pairs} ABBA pairs of fresh processes, own timer "
                  f"({args.reps} timed calls each): candidate {statistics.median(cand):.3f} ms, baseline "
                  f"{statistics.median(base):.3f} ms -> {own:.3f}x (pair ratios: median "
                  f"{paired:.3f}, range {pair_ratios[0]:.3f}-{pair_ratios[-1]:.3f})")
            print(f"   printed / re-measured = {agreement:.3f} ({'within' if abs(agreement - 1) <= 0.05 else 'OUTSIDE'} "
                  f"+-5%); against the median pair ratio {printed / paired:.3f}")
            for line in details:
                print(line)
            # tune's own measurement path, right now: tells drift over time (the machine's load
            # moved since the campaign) from a difference of method (timer, build, pinning)
            from tuner.measure import compare_builds
            cb, bb = target.build(spec.program, rendering), target.build(spec.program, base_r)
            now = compare_builds(target, spec.program, (cb, rendering), (bb, base_r))
            print(f"   tune's paired comparison again, after the bench's: {now.speedup.value:.3f}x "
                  f"[{now.speedup.low:.3f}, {now.speedup.high:.3f}] ({now.pairs} pairs)")
            rows.append((name, obj.name, printed, own, agreement, paired, now.speedup.value))
    if rows:
        print("\n| study | objective | tune printed | bench re-measured (ratio of medians) | printed / bench "
              "| bench, median pair ratio | tune's comparison again |")
        print("|---|---|---|---|---|---|---|")
        for name, o, printed, own, a, paired, again in rows:
            print(f"| {name} | {o} | {printed:.3f}x | {own:.3f}x | {a:.3f} | {paired:.3f}x | {again:.3f}x |")


def _record_of(study: str, number: int, results: Path) -> Any:
    """One trial's record of a finished campaign, with explore's top-up merged (as printed)."""
    from tuner.engine import load_campaign
    from tuner.measure.topup import merge
    from tuner.study import load_study
    from tuner.trials import records

    spec = load_study(study)
    _, st = load_campaign(study, results, None)
    return next(r for r in merge(records(st, spec.objectives), st.user_attrs) if r.number == number)


def _confirmation_of(study: str, number: int, results: Path) -> dict[str, Any] | None:
    """The stored confirmation (launches, environment) of one trial of a finished campaign."""
    return (_record_of(study, number, results).measurement or {}).get("confirmation")


# --- what moves a memory-bound ratio --------------------------------------------------------
def pressure(args: argparse.Namespace) -> None:
    """A configuration of a finished campaign (`--results`, `--trial`) against its baseline,
    tune's own paired comparison (pinned to the run core), with the other core left alone,
    streaming memory, or spinning on the ALU, the arms alternating by round: does the other
    core's memory traffic move the ratio, which pairing cannot cancel when the traffic differs
    between the campaign and a later re-measurement?"""
    from tuner.engine import load_campaign
    from tuner.measure import PairPolicy, compare_builds
    from tuner.trials import records

    print(machine_line())
    spec0, st = load_campaign(args.study, args.results, None)
    rec = next(r for r in records(st, spec0.objectives) if r.number == args.trial)
    cpus = environment.available_cpus()
    other = cpus[0]
    with tempfile.TemporaryDirectory(prefix="tune-noise-") as tmp:
        work = Path(tmp)
        spec, target, _, cand_r = study_parts(args.study, rec.config, work)
        _, _, _, base_r = study_parts(args.study, None, work)
        cand_b, base_b = target.build(spec.program, cand_r), target.build(spec.program, base_r)
        policy = PairPolicy(args.pairs, args.pairs, 0.0)
        print(f"{args.study} trial {args.trial} against the baseline, {args.pairs} ABBA pairs per arm and round, "
              f"runs pinned to cpu{cpus[-1]}, the load on cpu{other}; {args.rounds} rounds")
        rows: dict[str, list[tuple[float, float, float, float]]] = {}
        arms = ["idle", "stream", "spin"]
        for r in range(args.rounds):
            for kind in arms[r % 3:] + arms[:r % 3]:
                with Busy(kind, other, work):
                    c = compare_builds(target, spec.program, (cand_b, cand_r), (base_b, base_r), policy=policy)
                env = c.extra.get("environment", {})
                rows.setdefault(kind, []).append(
                    (c.speedup.value, statistics.median(x.value for x in c.a), statistics.median(x.value for x in c.b),
                     float(env.get("machine_other_frac", float("nan")))))
        for kind in arms:
            got = rows[kind]
            sp = [g[0] for g in got]
            print(f"  other core {'left alone' if kind == 'idle' else kind:<10}: speed-up {statistics.median(sp):.3f}x "
                  f"(rounds {min(sp):.3f}-{max(sp):.3f}); candidate {statistics.median(g[1] for g in got):.2f} ms, "
                  f"baseline {statistics.median(g[2] for g in got):.2f} ms; others used "
                  f"{100 * statistics.median(g[3] for g in got):.0f}% of the machine")


# --- (c) wall time per measured trial ------------------------------------------------------
BEFORE = ["min_launches=1", "max_launches=1", "min_reps=5", "max_reps=30", "max_seconds=5", "run_cpu=none",
          "build_cpu=none", "exclude_contended=false", "confirm=false", "race=false"]


def walltime(args: argparse.Namespace) -> None:
    print(machine_line())
    print(f"{args.study}, {args.trials} trials, seed {args.seed}, surrogate off; 'before' = one process, "
          f"5-30 repetitions, 5 s (the settings before launches); {args.rounds} rounds, the variants in a "
          f"rotated order each round (a shared machine's load drifts: it should hit every variant alike)")
    variants = {"before (one process)": BEFORE,
                "launches": ["confirm=false", "race=false"],
                "launches + racing": ["confirm=false"],
                "+ confirmation, no decided stop": ["confirm_decided_rel=0", "confirm_topup=false"],
                "+ confirmation, no top-up": ["confirm_topup=false"],
                "+ confirmation (default)": []}
    keys = dict(zip(("before", "launches", "racing", "nodecided", "notopup", "default"), variants))
    names = [keys[k] for k in args.variants]
    walls: dict[str, list[float]] = {k: [] for k in names}
    for r in range(args.rounds):
        for label in names[r % len(names):] + names[:r % len(names)]:
            with tempfile.TemporaryDirectory(prefix="tune-noise-") as tmp:
                work = Path(tmp)
                argv = ["explore", args.study, "--trials", str(args.trials), "--seed", str(args.seed), "--surrogate",
                        "off", "--no-progress", "--no-export", "--results", str(work / "results")]
                for o in variants[label]:
                    argv += ["--target-opt", o]
                t0 = time.perf_counter()
                proc = tune(*argv, cwd=work)
                wall = time.perf_counter() - t0
                if proc.returncode != 0:
                    print(f"  {label}: failed: {proc.stderr.strip()[-400:]}")
                    continue
                walls[label].append(wall)
                st = json.loads(tune("status", args.study, "--format", "json", "--results", str(work / "results"),
                                     cwd=work).stdout)
                t = st.get("median_seconds_per_trial") or {}
                ms = st.get("measurement", {})
                extra_txt = (f"; {ms['raced']} raced, {ms.get('promoted', 0)} promoted ({ms['launches_saved']} "
                             f"launches, {ms['seconds_saved']:.1f} s saved), {ms['confirmed']} confirmed"
                             if ms else "")
                if ms.get("topped_up"):
                    extra_txt += (f"; {ms['topped_up']} printed figures topped up ({ms['topup_pairs']} pairs, "
                                  f"{ms['topup_seconds']:.1f} s)")
                print(f"  round {r + 1} {label:<32} campaign {wall:6.1f} s; median per measured trial: run "
                      f"{t.get('run_s', float('nan')):.2f} s, build {t.get('build_s', float('nan')):.2f} s" + extra_txt)
    med = {k: statistics.median(v) for k, v in walls.items() if v}
    print("\n| measurement | campaign wall time (median of rounds) | rounds |")
    print("|---|---|---|")
    for k in names:
        if k in med:
            print(f"| {k} | {med[k]:.1f} s | {', '.join(f'{x:.1f}' for x in walls[k])} |")
    if "+ confirmation, no top-up" in med and "+ confirmation (default)" in med:
        print(f"the top-up of the printed figures: default / no top-up "
              f"{med['+ confirmation (default)'] / med['+ confirmation, no top-up']:.2f}x")
    if "launches" in med and "+ confirmation (default)" in med:
        print(f"confirmation (default) / launches only: {med['+ confirmation (default)'] / med['launches']:.2f}x "
              f"(target <= ~1.5x); / launches + racing: "
              f"{med['+ confirmation (default)'] / med.get('launches + racing', float('nan')):.2f}x")


# --- trial 0 ----------------------------------------------------------------------------------
def trial0(args: argparse.Namespace) -> None:
    """Fresh campaigns with the measurement the issue's user study had (one process per trial,
    5-30 repetitions, pin_cpu=1): is trial 0 (the baseline) slower than the others, and when a
    trial is slow, was it off its core (time-shared) or slower on it (CPU time)? With
    `--concurrent N`, N campaigns run at once (as when several kernels are tuned side by side),
    all pinned to the same core as `--target-opt pin_cpu=1` does."""
    from tuner.engine import load_campaign
    from tuner.study import load_study
    from tuner.trials import records

    print(machine_line())
    spec = load_study(args.study)
    pin = str(environment.available_cpus()[-1])
    old = [x for x in BEFORE if not x.startswith("run_cpu")] + [f"pin_cpu={pin}"]
    print(f"{args.campaigns} fresh campaigns of {args.study}, {args.trials} trials each, {args.concurrent} at a time, "
          f"one process per trial (before this change), runs pinned to cpu{pin}; per trial: latency (wall), "
          f"CPU time per repetition, share of the timed wall time off its core")
    firsts, others, later = [], [], []
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNE_")}
    for g in range(0, args.campaigns, args.concurrent):
        group = list(range(g, min(args.campaigns, g + args.concurrent)))
        with tempfile.TemporaryDirectory(prefix="tune-noise-") as tmp:
            work = Path(tmp)
            procs = {}
            for k in group:
                argv = ["explore", args.study, "--trials", str(args.trials), "--seed", str(k), "--surrogate", "off",
                        "--no-progress", "--no-export", "--results", str(work / f"results{k}")]
                for o in old:
                    argv += ["--target-opt", o]
                procs[k] = subprocess.Popen([sys.executable, "-m", "tuner", *argv], cwd=work, env=env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for k, proc in procs.items():
                _, err = proc.communicate(timeout=3600)
                if proc.returncode != 0:
                    print(f"  campaign {k}: failed: {err.strip()[-300:]}")
                    continue
                _, study = load_campaign(args.study, work / f"results{k}", None)
                rows = [(r.number, r.metrics) for r in records(study, spec.objectives)
                        if r.metrics.get("latency_ms") and r.metrics.get("cpu_ms")]
                line = []
                for number, m in rows:
                    off = max(0.0, 1 - m.get("cpu_wall_ratio", 1.0))
                    (firsts if number == 0 else others).append((m["latency_ms"], m["cpu_ms"], off))
                    line.append(f"{number}:{m['latency_ms']:.1f}/{m['cpu_ms']:.1f}/{100 * off:.0f}%")
                print(f"  campaign {k} (trial: wall ms / CPU ms / off-core): " + "  ".join(line))
            # the same baseline configuration measured again the same way, alone, after the campaigns
            pins = [f"--set={kk}={vv}" for kk, vv in spec.baseline.items()]
            again = []
            for _ in range(3):
                argv = ["measure", args.study, *pins, "--format", "json", "--results", str(work / f"results{group[0]}")]
                for o in old:
                    argv += ["--target-opt", o]
                doc = json.loads(tune(*argv, cwd=work).stdout)
                again.append(doc["metrics"]["latency_ms"])
                later.append(doc["metrics"]["latency_ms"])
            print(f"      baseline again, alone, after the campaign{'s' if len(group) > 1 else ''}: "
                  f"{' '.join(f'{x:.1f}' for x in again)} ms")
    if firsts and others:
        def med(xs, i):
            return statistics.median(x[i] for x in xs)
        print(f"  trial 0 (the baseline): wall {med(firsts, 0):.2f} ms, CPU {med(firsts, 1):.2f} ms, off-core "
              f"{100 * med(firsts, 2):.1f}% (n={len(firsts)}); the baseline re-measured alone afterwards: "
              f"median {statistics.median(later):.2f} ms, range {min(later):.2f}-{max(later):.2f} (n={len(later)})")
        print(f"  the others:  off-core {100 * med(others, 2):.1f}% (n={len(others)}); "
              f"trials off-core > 20%: trial 0 {sum(x[2] > 0.2 for x in firsts)}/{len(firsts)}, "
              f"others {sum(x[2] > 0.2 for x in others)}/{len(others)}")


# --- main ----------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("causes")
    c.add_argument("--rounds", type=int, default=12)
    c.add_argument("--reps", type=int, default=8)
    c.add_argument("--drop-caches", action="store_true", help="drop the page cache before each first launch (root)")
    a = sub.add_parser("aa")
    a.add_argument("--study", default="conv2d-flags")
    a.add_argument("--repeats", type=int, default=20)
    a.add_argument("--rule", choices=("campaign", "policy", "both"), default="both",
                   help="when a comparison stops: as inside explore (decided), as tune confirm, or both")
    g = sub.add_parser("agree")
    g.add_argument("--studies", nargs="+", default=["conv2d-flags", "sort-gcc", "stencil-gcc"])
    g.add_argument("--trials", type=int, default=30)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--pairs", type=int, default=15)
    g.add_argument("--reps", type=int, default=5)
    g.add_argument("--keep", type=Path, help="keep each study's results here (DIR/STUDY) to look at its launches")
    g.add_argument("--pin", choices=("none", "run", "both"), default="none",
                   help="the bench's own processes: unpinned (default, its own way), pinned to the run core "
                        "as tune pins them, or both, interleaved (the first is the one compared)")
    g.add_argument("--detail", action="store_true", help="print the launches behind both figures")
    w = sub.add_parser("walltime")
    w.add_argument("--study", default="conv2d-flags")
    w.add_argument("--trials", type=int, default=16)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--rounds", type=int, default=2)
    w.add_argument("--variants", nargs="+", default=["before", "launches", "racing", "nodecided", "notopup", "default"],
                   choices=["before", "launches", "racing", "nodecided", "notopup", "default"])
    q = sub.add_parser("pressure")
    q.add_argument("--study", default="stencil-gcc")
    q.add_argument("--results", type=Path, required=True, help="the campaign's results directory")
    q.add_argument("--trial", type=int, required=True)
    q.add_argument("--pairs", type=int, default=6)
    q.add_argument("--rounds", type=int, default=3)
    z = sub.add_parser("trial0")
    z.add_argument("--study", default="conv2d-flags")
    z.add_argument("--campaigns", type=int, default=5)
    z.add_argument("--trials", type=int, default=6)
    z.add_argument("--concurrent", type=int, default=1, help="campaigns run at once, all pinned to the same core")
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    t0 = time.perf_counter()
    {"causes": causes, "aa": aa, "agree": agree, "walltime": walltime, "trial0": trial0,
     "pressure": pressure}[args.what](args)
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

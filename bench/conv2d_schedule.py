"""Quick schedule search for the ResNet-18 C9 conv2d, against naive C, numpy and peak.

    .venv/bin/python bench/conv2d_schedule.py [--trials 40] [--seed 0] [--time-budget 240]

1. Searches the knobs of search_spaces/conv2d-schedule.toml with Optuna's TPE sampler
   directly (render conv2d.c.j2 -> gcc via argument lists -> run -> the program's median
   GFLOP/s). Every trial's output is checked: bit-identical to the first trial, and within
   rtol 1e-4 of the naive kernel.
2. The naive kernel (programs/conv2d_schedule/conv2d_naive.c, plain loops, gcc -O3
   -march=native).
3. numpy: im2col (sliding_window_view + copy) + np.matmul on the same shape, fp32, OpenBLAS
   with its configured thread count (shown).
4. Peak fp32 FLOP/s, two ways: (a) derived from lscpu/cpuinfo: cores x GHz x FMA units x
   fp32 lanes x 2 (the FMA-unit count is an assumption, printed); (b) measured with
   programs/conv2d_schedule/fma_peak.c (12 independent FMA chains per thread), 256- and
   512-bit vectors, 1 thread and all threads, best of 12 short runs before and after the search.

Timings on a shared machine are noisy, and interference only ever adds time: every figure is
the FASTEST repetition (the search maximises it too); the best schedule's median is printed
as well.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuner.template import render_template  # noqa: E402

PROGRAMS = ROOT / "programs"
SCHED = PROGRAMS / "conv2d_schedule"
STUDY = ROOT / "search_spaces" / "conv2d-schedule.toml"
GFLOP = 2.0 * 256 * 256 * 9 * 14 * 14 * 1e-9


def compile_c(sources: list[Path], exe: Path, cflags: list[str], ldflags=("-lm",)) -> float:
    cmd = ["gcc", *cflags, f"-I{PROGRAMS}", f"-I{SCHED}", *map(str, sources), "-o", str(exe), *ldflags]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"compile failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def run_harness(exe: Path, env_extra: dict, out_path: Path) -> dict:
    env = {**os.environ, "TUNE_OUTPUT": str(out_path), "TUNE_MAX_SECONDS": "2", "TUNE_MAX_REPS": "40",
           "TUNE_MIN_REPS": "10", **env_extra}
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=env)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    line = [l for l in done.stdout.splitlines() if l.startswith("@tune ")][-1]
    return json.loads(line[len("@tune "):])


# --- the search space, read from the study file ---------------------------------------------
def load_space() -> tuple[dict, dict, list]:
    spec = tomllib.loads(STUDY.read_text())
    dists = {}
    for name, k in spec["knobs"].items():
        if k["kind"] == "ordinal":
            dists[name] = list(k["values"])
        elif k["kind"] == "categorical":
            dists[name] = list(k["choices"])
        elif k["kind"] == "permutation":
            dists[name] = [",".join(p) for p in itertools.permutations(k["items"])]
        else:
            raise SystemExit(f"bench does not handle knob kind {k['kind']}")
    return spec, dists, spec.get("constraints", [])


def search(trials: int, seed: int, budget_s: float, work: Path, reference: np.ndarray) -> list[dict]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec, dists, _ = load_space()
    params = spec["program"]["params"]
    cflags = [c for c in spec["program"]["cflags"]]
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(15, trials // 2))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    baseline = {k: v for k, v in spec["study"]["baseline"].items() if k in dists}
    study.enqueue_trial(baseline)
    results: list[dict] = []
    first_bytes = None
    t_start = time.perf_counter()
    for n in range(trials):
        if time.perf_counter() - t_start > budget_s:
            print(f"  (time budget of {budget_s:.0f} s reached after {n} trials)")
            break
        trial = study.ask()
        cfg = {name: trial.suggest_categorical(name, choices) for name, choices in dists.items()}
        if cfg["tile_co"] % cfg["vec"] != 0:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        variables = {**params, **cfg, "order": cfg["order"].split(",")}
        src = work / f"trial{n}.c"
        src.write_text(render_template(SCHED / "conv2d.c.j2", variables))
        exe = work / f"trial{n}"
        try:
            compile_c([src], exe, [*cflags, cfg["vector_pref"]], ldflags=spec["program"]["ldflags"])
            env = {"OMP_NUM_THREADS": str(cfg["threads"] if cfg["parallel"] != "none" else 1)}
            rep = run_harness(exe, env, work / "out.bin")
        except RuntimeError as e:
            print(f"  trial {n}: failed: {str(e)[:200]}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        if "infeasible" in rep:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        raw = (work / "out.bin").read_bytes()
        got = np.frombuffer(raw, dtype=np.float32).reshape(reference.shape)
        first_bytes = raw if first_bytes is None else first_bytes
        exact = raw == first_bytes
        close = bool(np.allclose(got, reference, rtol=1e-4, atol=1e-4))
        gflops = rep["metrics"]["gflops"] if close else 0.0
        best_ms = min(rep["samples_ms"])
        gflops_best = GFLOP / (best_ms * 1e-3) if close else 0.0
        # The search maximises the fastest repetition: on a shared machine interference only
        # adds time, so the minimum is the robust estimate of what the schedule can do.
        study.tell(trial, gflops_best)
        results.append(dict(n=n, cfg=cfg, gflops=gflops, gflops_best=gflops_best, exact=exact, close=close))
        print(f"  trial {n:3d}: best rep {gflops_best:6.1f} GFLOP/s  (median {gflops:6.1f})"
              f"  exact={'y' if exact else 'N'}  {fmt_cfg(cfg)}", flush=True)
    return results


def fmt_cfg(cfg: dict) -> str:
    return (f"co{cfg['tile_co']} h{cfg['tile_h']} w{cfg['tile_w']} ci{cfg['tile_ci']} order={cfg['order']}"
            f" u{cfg['unroll_w']} v{cfg['vec']} par={cfg['parallel']}"
            f"{'x' + str(cfg['threads']) if cfg['parallel'] != 'none' else ''}"
            f" {cfg['vector_pref'].split('=')[-1]}b")


# --- baselines ---------------------------------------------------------------------------------
def naive(work: Path) -> tuple[float, np.ndarray]:
    exe = work / "naive"
    compile_c([SCHED / "conv2d_naive.c"], exe, ["-std=c11", "-O3", "-march=native"])
    rep = run_harness(exe, {"TUNE_MAX_REPS": "7", "TUNE_MIN_REPS": "3"}, work / "naive.bin")
    out = np.frombuffer((work / "naive.bin").read_bytes(), dtype=np.float32).reshape(256, 14, 14)
    return GFLOP / (min(rep["samples_ms"]) * 1e-3), out


def conv_value(n: int, salt: int) -> np.ndarray:
    i = np.arange(n, dtype=np.int64)
    return ((i * 37 + salt) % 101).astype(np.float32) / np.float32(101.0) - np.float32(0.5)


def numpy_im2col(reps: int = 60) -> tuple[float, float, str, np.ndarray]:
    x = conv_value(256 * 14 * 14, 11).reshape(256, 14, 14)
    w = conv_value(256 * 256 * 9, 29).reshape(256, 256 * 9)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))

    def im2col_matmul():
        win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))  # CI,H,W,3,3
        cols = np.ascontiguousarray(win.transpose(0, 3, 4, 1, 2)).reshape(256 * 9, 14 * 14)
        return w @ cols

    cols = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))
                                .transpose(0, 3, 4, 1, 2)).reshape(256 * 9, 196)
    out = im2col_matmul()
    for _ in range(5):
        im2col_matmul()
    total, mm = [], []   # fastest call, like the C timings
    for _ in range(reps):
        t0 = time.perf_counter()
        im2col_matmul()
        total.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        w @ cols
        mm.append(time.perf_counter() - t0)
    try:
        from threadpoolctl import threadpool_info
        info = [f"{d.get('internal_api')} {d.get('version')} threads={d.get('num_threads')}"
                for d in threadpool_info() if d.get("user_api") == "blas"]
        blas = "; ".join(info) or "unknown BLAS"
    except ImportError:
        blas = f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset (all cores)')}"
    return GFLOP / min(total), GFLOP / min(mm), blas, out.reshape(256, 14, 14)


# --- peak --------------------------------------------------------------------------------------
def derived_peak() -> tuple[float, float, str, float]:
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    field = lambda k: (re.search(rf"^{k}:\s*(.+)$", text, re.M) or [None, ""])[1].strip()
    cores = int(field("Core\\(s\\) per socket") or 1) * int(field("Socket\\(s\\)") or 1)
    mhz = field("CPU max MHz")
    if not mhz:
        m = re.findall(r"cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text())
        mhz = m[0] if m else "0"
    ghz = float(mhz) / 1000
    flags = field("Flags").split()
    lanes = 16 if "avx512f" in flags else 8 if "avx" in flags else 4
    fma = "fma" in flags
    units = 2 if fma else 1   # assumption: 2 FMA pipes (Intel server cores since Skylake-SP Gold)
    per_core = ghz * units * lanes * (2 if fma else 1)
    how = (f"{cores} cores x {ghz:.2f} GHz x {units} FMA units x {lanes} fp32 lanes"
           f" ({'avx512f' if lanes == 16 else 'avx2' if lanes == 8 else 'sse'}) x 2 flop/FMA;"
           f" model: {field('Model name')}")
    return per_core * cores, per_core, how, ghz


def measured_peak(work: Path, res: dict | None = None) -> dict:
    """Best GFLOP/s per (vector bits, threads); merges into ``res`` (best of all calls)."""
    res = {} if res is None else res
    for vbytes in (32, 64):
        exe = work / f"fma{vbytes}"
        compile_c([SCHED / "fma_peak.c"], exe,
                  ["-O3", "-march=native", "-ffp-contract=fast", "-fopenmp", f"-DVBYTES={vbytes}"],
                  ldflags=["-fopenmp"])
        for threads in (1, os.cpu_count() or 1):
            out = subprocess.run([str(exe), "4000000", "12"], capture_output=True, text=True, timeout=120,
                                 env={**os.environ, "OMP_NUM_THREADS": str(threads)}).stdout
            res[(vbytes * 8, threads)] = max(res.get((vbytes * 8, threads), 0.0), float(out.split()[-1]))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-budget", type=float, default=210, help="seconds for the search (default 210)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="conv2d-sched-") as tmp:
        work = Path(tmp)
        print("naive kernel (gcc -O3 -march=native) ...", flush=True)
        naive_gf, naive_out = naive(work)
        print("numpy im2col + matmul ...", flush=True)
        np_total, np_mm, blas, np_out = numpy_im2col()
        assert np.allclose(np_out, naive_out, rtol=1e-4, atol=1e-4), "numpy and naive C disagree"
        print("peak: lscpu and FMA microbenchmark ...", flush=True)
        peak_total, peak_core, how, ghz = derived_peak()
        meas = measured_peak(work)
        print(f"schedule search: up to {args.trials} TPE trials (seed {args.seed}) ...", flush=True)
        results = search(args.trials, args.seed, args.time_budget, work, naive_out)
        print("peak again (best of both runs is kept) ...", flush=True)
        meas = measured_peak(work, meas)

    ok = [r for r in results if r["close"]]
    best = max(ok, key=lambda r: r["gflops_best"])
    base = results[0] if results else None
    one_core = max(v for (bits, th), v in meas.items() if th == 1)
    implied = one_core * cores                # measured 1-core peak (turbo clock) x cores
    ref_peak = max(peak_total, implied)       # the % column is relative to this
    rows = [
        ("best schedule found (fastest rep)", best["gflops_best"], fmt_cfg(best["cfg"])),
        ("  same, median rep", best["gflops"], "interference from other jobs shows here"),
        ("baseline schedule (fastest rep)", base["gflops_best"] if base else float("nan"), "study baseline, trial 0"),
        ("naive C loops, gcc -O3 -march=native", naive_gf, "1 thread, fastest rep"),
        ("numpy im2col + matmul", np_total, blas + ", fastest of 60"),
        ("numpy matmul only (cols prebuilt)", np_mm, ""),
        ("peak, derived (lscpu, nominal clock)", peak_total, f"{peak_core:.1f} per core"),
    ]
    for (bits, th), v in sorted(meas.items()):
        rows.append((f"peak, measured FMA {bits}-bit x {th} thr", v, "fma_peak.c, best of 2x12 runs"))
    rows.append(("peak, measured 1-core x cores", implied,
                 f"= {one_core / peak_core * ghz:.2f} GHz at the derived flop/cycle" if peak_core else ""))
    print()
    print(f"conv2d ResNet-18 C9: 1x256x14x14 -> 256, 3x3, pad 1, fp32 NCHW; {GFLOP:.4f} GFLOP per call; {cores} cores")
    print(f"{'':44s} {'GFLOP/s':>9s} {'% peak':>7s}  note")
    for name, v, note in rows:
        print(f"{name:44s} {v:9.1f} {100 * v / ref_peak:6.1f}%  {note}")
    print(f"\n% peak = of {ref_peak:.1f} GFLOP/s = max(derived, measured 1-core x {cores})")
    print(f"derived: {how}")
    print("measured: fma_peak.c, 12 independent FMA chains per thread (gcc -O3 -march=native"
          " -ffp-contract=fast); the 1-core figure above nominal means turbo; multi-thread"
          " figures suffer most from other jobs on this machine")
    print(f"trials: {len(results)} measured, {len(ok)} within rtol 1e-4 of naive,"
          f" {sum(r['exact'] for r in results)} bit-identical to trial 0;"
          f" best/naive {best['gflops_best'] / naive_gf:.1f}x, best/numpy {best['gflops_best'] / np_total:.2f}x;"
          f" wall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

"""tune over its TVM matmul knobs versus TVM's own MetaSchedule, same budget.

    .venv/bin/python bench/tvm_metaschedule.py --trials 32,64

Both sides tune ``C = A @ B`` (float32, M=N=K=512, the study's shape) for LLVM on this CPU:

* **tune**: ``tune explore tvm-matmul --trials N`` with its defaults (sampler ``auto``, the
  surrogate, declared constraints resampled at no cost, tile sizes as divisor knobs), each trial
  running programs/tvm_matmul/tvm_matmul.py (build, numpy check, time) on the ``python`` target.
* **MetaSchedule**: ``tvm.s_tir.meta_schedule.tune_tir`` with ``max_trials_global=N`` on the
  same PrimFunc, target ``{"kind": "llvm", "mcpu": <host>, "num-cores": 2}``, default
  evolutionary search with the XGBoost cost model (needs ``psutil`` and ``xgboost``).

The best schedule of each is then re-timed the same way (``time_evaluator``, number=1,
repeat=20, min_repeat_ms=50) and checked against numpy, so the GFLOP/s columns compare like
with like; each side's own view of its best is printed too.

MetaSchedule's stock ``LocalBuilder`` fails every candidate here: its build function
imports ``tvm.s_tir.tensor_intrin`` in a fresh worker process per batch, which takes
longer than the 30 s build timeout (20-45 s on this 2-core machine), so every build ends
with "LocalBuilder: Timeout, killed after 30.0 seconds". By default this bench hands the
builder the same build function minus that import (nothing here is tensorized);
``--stock-builder`` keeps the stock one to reproduce the failure.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuner.library import program_module  # noqa: E402

tm = program_module("tvm_matmul/tvm_matmul.py")

STUDY = ROOT / "search_spaces" / "tvm-matmul.toml"
RETIME = tm.Options(timing=tm.Timing(number=1, repeat=20, min_repeat_ms=50))


def _as_field(value):
    return {"on": True, "off": False}.get(value, value)


def run_tune(shape: tm.Shape, trials: int, seed: int, extra: list[str]) -> dict:
    """`tune explore tvm-matmul` with its defaults (sampler auto, surrogate, declared constraints
    resampled, divisor tiles), as a user runs it; then its best schedule re-timed."""
    import json  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    from tuner.result import TrialRecord, TrialStatus  # noqa: PLC0415
    from tuner.study import load_study  # noqa: PLC0415
    from tuner.studystore import open_study  # noqa: PLC0415

    spec = load_study(str(STUDY))
    with tempfile.TemporaryDirectory(prefix="tune-tvm-") as tmp:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "tuner", "explore", str(STUDY), "--trials", str(trials),
                               "--seed", str(seed), "--results", tmp, "--no-export", *extra],
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"tune explore failed: {proc.stderr[-2000:]}")
        study = open_study(spec, Path(tmp) / spec.name, None, create=False)
        recs = [TrialRecord.from_trial(t, spec.objectives) for t in study.get_trials(deepcopy=False)]
    done = [r for r in recs if r.status == TrialStatus.COMPLETE]
    best = min(done, key=lambda r: r.values["latency_ms"]) if done else None
    sampler = next((ln for ln in proc.stderr.splitlines() if ln.startswith("sampler:")), "")
    out = {"trials": trials, "wall_s": wall, "sampler": sampler,
           "resampled": sum(r.resampled for r in recs),
           "infeasible": sum(r.status == TrialStatus.INFEASIBLE and not r.resampled for r in recs),
           "pruned": sum(r.status == TrialStatus.PRUNED for r in recs),
           "measured": sum(r.measured for r in recs), "best_knobs": None,
           "tuner_gflops": math.nan, "gflops": math.nan}
    if best is not None:
        knobs = tm.Knobs(**{k: _as_field(v) for k, v in best.config.items()})
        out["best_knobs"] = knobs
        out["best_config"] = json.dumps(dict(best.config))
        out["tuner_gflops"] = shape.flop / (best.values["latency_ms"] * 1e6)
        out["gflops"] = tm.measure(shape, knobs, RETIME)["gflops"]
    return out


def _build_without_intrin_import(mod, target, _params):
    """``meta_schedule.builder.default_build`` without ``import tvm.s_tir.tensor_intrin``."""
    from tvm.driver import build as tvm_build  # noqa: PLC0415
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock  # noqa: PLC0415

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)


def run_metaschedule(shape: tm.Shape, trials: int, seed: int, stock_builder: bool,
                     work_dir: str | None) -> dict:
    import numpy as np  # noqa: PLC0415
    import tvm  # noqa: PLC0415
    from tvm.s_tir import meta_schedule as ms  # noqa: PLC0415

    target = tvm.target.Target({"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu(),
                                "num-cores": 2})
    func = tm.prim_func(shape)
    builder = "local" if stock_builder else ms.builder.LocalBuilder(
        f_build=_build_without_intrin_import)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        wd = work_dir or tmp
        db = ms.tune_tir(mod=func, target=target, work_dir=wd, max_trials_global=trials,
                         num_trials_per_iter=min(trials, 64), builder=builder,
                         num_tuning_cores=2, seed=seed)
        wall = time.perf_counter() - start
        records = db.get_all_tuning_records()
        costs = [float(np.mean([float(c) for c in r.run_secs])) for r in records
                 if r.run_secs is not None and len(r.run_secs)]
        sch = ms.tir_integration.compile_tir(db, func, target)
    out = {"trials": trials, "wall_s": wall, "measured": len(costs),
           "tuner_gflops": shape.flop / (min(costs) * 1e9) if costs else math.nan,
           "gflops": math.nan, "error": None}
    if sch is None:
        out["error"] = "no valid schedule in the database (all candidates failed)"
        return out
    lib = tvm.tirx.build(sch.mod, target=target)
    out["gflops"] = _retime(shape, lib)
    return out


def _retime(shape: tm.Shape, lib) -> float:
    """GFLOP/s of a built matmul, timed like tm.measure, after a numpy check."""
    import numpy as np  # noqa: PLC0415
    import tvm  # noqa: PLC0415

    dev = tvm.cpu(0)
    rng = np.random.default_rng(0)
    a = rng.random((shape.M, shape.K), dtype=np.float32)
    b = rng.random((shape.K, shape.N), dtype=np.float32)
    ta, tb = tvm.runtime.tensor(a, dev), tvm.runtime.tensor(b, dev)
    tc = tvm.runtime.tensor(np.full((shape.M, shape.N), np.nan, dtype=np.float32), dev)
    lib["main"](ta, tb, tc)
    np.testing.assert_allclose(tc.numpy(), a.astype(np.float64) @ b.astype(np.float64),
                               rtol=RETIME.rtol, atol=RETIME.atol)
    t = RETIME.timing
    res = lib.time_evaluator("main", dev, number=t.number, repeat=t.repeat,
                             min_repeat_ms=t.min_repeat_ms)(ta, tb, tc)
    return shape.flop / (float(np.median(res.results)) * 1e9)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", default="32,64", help="budgets, comma-separated (default: 32,64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["tune", "ms"], help="run one side only")
    p.add_argument("--tune-args", default="", help="extra `tune explore` arguments (e.g. '--sampler random')")
    p.add_argument("--stock-builder", action="store_true",
                   help="MetaSchedule with its unmodified LocalBuilder (times out here)")
    p.add_argument("--work-dir", help="keep MetaSchedule's logs and database here")
    args = p.parse_args(argv)
    try:
        import tvm  # noqa: F401, PLC0415
    except ImportError as exc:
        print(f"tvm_metaschedule: apache-tvm is not installed ({exc})", file=sys.stderr)
        return 2
    shape = tm.Shape(512, 512, 512)      # the study's shape
    rows = []
    for trials in [int(t) for t in args.trials.split(",")]:
        if args.only in (None, "tune"):
            r = run_tune(shape, trials, args.seed, args.tune_args.split())
            print(f"tune ({trials} trials): {r['sampler']}; measured {r['measured']}, resampled "
                  f"(declared constraints, not counted) {r['resampled']}, infeasible {r['infeasible']}, "
                  f"pruned {r['pruned']}; best {r['best_knobs']}", flush=True)
            rows.append(("tune", r))
        if args.only in (None, "ms"):
            try:
                r = run_metaschedule(shape, trials, args.seed, args.stock_builder, args.work_dir)
            except Exception as exc:  # noqa: BLE001 (report why MetaSchedule could not run)
                r = {"trials": trials, "wall_s": math.nan, "tuner_gflops": math.nan,
                     "gflops": math.nan, "error": f"{type(exc).__name__}: {tm._first_line(exc)}"}
            if r.get("error"):
                print(f"MetaSchedule: {r['error']}", flush=True)
            rows.append(("MetaSchedule", r))
    print(f"\nmatmul 512^3 fp32, llvm mcpu={tvm.target.codegen.llvm_get_system_cpu()}, seed {args.seed}")
    print(f"{'tuner':<14}{'trials':>7}{'wall s':>9}{'own GFLOP/s':>13}{'re-timed GFLOP/s':>18}")
    for name, r in rows:
        print(f"{name:<14}{r['trials']:>7}{r['wall_s']:>9.1f}{r['tuner_gflops']:>13.1f}"
              f"{r['gflops']:>18.1f}")
    by = {(name, r["trials"]): r["gflops"] for name, r in rows}
    for trials in sorted({r["trials"] for _, r in rows}):
        t, m = by.get(("tune", trials)), by.get(("MetaSchedule", trials))
        if t is not None and m is not None:
            verdict = "at least equal" if t >= m else "BEHIND"
            print(f"{trials} trials: tune {t:.1f} vs MetaSchedule {m:.1f} GFLOP/s re-timed: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

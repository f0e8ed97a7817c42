"""tune over its TVM matmul knobs versus TVM's own MetaSchedule, same budget.

    .venv/bin/python bench/tvm_metaschedule.py --trials 32,64
    .venv/bin/python bench/tvm_metaschedule.py --trials 32,64 --tune-args '--surrogate off'

Both sides tune ``C = A @ B`` (float32, M=N=K=512, the study's shape) for LLVM on this CPU:

* **tune**: ``tune explore tvm-matmul --trials N`` with its defaults (sampler ``auto``, the
  surrogate, declared constraints resampled at no cost, tile sizes as divisor knobs, the study's
  obvious point: the register-blocked nest; ``--tune-args`` adds options), each trial
  running programs/tvm_matmul/tvm_matmul.py (build, numpy check, time) on the ``python`` target.
* **MetaSchedule**: ``tvm.s_tir.meta_schedule.tune_tir`` with ``max_trials_global=N`` on the
  same PrimFunc, target ``{"kind": "llvm", "mcpu": <host>, "num-cores": 2}``, default
  evolutionary search with the XGBoost cost model (needs ``psutil`` and ``xgboost``).

The best schedule of each (tune's knobs; MetaSchedule's scheduled module, kept as TVMScript)
is then built again in this process, checked against numpy, and re-timed the same way, the two
interleaved (``--rounds`` rounds of A B B A, each a ``time_evaluator`` call with number=1,
repeat=20, min_repeat_ms=50; the figure is the median of all samples): the GFLOP/s columns
compare like with like, at the same moment, whatever the load was while each side searched.
Each side's own view of its best is printed too.

MetaSchedule's stock ``LocalBuilder`` fails every candidate here: its build function
imports ``tvm.s_tir.tensor_intrin`` in a fresh worker process per batch, which takes
longer than the 30 s build timeout (20-45 s on this 2-core machine), so every build ends
with "LocalBuilder: Timeout, killed after 30.0 seconds". By default this bench hands the
builder the same build function minus that import (nothing here is tensorized);
``--stock-builder`` keeps the stock one to reproduce the failure.

Each (side, trials, seed) result is cached as JSON in ``--out`` (results/tvm_metaschedule), so
the runs can be split over several holds of the shared lock (``--only tune``, ``--only ms``,
one budget at a time) and a last call prints the table from the cache; ``--fresh`` reruns.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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


BOOL_KNOBS = {f.name for f in dataclasses.fields(tm.Knobs) if f.type in (bool, "bool")}


def _as_field(name: str, value):
    """A knob value as tm.Knobs holds it: on/off -> bool for the on/off knobs only."""
    return {"on": True, "off": False}.get(value, value) if name in BOOL_KNOBS else value


def run_tune(shape: tm.Shape, trials: int, seed: int, extra: list[str]) -> dict:
    """`tune explore tvm-matmul` with its defaults (sampler auto, surrogate, declared constraints
    resampled, divisor tiles), as a user runs it; then its best schedule re-timed."""
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
           "tuner_gflops": math.nan}
    if best is not None:
        knobs = tm.Knobs(**{k: _as_field(k, v) for k, v in best.config.items()})
        out["best_knobs"] = dataclasses.asdict(knobs)
        out["best_config"] = json.dumps(dict(best.config))
        out["tuner_gflops"] = shape.flop / (best.values["latency_ms"] * 1e6)
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

    target = _ms_target()
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
           "script": None, "error": None}
    if sch is None:
        out["error"] = "no valid schedule in the database (all candidates failed)"
        return out
    out["script"] = sch.mod.script()
    return out


def _ms_target():
    import tvm  # noqa: PLC0415

    return tvm.target.Target({"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu(),
                              "num-cores": 2})


def _checked(shape: tm.Shape, lib, inputs) -> None:
    """Run ``lib`` once on NaN-filled output and compare with float64 numpy (raises on mismatch)."""
    import numpy as np  # noqa: PLC0415

    a, b, ta, tb, tc = inputs
    tc.copyfrom(np.full((shape.M, shape.N), np.nan, dtype=np.float32))
    lib["main"](ta, tb, tc)
    np.testing.assert_allclose(tc.numpy(), a.astype(np.float64) @ b.astype(np.float64),
                               rtol=RETIME.rtol, atol=RETIME.atol)


def retime(shape: tm.Shape, libs: dict, rounds: int) -> dict[str, float]:
    """GFLOP/s of each built matmul in ``libs`` (name -> module), checked against numpy first,
    then timed interleaved: ``rounds`` rounds of A B B A (A B ... B A for more than two)."""
    import numpy as np  # noqa: PLC0415
    import tvm  # noqa: PLC0415

    dev = tvm.cpu(0)
    rng = np.random.default_rng(0)
    a = rng.random((shape.M, shape.K), dtype=np.float32)
    b = rng.random((shape.K, shape.N), dtype=np.float32)
    ta, tb = tvm.runtime.tensor(a, dev), tvm.runtime.tensor(b, dev)
    tc = tvm.runtime.tensor(np.zeros((shape.M, shape.N), dtype=np.float32), dev)
    for lib in libs.values():
        _checked(shape, lib, (a, b, ta, tb, tc))
    t = RETIME.timing
    evaluators = {name: lib.time_evaluator("main", dev, number=t.number, repeat=t.repeat,
                                           min_repeat_ms=t.min_repeat_ms) for name, lib in libs.items()}
    samples: dict[str, list[float]] = {name: [] for name in libs}
    names = list(libs)
    for _ in range(rounds):
        for name in names + names[::-1]:
            samples[name] += list(evaluators[name](ta, tb, tc).results)
    return {name: shape.flop / (float(np.median(s)) * 1e9) for name, s in samples.items()}


def build_tune(shape: tm.Shape, r: dict):
    """tune's best schedule, built as its trials built it (None if it found none)."""
    return tm.build(shape, tm.Knobs(**r["best_knobs"])) if r.get("best_knobs") else None


def build_ms(r: dict):
    """MetaSchedule's best schedule from its TVMScript, built for its target (None if none)."""
    import tvm  # noqa: PLC0415

    if not r.get("script"):
        return None
    return tvm.tirx.build(tvm.script.from_source(r["script"]), target=_ms_target())


def _cached(path: Path, fresh: bool, compute) -> dict:
    """A side's result from ``path``, or computed and written there before the next run starts."""
    if path.exists() and not fresh:
        r = json.loads(path.read_text())
        r["cached"] = True
        return r
    r = compute()
    if not r.get("error"):                   # a failure is printed, not kept
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r, default=str))
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", default="32,64", help="budgets, comma-separated (default: 32,64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["tune", "ms"], help="run one side only")
    p.add_argument("--tune-args", default="", help="extra `tune explore` arguments (e.g. '--sampler random')")
    p.add_argument("--stock-builder", action="store_true",
                   help="MetaSchedule with its unmodified LocalBuilder (times out here)")
    p.add_argument("--work-dir", help="keep MetaSchedule's logs and database here")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "tvm_metaschedule",
                   help="cache of finished runs (one JSON per side, budget and seed)")
    p.add_argument("--fresh", action="store_true", help="rerun even when a cached result exists")
    p.add_argument("--rounds", type=int, default=3, help="ABBA rounds of the final re-timing")
    args = p.parse_args(argv)
    try:
        import tvm  # noqa: F401, PLC0415
    except ImportError as exc:
        print(f"tvm_metaschedule: apache-tvm is not installed ({exc})", file=sys.stderr)
        return 2
    shape = tm.Shape(512, 512, 512)      # the study's shape
    tag = "-".join(args.tune_args.split()).replace("/", "_")
    rows = []
    for trials in [int(t) for t in args.trials.split(",")]:
        if args.only in (None, "tune"):
            path = args.out / f"tune{'-' + tag if tag else ''}-t{trials}-s{args.seed}.json"
            r = _cached(path, args.fresh, lambda: run_tune(shape, trials, args.seed, args.tune_args.split()))
            print(f"tune ({trials} trials{', cached' if r.get('cached') else ''}): {r['sampler']}; measured "
                  f"{r['measured']}, resampled (declared constraints, not counted) {r['resampled']}, "
                  f"infeasible {r['infeasible']}, pruned {r['pruned']}; best {r['best_knobs']}", flush=True)
            rows.append(("tune", r))
        if args.only in (None, "ms"):
            path = args.out / f"ms{'-stock' if args.stock_builder else ''}-t{trials}-s{args.seed}.json"

            def ms() -> dict:
                try:
                    return run_metaschedule(shape, trials, args.seed, args.stock_builder, args.work_dir)
                except Exception as exc:  # noqa: BLE001 (report why MetaSchedule could not run)
                    return {"trials": trials, "wall_s": math.nan, "tuner_gflops": math.nan,
                            "error": f"{type(exc).__name__}: {tm._first_line(exc)}"}
            r = _cached(path, args.fresh, ms)
            if r.get("error"):
                print(f"MetaSchedule: {r['error']}", flush=True)
            rows.append(("MetaSchedule", r))
    budgets = sorted({r["trials"] for _, r in rows})
    gflops: dict[tuple[str, int], float] = {}
    for trials in budgets:
        libs = {}
        for name, r in rows:
            if r["trials"] == trials:
                lib = build_tune(shape, r) if name == "tune" else build_ms(r)
                if lib is not None:
                    libs[name] = lib
        if libs:
            for name, g in retime(shape, libs, args.rounds).items():
                gflops[(name, trials)] = g
    print(f"\nmatmul 512^3 fp32, llvm mcpu={tvm.target.codegen.llvm_get_system_cpu()}, seed {args.seed}; "
          f"re-timed together, {args.rounds} rounds of ABBA")
    print(f"{'tuner':<14}{'trials':>7}{'measured':>10}{'wall s':>9}{'own GFLOP/s':>13}{'re-timed GFLOP/s':>18}")
    for name, r in rows:
        print(f"{name:<14}{r['trials']:>7}{r['measured'] if 'measured' in r else '-':>10}{r['wall_s']:>9.1f}"
              f"{r['tuner_gflops']:>13.1f}{gflops.get((name, r['trials']), math.nan):>18.1f}")
    for trials in budgets:
        t, m = gflops.get(("tune", trials)), gflops.get(("MetaSchedule", trials))
        if t is not None and m is not None:
            verdict = "at least equal" if t >= m else "BEHIND"
            print(f"{trials} trials: tune {t:.1f} vs MetaSchedule {m:.1f} GFLOP/s re-timed: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The obvious points two built-in studies declare (`[study] seeds`), measured after the baseline.

A declared seed that breaks a constraint is dropped without a word (tuner.seeds.obvious), so
these check that each survives and is what the README says it is.

* resnet18-vta: every GEMM core shape that fits the part at the smallest buffers, with the
  smallest accumulator and with the baseline's, the smallest design first (bench/vta_search.py
  chose them: with them the default search reaches 99.4% of the exact front's hypervolume at 60
  trials, at least 99.2% on each of 10 seeds; with the smallest design alone 98.9%).
* tvm-matmul: the register-blocked nest MetaSchedule builds its candidates from, at the
  baseline's tiles (bench/tvm_metaschedule.py measures with and without it).
"""

from __future__ import annotations

from tuner.knobs import dist as D
from tuner.library import program_module
from tuner.seeds import obvious
from tuner.study import load_study


def test_the_flagship_seeds_a_sweep_of_core_shapes_smallest_design_first():
    spec = load_study("resnet18-vta")
    points = obvious(spec.space, spec.baseline, spec.seeds)
    lowest = {k.name: k.decode(D.values(k.distribution())[0]) for k in spec.space.knobs.values()}
    base = spec.space.complete(spec.baseline)
    assert points[0] == lowest and base not in points
    assert len(points) == len(spec.seeds) == 14             # none dropped by a constraint
    assert not any(spec.space.violations(p) for p in points)
    shapes = {(p["log_block_in"], p["log_block_out"]) for p in points}
    assert shapes == {(i, o) for i in (3, 4, 5) for o in (3, 4, 5)} - {(5, 5)}
    small = {k: lowest[k] for k in ("log_batch", "log_uop_buff_size", "log_inp_buff_size", "log_wgt_buff_size")}
    assert all({k: p[k] for k in small} == small for p in points)
    assert {p["log_acc_buff_size"] for p in points} == {lowest["log_acc_buff_size"], base["log_acc_buff_size"]}


def test_tvm_matmul_seeds_the_register_blocked_nest_at_the_baseline_tiles():
    tm = program_module("tvm_matmul/tvm_matmul.py")
    spec = load_study("tvm-matmul")
    [point] = obvious(spec.space, spec.baseline, spec.seeds)
    base = spec.space.complete(spec.baseline)
    assert {k: v for k, v in point.items() if v != base[k]} == {
        "order": "io,jo,ii,ji,ko,ki", "tile_i2": 8, "tile_j2": 16, "cache_write": "local"}
    knobs = tm.Knobs(**{k: {"on": True, "off": False}.get(v, v) if k in ("vectorize", "parallel", "unroll_k")
                        else v for k, v in point.items()})
    assert tm.check(tm.Shape(), knobs) is None          # the program builds it (no TVM needed to check)

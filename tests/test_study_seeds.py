"""The obvious points two built-in studies declare (`[study] seeds`), measured after the baseline.

A declared seed that breaks a constraint is dropped without a word (tuner.seeds.obvious), so
these check that each survives and is what the README says it is.

* resnet18-vta: the smallest design (bench/vta_search.py chose it: with it the default search
  reaches about 99% of the exact front's hypervolume at 60 trials, without it about 95%).
* tvm-matmul: the register-blocked nest MetaSchedule builds its candidates from, at the
  baseline's tiles (bench/tvm_metaschedule.py measures with and without it).
"""

from __future__ import annotations

from tuner.knobs import dist as D
from tuner.library import program_module
from tuner.seeds import obvious
from tuner.study import load_study


def test_the_flagship_seeds_its_smallest_design_after_the_baseline():
    spec = load_study("resnet18-vta")
    points = obvious(spec.space, spec.baseline, spec.seeds)
    lowest = {k.name: k.decode(D.values(k.distribution())[0]) for k in spec.space.knobs.values()}
    assert points == [lowest]
    assert not spec.space.violations(lowest)
    assert lowest != spec.space.complete(spec.baseline)


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

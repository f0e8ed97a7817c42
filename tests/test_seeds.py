"""The obvious points a campaign measures right after the baseline (tuner/seeds.py)."""

from __future__ import annotations

from tuner.expr import Expr
from tuner.knobs import make_knob
from tuner.seeds import obvious
from tuner.space import Constraint, SearchSpace
from tuner.study import load_study


def test_derived_from_the_gcc_space():
    spec = load_study("conv2d-gcc")
    base = spec.space.complete(spec.baseline)
    moved = [{k: v for k, v in c.items() if v != base[k]} for c in obvious(spec.space, spec.baseline)]
    assert moved == [{"opt_level": "-O2"}, {"opt_level": "-Os"}, {"march": "-march=native"}]


def test_native_point_is_at_o3_even_from_another_baseline():
    spec = load_study("conv2d-gcc")
    points = obvious(spec.space, {"opt_level": "-O1"})
    assert [p["opt_level"] for p in points] == ["-O2", "-O3", "-Os", "-O3"]
    assert points[-1]["march"] == "-march=native" and points[-2]["march"] == ""


def test_declared_seeds_win_and_constraints_and_repeats_are_dropped():
    knobs = [make_knob("opt_level", {"kind": "categorical", "choices": ["-O1", "-O2", "-O3", "-Os"],
                                     "to": "cflag"}, "<t>"),
             make_knob("tile", {"kind": "divisor", "of": 64, "to": "define"}, "<t>")]
    space = SearchSpace(knobs, [Constraint(Expr("tile <= 16"), "tile <= 16")], "<t>")
    declared = [{"tile": 8}, {"tile": 32}, {"opt_level": "-O1"}, {"tile": 8}, {"opt_level": "-O2", "tile": 4}]
    points = obvious(space, {"opt_level": "-O1"}, declared)
    assert points == [{"opt_level": "-O1", "tile": 8}, {"opt_level": "-O2", "tile": 4}]


def test_nothing_obvious_in_a_hardware_space():
    spec = load_study("resnet18-vta")
    assert obvious(spec.space, spec.baseline) == []

"""Pareto layer: exact front against brute force, hand-computed hypervolumes, the knee."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pytest

from tuner import pareto
from tuner.pareto import (
    default_reference,
    hypervolume,
    knee_index,
    nondominated_mask,
    pareto_front,
)


@dataclass
class Obj:
    name: str
    direction: str
    unit: str = ""


@dataclass
class Trial:
    number: int
    values: dict
    params: dict = field(default_factory=dict)


def brute_force_mask(values: np.ndarray, directions: list[str]) -> np.ndarray:
    """Textbook O(n^2) definition, one pair at a time, written independently of the module."""
    n, k = values.shape
    better = [(lambda a, b: a < b) if d == "minimize" else (lambda a, b: a > b) for d in directions]
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            no_worse = all(values[j, m] == values[i, m] or better[m](values[j, m], values[i, m])
                           for m in range(k))
            strictly = any(better[m](values[j, m], values[i, m]) for m in range(k))
            if no_worse and strictly:
                keep[i] = False
                break
    return keep


@pytest.mark.parametrize("k", [2, 3, 4, 5])
@pytest.mark.parametrize("seed", range(6))
def test_mask_matches_brute_force(k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 80))
    # small integer grid: many ties on single objectives and exact duplicate rows
    values = rng.integers(0, 6, size=(n, k)).astype(float)
    if n > 3:
        values[-2:] = values[:2]
    directions = [str(d) for d in rng.choice(["minimize", "maximize"], size=k)]
    got = nondominated_mask(values, directions)
    np.testing.assert_array_equal(got, brute_force_mask(values, directions))


@pytest.mark.parametrize("seed", range(3))
def test_mask_continuous_and_block_boundaries(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(100 + seed)
    values = rng.normal(size=(300, 3))
    directions = ["minimize", "maximize", "minimize"]
    expected = brute_force_mask(values, directions)
    np.testing.assert_array_equal(nondominated_mask(values, directions), expected)
    monkeypatch.setattr(pareto, "_BLOCK_ELEMENTS", 7 * 300 * 3)  # blocks of 7 rows, ragged end
    np.testing.assert_array_equal(nondominated_mask(values, directions), expected)


def test_duplicates_of_a_front_point_are_both_kept() -> None:
    values = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [2.0, 2.0]])
    assert nondominated_mask(values, ["minimize", "minimize"]).tolist() == [True, True, True, False]


def test_non_finite_rows_are_never_on_the_front_and_dominate_nothing() -> None:
    values = np.array([[np.nan, 0.0], [-np.inf, -np.inf], [1.0, 1.0], [2.0, 2.0]])
    assert nondominated_mask(values, ["minimize", "minimize"]).tolist() == [False, False, True, False]


def test_maximize_flips_dominance() -> None:
    values = np.array([[1.0, 1.0], [2.0, 2.0]])
    assert nondominated_mask(values, ["maximize", "maximize"]).tolist() == [False, True]
    assert nondominated_mask(values, ["minimize", "maximize"]).tolist() == [True, True]


def test_bad_direction_and_shape_are_rejected() -> None:
    with pytest.raises(ValueError, match="direction"):
        nondominated_mask(np.zeros((2, 2)), ["minimize", "lower"])
    with pytest.raises(ValueError, match="shape"):
        nondominated_mask(np.zeros((2, 3)), ["minimize", "minimize"])


def test_pareto_front_sorted_and_skips_failed() -> None:
    objs = [Obj("latency_ms", "minimize", "ms"), Obj("gflops", "maximize", "GFLOP/s")]
    trials = [
        Trial(0, {"latency_ms": 3.0, "gflops": 30.0}),
        Trial(1, {"latency_ms": 1.0, "gflops": 10.0}),
        Trial(2, {"latency_ms": 2.0, "gflops": 5.0}),     # dominated by 1
        Trial(3, {"latency_ms": 0.5}),                    # failed: missing objective
        Trial(4, {"latency_ms": float("nan"), "gflops": 99.0}),
        Trial(5, {"latency_ms": 2.0, "gflops": 20.0}),
        Trial(6, {"latency_ms": 1.0, "gflops": 10.0}),    # duplicate of 1: kept
    ]
    assert [t.number for t in pareto_front(trials, objs)] == [1, 6, 5, 0]
    assert pareto_front([], objs) == []


def test_hypervolume_2d_by_hand() -> None:
    # staircase (1,3), (2,2), (3,1) against reference (4,4): 3*1 + 2*1 + 1*1 = 6
    pts = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.5, 3.5]])
    assert hypervolume(pts, ["minimize", "minimize"], [4.0, 4.0]) == pytest.approx(6.0)
    # the same front with the second objective maximised (negated values, reference -4)
    flipped = pts * [1, -1]
    assert hypervolume(flipped, ["minimize", "maximize"], [4.0, -4.0]) == pytest.approx(6.0)


def test_hypervolume_drops_points_beyond_reference() -> None:
    pts = np.array([[1.0, 1.0], [5.0, 0.0], [np.nan, 0.0]])
    assert hypervolume(pts, ["minimize", "minimize"], [2.0, 2.0]) == pytest.approx(1.0)
    assert hypervolume(np.array([[3.0, 3.0]]), ["minimize", "minimize"], [2.0, 2.0]) == 0.0


@pytest.mark.parametrize("k", [2, 3, 4])
def test_fallback_agrees_with_optuna(k: int) -> None:
    rng = np.random.default_rng(k)
    loss = rng.uniform(size=(25, k))
    ref = np.full(k, 1.1)
    assert pareto._hv_exact(loss, ref) == pytest.approx(pareto._hv_loss(loss, ref))


def test_hypervolume_3d_two_boxes() -> None:
    pts = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    # union of a 2x2x1 box and a 1x1x2 box overlapping in a 1x1x1 cube: 4 + 2 - 1
    assert hypervolume(pts, ["minimize"] * 3, [2.0, 2.0, 2.0]) == pytest.approx(5.0)


def test_default_reference_rule() -> None:
    vals = np.array([[1.0, 10.0], [3.0, 30.0], [2.0, np.inf]])
    ref = default_reference(vals, ["minimize", "maximize"])
    np.testing.assert_allclose(ref, [3.0 + 0.2, 10.0 - 2.0])
    # a constant objective still gets a margin, so every point contributes volume
    ref = default_reference(np.array([[5.0, 1.0], [5.0, 2.0]]), ["minimize", "minimize"])
    np.testing.assert_allclose(ref, [5.5, 2.1])
    assert hypervolume(np.array([[5.0, 1.0]]), ["minimize", "minimize"], ref) > 0


def test_knee_on_textbook_convex_front() -> None:
    # x + y = 1 bent towards the origin: y = (1 - sqrt(x))^2, knee at x = y = 0.25
    x = np.linspace(0.0, 1.0, 41)
    front = np.column_stack([x, (1 - np.sqrt(x)) ** 2])
    i = knee_index(front, ["minimize", "minimize"])
    assert front[i] == pytest.approx([0.25, 0.25])
    # same front, second objective maximised and rescaled: the knee is unchanged
    assert knee_index(front * [1, -100], ["minimize", "maximize"]) == i


def test_knee_obvious_corner_and_small_fronts() -> None:
    front = np.array([[0.0, 10.0], [1.0, 1.0], [6.0, 0.5], [10.0, 0.0]])
    assert knee_index(front, ["minimize", "minimize"]) == 1
    assert knee_index(front[:2], ["minimize", "minimize"]) == 0
    with pytest.raises(ValueError):
        knee_index(np.empty((0, 2)), ["minimize", "minimize"])


def test_knee_three_objectives() -> None:
    # the three extremes plus one point bulging towards the ideal corner
    front = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.2, 0.2, 0.2], [0.5, 0.4, 0.3]])
    assert knee_index(front, ["minimize"] * 3) == 3
    # degenerate extremes (one point best in two objectives) fall back to sum(x) = 1
    front = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.3, 0.3, 0.2]])
    assert knee_index(front, ["minimize"] * 3) == 2


def test_all_pairs_of_front_are_mutually_nondominated() -> None:
    rng = np.random.default_rng(7)
    vals = rng.uniform(size=(200, 3))
    front = vals[nondominated_mask(vals, ["minimize"] * 3)]
    for a, b in itertools.permutations(front, 2):
        assert not (np.all(a <= b) and np.any(a < b))

"""Pareto analysis of finished trials: the exact front, its hypervolume and its knee.

Pure functions over plain data, so the same code serves the CLI, the plots and the tests.
Every function takes objective *directions* ("minimize" / "maximize") and works internally
on minimisation-transformed values (maximised columns are negated), so no caller has to
remember which way is better.

Rules (the ones a reader of a plot or a paper needs to know):

* Dominance: a dominates b when a is no worse in every objective and strictly better in one.
* Duplicates: identical points do not dominate each other, so every copy of a front point
  stays on the front (two trials that reached the same values are both reported).
* Non-finite rows (nan, +-inf in any objective) are never on the front and dominate nothing:
  they stand for failed or infeasible measurements, not for real points.

A trial is any object with ``number: int``, ``params: dict``, ``values: dict[str, float]``
(objective name -> value); an objective is any object with ``name`` and ``direction``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence, TypeVar

import numpy as np

from tuner.objectives import DIRECTIONS, sign

REFERENCE_MARGIN = 0.10  # default_reference: worst value plus 10% of the observed range
_BLOCK_ELEMENTS = 2_000_000  # nondominated_mask: comparisons held in memory at once

T = TypeVar("T")


def _signs(directions: Sequence[str]) -> np.ndarray:
    """+1 for minimised, -1 for maximised objectives (multiplying gives minimisation)."""
    bad = [d for d in directions if d not in DIRECTIONS]
    if bad:
        raise ValueError(f"unknown direction(s) {bad}; expected one of {DIRECTIONS}")
    return np.array([sign(d) for d in directions])


def _as_loss(values: Any, directions: Sequence[str]) -> np.ndarray:
    """Values as a float (n, k) array in which every column is to be minimised."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = arr.reshape(-1, len(directions)) if arr.size else arr.reshape(0, len(directions))
    if arr.ndim != 2 or arr.shape[1] != len(directions):
        raise ValueError(f"values must have shape (n, {len(directions)}), got {arr.shape}")
    return arr * _signs(directions)


def nondominated_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the rows of `values` (n x k) that no other row dominates.

    Exact pairwise check, O(n^2 k) in memory-bounded blocks: tuning studies hold hundreds
    to a few thousand trials, where exactness matters more than asymptotics. Duplicates of a
    front point are all kept; rows with a non-finite value are never on the front.
    """
    loss = _as_loss(values, directions)
    n = loss.shape[0]
    finite = np.all(np.isfinite(loss), axis=1)
    mask = finite.copy()
    cand = loss[finite]
    if cand.shape[0] == 0:
        return mask
    idx = np.flatnonzero(finite)
    block = max(1, _BLOCK_ELEMENTS // max(1, cand.shape[0] * cand.shape[1]))
    for start in range(0, cand.shape[0], block):
        b = cand[start : start + block]  # rows tested for being dominated
        # le[i, j]: candidate j is no worse than b[i] in every objective; lt: better in one
        le = np.all(cand[None, :, :] <= b[:, None, :], axis=2)
        lt = np.any(cand[None, :, :] < b[:, None, :], axis=2)
        dominated = np.any(le & lt, axis=1)
        mask[idx[start : start + block]] = ~dominated
    assert mask.shape == (n,)
    return mask


def trial_values(trials: Sequence[Any], objectives: Sequence[Any]) -> np.ndarray:
    """The (n, k) matrix of objective values; a missing objective becomes nan."""
    names = [o.name for o in objectives]
    rows = [[_float(t.values.get(name)) for name in names] for t in trials]
    return np.array(rows, dtype=float).reshape(len(trials), len(names))


def _float(v: Any) -> float:
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def pareto_front(trials: Sequence[T], objectives: Sequence[Any]) -> list[T]:
    """The non-dominated trials, sorted by the first objective's value (ascending).

    Ties on the first objective are broken by the remaining objectives, then by trial
    number, so the order is deterministic. Trials missing an objective value, or with a
    non-finite one (failed, infeasible), are ignored.
    """
    trials = list(trials)
    if not trials:
        return []
    vals = trial_values(trials, objectives)
    mask = nondominated_mask(vals, [o.direction for o in objectives])
    keep = [i for i in np.flatnonzero(mask)]
    keep.sort(key=lambda i: (*vals[i].tolist(), trials[i].number))
    return [trials[i] for i in keep]


def default_reference(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Hypervolume reference point reproducible from the stored trials.

    Rule: for each objective, the worst value over the given rows (pass all finished
    feasible trials) moved further in the bad direction by 10% of that objective's range
    (max - min). A zero range uses 10% of |worst| instead, or 1.0 when worst is 0, so every
    point, the extremes included, contributes a non-zero volume. Non-finite rows are
    ignored. Returned in the caller's (untransformed) units.
    """
    loss = _as_loss(values, directions)
    loss = loss[np.all(np.isfinite(loss), axis=1)]
    if loss.shape[0] == 0:
        raise ValueError("default_reference needs at least one finite row")
    worst, best = loss.max(axis=0), loss.min(axis=0)
    span = worst - best
    span = np.where(span > 0, span, np.where(worst != 0, np.abs(worst), 1.0))
    return (worst + REFERENCE_MARGIN * span) * _signs(directions)


def hypervolume(values: np.ndarray, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Volume of objective space dominated by `values` and bounded by `reference`.

    Points that do not strictly dominate the reference contribute nothing and are dropped
    (optuna would reject them); non-finite rows too. Uses optuna's exact implementation,
    with a small exact fallback if the private optuna API moves.
    """
    loss = _as_loss(values, directions)
    ref = np.asarray(reference, dtype=float) * _signs(directions)
    if ref.shape != (loss.shape[1],) or not np.all(np.isfinite(ref)):
        raise ValueError(f"reference must be {loss.shape[1]} finite numbers, got {reference!r}")
    loss = loss[np.all(np.isfinite(loss), axis=1) & np.all(loss < ref, axis=1)]
    if loss.shape[0] == 0:
        return 0.0
    return _hv_loss(loss, ref)


def _hv_loss(loss: np.ndarray, ref: np.ndarray) -> float:
    """The one place that touches optuna's private hypervolume API."""
    try:
        from optuna._hypervolume import compute_hypervolume
    except ImportError:  # private module: renamed or removed in a future optuna
        return _hv_exact(loss, ref)
    return float(compute_hypervolume(loss, ref))


def _hv_exact(loss: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume by slicing along the last objective (fallback; fine for small fronts)."""
    loss = loss[nondominated_mask(loss, ["minimize"] * loss.shape[1])]
    loss = np.unique(loss, axis=0)
    if loss.shape[1] == 1:
        return float(ref[0] - loss[:, 0].min())
    if loss.shape[1] == 2:
        pts = loss[np.argsort(loss[:, 0])]
        ys = np.minimum.accumulate(pts[:, 1])
        xs = np.append(pts[1:, 0], ref[0])
        return float(np.sum((xs - pts[:, 0]) * (ref[1] - ys)))
    order = np.argsort(loss[:, -1])
    pts = loss[order]
    cuts = np.append(pts[1:, -1], ref[-1])
    total = 0.0
    for i in range(pts.shape[0]):
        depth = cuts[i] - pts[i, -1]
        if depth > 0:
            total += depth * _hv_exact(pts[: i + 1, :-1], ref[:-1])
    return total


def knee_index(front_values: np.ndarray, directions: Sequence[str]) -> int:
    """Index of the knee of a front: the best-balanced trade-off to show a reader.

    Rule: normalise each objective to [0, 1] over the front (0 = best; a constant column
    becomes 0), take the hyperplane through the extreme points (the best point of each
    objective) and return the point furthest from it on the ideal (origin) side. In 2-D
    this is the classic "max distance to the line joining the two ends". If the extremes do
    not span a hyperplane (e.g. one point is best in two objectives) the plane
    sum(x) = 1 is used. Ties, and fronts of one or two points, give the earliest index.
    """
    loss = _as_loss(front_values, directions)
    n, k = loss.shape
    if n == 0:
        raise ValueError("knee_index needs a non-empty front")
    if not np.all(np.isfinite(loss)):
        raise ValueError("knee_index needs finite values")
    if n <= 2:
        return 0
    lo, hi = loss.min(axis=0), loss.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    x = (loss - lo) / span
    extremes = x[np.argmin(x, axis=0)]  # row j: the point best in objective j
    normal = np.ones(k)
    if k > 1:
        try:
            cand = np.linalg.solve(extremes, np.ones(k))  # plane normal . p = 1
            if np.all(np.isfinite(cand)) and np.linalg.norm(cand) > 0:
                normal = cand
        except np.linalg.LinAlgError:
            pass
    dist = (1.0 - x @ normal) / np.linalg.norm(normal)
    return int(np.argmax(np.round(dist, 12)))

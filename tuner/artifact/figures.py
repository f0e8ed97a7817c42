"""The bundle's figures: the front with the baseline, hypervolume over measurements, knob
importance. Each is a headless matplotlib Figure saved as PDF (for the paper), PGF (fonts of
the paper, via pdflatex) and PNG (for a README or a slide)."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from tuner.pareto import hypervolume, pareto_front, trial_values

FORMATS = ("pdf", "pgf", "png")


def save(fig: Any, out: Path, stem: str) -> list[Path]:
    """Write stem.pdf/.pgf/.png; PGF only when pdflatex is installed (the backend measures
    text with it), so a machine without TeX still gets the PDF and PNG."""
    import matplotlib

    written = []
    for fmt in FORMATS:
        if fmt == "pgf" and shutil.which("pdflatex") is None:
            continue
        path = out / f"{stem}.{fmt}"
        with matplotlib.rc_context({"pgf.texsystem": "pdflatex", "pgf.rcfonts": False}), \
                _tex_text(fig, fmt == "pgf"):
            fig.savefig(path, dpi=150, bbox_inches="tight", format=fmt)
        written.append(path)
    return written


@contextmanager
def _tex_text(fig: Any, active: bool) -> Iterator[None]:
    """PGF text is typeset by TeX, and matplotlib escapes only %: knob and objective names
    (latency_ms) need their underscores escaped while the PGF is written."""
    if not active:
        yield
        return
    from matplotlib.text import Text

    texts = [(t, t.get_text()) for t in fig.findobj(Text) if "_" in t.get_text() and "$" not in t.get_text()]
    for t, s in texts:
        t.set_text(s.replace("_", r"\_"))
    try:
        yield
    finally:
        for t, s in texts:
            t.set_text(s)


def _figure(size: tuple[float, float] = (5.0, 3.4)) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def hypervolume_curve(records: Sequence[Any], objectives: Sequence[Any],
                      reference: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(measurements so far, hypervolume of the verified front so far), in trial order.

    A measurement is a trial that was built and run (verified or failed); pruned, duplicate
    and infeasible trials cost no measurement and do not advance the x axis."""
    directions = [o.direction for o in objectives]
    xs, ys, verified, n = [], [], [], 0
    for r in sorted(records, key=lambda r: r.number):
        if r.status not in ("complete", "failed"):
            continue
        n += 1
        if r.status == "complete" and r.values:
            verified.append(r)
        front = pareto_front(verified, objectives)
        hv = hypervolume(trial_values(front, objectives), directions, reference) if front else 0.0
        xs.append(n)
        ys.append(hv)
    return np.array(xs), np.array(ys, dtype=float)


def plot_hypervolume(xs: np.ndarray, ys: np.ndarray, study_name: str) -> Any:
    fig = _figure()
    ax = fig.add_subplot()
    if len(xs):
        ax.step(xs, ys, where="post", color="C0")
        ax.set_xlim(0, max(xs) + 1)
    ax.set_xlabel("measurements (trials built and run)")
    ax.set_ylabel("hypervolume of the verified front")
    ax.set_title(f"{study_name}: hypervolume over measurements", fontsize="medium")
    ax.grid(alpha=0.3)
    return fig


def plot_importance(imp: Mapping[str, Any], study_name: str, top: int = 12) -> Any:
    """Horizontal bars per objective: the `top` knobs by importance (largest first)."""
    by_obj = {k: v for k, v in imp.get("by_objective", {}).items() if v}
    n = max(1, len(by_obj))
    fig = _figure((4.2 * n, 0.35 * top + 1.2))
    axes = fig.subplots(1, n, squeeze=False)[0]
    if not by_obj:
        axes[0].axis("off")
        axes[0].text(0.5, 0.5, imp.get("note", "no importance computed"), ha="center", va="center",
                     transform=axes[0].transAxes)
    for ax, (name, scores) in zip(axes, by_obj.items()):
        items = sorted(scores.items(), key=lambda kv: -kv[1])[:top][::-1]
        ax.barh([k for k, _ in items], [v for _, v in items], color="C0")
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("importance")
        ax.tick_params(axis="y", labelsize="small")
    fig.suptitle(f"{study_name}: knob importance ({imp.get('evaluator')}, {imp.get('trials')} verified trials)",
                 fontsize="medium")
    return fig

"""Export a Pareto front as text (table, CSV, JSON, LaTeX) and as plots.

Pure formatting: callers pass finished trials and objectives; nothing here reads storage.
A trial is any object with ``number``, ``params`` (knob -> value), ``values`` (objective
name -> value) and optionally ``metrics`` (name -> value); an objective is any object with
``name``, ``direction`` and ``unit``.

JSON schema (``tune.pareto/1``), a list with one object per front trial, in front order::

    [{"trial": 12, "values": {"latency_ms": 1.9}, "params": {"opt_level": "-O3"},
      "metrics": {"instructions": 1.2e9}, "knee": true}, ...]

``knee`` marks the one trial `tuner.pareto.knee_index` picks; non-finite floats become null.

CSV columns: ``trial``, one column per objective (its name), ``knee``, then ``param.<knob>``
and ``metric.<name>`` for the union of knobs and metrics over the front (sorted), so a
knob named like an objective cannot collide.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tuner.pareto import knee_index, trial_values

FORMATS = ("table", "csv", "json", "latex")
JSON_SCHEMA = "tune.pareto/1"


def format_front(front: Sequence[Any], objectives: Sequence[Any], fmt: str) -> str:
    """Render a front in one of FORMATS; the same rows in every format, in front order."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return {"table": _table, "csv": _csv, "json": _json, "latex": _latex}[fmt](front, objectives)


def _knee(front: Sequence[Any], objectives: Sequence[Any]) -> int | None:
    vals = trial_values(front, objectives)
    if len(front) == 0 or not np.all(np.isfinite(vals)):
        return None
    return knee_index(vals, [o.direction for o in objectives])


def _keys(front: Sequence[Any], attr: str) -> list[str]:
    return sorted({str(k) for t in front for k in (getattr(t, attr, None) or {})})


def _plain(v: Any) -> Any:
    """numpy scalars to Python, non-finite floats to None (JSON has no nan)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _num(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


def _label(o: Any) -> str:
    unit = getattr(o, "unit", "") or ""
    return f"{o.name} [{unit}]" if unit else o.name


def _compact(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={_num(params[k])}" for k in sorted(params, key=str)) or "(defaults)"


def _json(front: Sequence[Any], objectives: Sequence[Any]) -> str:
    knee = _knee(front, objectives)
    rows = []
    for i, t in enumerate(front):
        rows.append({
            "trial": int(t.number),
            "values": {o.name: _plain(t.values.get(o.name)) for o in objectives},
            "params": {str(k): _plain(v) for k, v in t.params.items()},
            "metrics": {str(k): _plain(v) for k, v in (getattr(t, "metrics", None) or {}).items()},
            "knee": i == knee,
        })
    return json.dumps(rows, indent=2, allow_nan=False) + "\n"


def _csv(front: Sequence[Any], objectives: Sequence[Any]) -> str:
    knee = _knee(front, objectives)
    pkeys, mkeys = _keys(front, "params"), _keys(front, "metrics")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", *[o.name for o in objectives], "knee",
                *[f"param.{k}" for k in pkeys], *[f"metric.{k}" for k in mkeys]])
    for i, t in enumerate(front):
        metrics = getattr(t, "metrics", None) or {}
        w.writerow([t.number, *[_plain(t.values.get(o.name)) for o in objectives], i == knee,
                    *[_plain(t.params.get(k)) for k in pkeys],
                    *[_plain(metrics.get(k)) for k in mkeys]])
    return buf.getvalue()


def _table(front: Sequence[Any], objectives: Sequence[Any]) -> str:
    """Aligned columns for a terminal: numbers right-aligned, params as `k=v` pairs."""
    knee = _knee(front, objectives)
    head = ["trial", *[_label(o) for o in objectives], "params"]
    rows = [[f"{t.number}{'*' if i == knee else ' '}",
             *[_num(t.values.get(o.name)) for o in objectives], _compact(t.params)]
            for i, t in enumerate(front)]
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head) - 1)]

    def line(r: list[str]) -> str:
        cells = [r[c].rjust(widths[c]) for c in range(len(widths))]
        return "  ".join([*cells, r[-1]]).rstrip()

    out = [line(head), "  ".join("-" * w for w in widths) + "  " + "-" * 6]
    out += [line(r) for r in rows]
    if knee is not None:
        out.append("* knee of the front")
    return "\n".join(out) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX specials so knob names like `tile_h` or flags like `-O3` typeset."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def _latex(front: Sequence[Any], objectives: Sequence[Any]) -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}), ready for \\input in a paper."""
    knee = _knee(front, objectives)
    head = ["Trial", *[latex_escape(_label(o)) for o in objectives], "Configuration"]
    lines = [r"\begin{tabular}{r" + "r" * len(objectives) + "l}", r"\toprule",
             " & ".join(head) + r" \\", r"\midrule"]
    for i, t in enumerate(front):
        trial = f"{t.number}$^*$" if i == knee else str(t.number)
        cfg = r"\texttt{" + latex_escape(_compact(t.params)) + "}" if t.params else ""
        cells = [trial, *[latex_escape(_num(t.values.get(o.name))) for o in objectives], cfg]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_exports(out_dir: str | Path, all_trials_df: Any, front: Sequence[Any],
                  objectives: Sequence[Any], baseline: Any | None,
                  study_name: str) -> list[Path]:
    """Write pareto.{csv,json,tex,png,pdf} and trials.csv into `out_dir`; return the paths.

    `all_trials_df` (a pandas DataFrame) is written as given to trials.csv; the plots take
    its feasible points from it (see `feasible_points`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put(name: str, text: str) -> None:
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)

    put("pareto.csv", format_front(front, objectives, "csv"))
    put("pareto.json", format_front(front, objectives, "json"))
    all_trials_df.to_csv(out / "trials.csv", index=False)
    written.append(out / "trials.csv")
    put("pareto.tex", f"% Pareto front of study {study_name} (tune)\n"
        + format_front(front, objectives, "latex"))
    fig = plot_front(feasible_points(all_trials_df, objectives), front, objectives,
                     baseline, study_name)
    for name in ("pareto.png", "pareto.pdf"):
        fig.savefig(out / name, dpi=150, bbox_inches="tight")
        written.append(out / name)
    return written


def feasible_points(df: Any, objectives: Sequence[Any]) -> np.ndarray:
    """Objective values (n, k) of the feasible finished trials in a trials DataFrame.

    An objective's column is the first of `name`, `values_<name>`, `value_<name>`,
    `values.<name>` that exists. Rows whose `state` column (if any) is not COMPLETE, whose
    `feasible` column (if any) is false, or with a non-finite value are dropped. With a
    missing objective column the result is empty (the plot then shows only the front).
    """
    k = len(objectives)
    if df is None or len(df) == 0:
        return np.empty((0, k))
    cols = []
    for o in objectives:
        found = [c for c in (o.name, f"values_{o.name}", f"value_{o.name}", f"values.{o.name}")
                 if c in df.columns]
        if not found:
            return np.empty((0, k))
        cols.append(found[0])
    rows = df
    if "state" in df.columns:
        rows = rows[rows["state"].astype(str).str.upper().str.endswith("COMPLETE")]
    if "feasible" in df.columns:
        rows = rows[rows["feasible"].fillna(False).astype(bool)]
    import pandas as pd

    vals = rows[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    return vals[np.all(np.isfinite(vals), axis=1)]


def plot_front(points: np.ndarray, front: Sequence[Any], objectives: Sequence[Any],
               baseline: Any | None, study_name: str) -> Any:
    """A headless matplotlib Figure: feasible points grey, front highlighted, baseline marked.

    Two objectives: one axes with the front joined as a step line (the boundary of the
    region it dominates). Three or more: a scatter matrix of every objective pair. One: a histogram of
    the objective with the best value and the baseline as lines.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    k = len(objectives)
    fvals = trial_values(front, objectives)
    bvals = trial_values([baseline], objectives)[0] if baseline is not None else None
    knee = _knee(front, objectives)
    if k <= 2:
        fig = Figure(figsize=(6.4, 4.8), layout="constrained")
        ax = fig.add_subplot()
        if k == 1:
            _plot_single(ax, points, front, fvals, bvals, objectives[0])
        else:
            _plot_pair(ax, points, fvals, bvals, knee, objectives, 0, 1)
            ax.set_xlabel(_axis_label(objectives[0]))
            ax.set_ylabel(_axis_label(objectives[1]))
            ax.legend(loc="best", fontsize="small")
    else:  # scatter matrix: names on the diagonal, units on the outer axes only
        fig = Figure(figsize=(2.6 * k, 2.6 * k), layout="constrained")
        axes = fig.subplots(k, k, squeeze=False)
        for r in range(k):
            for c in range(k):
                ax = axes[r][c]
                if r == c:
                    ax.axis("off")
                    ax.text(0.5, 0.5, _axis_label(objectives[r]).replace(" (", "\n("),
                            ha="center", va="center", transform=ax.transAxes)
                    continue
                _plot_pair(ax, points, fvals, bvals, knee, objectives, c, r)
                if r == k - 1 or (r, c) == (k - 2, k - 1):
                    ax.set_xlabel(_label(objectives[c]))
                if c == 0 or (r, c) == (0, 1):
                    ax.set_ylabel(_label(objectives[r]))
        handles, labels = axes[1][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels),
                   fontsize="small")
    fig.suptitle(f"{study_name}: Pareto front ({len(front)} of {len(points)} feasible)")
    FigureCanvasAgg(fig)
    return fig


def _axis_label(o: Any) -> str:
    better = "lower" if o.direction == "minimize" else "higher"
    return f"{_label(o)} ({better} is better)"


def _plot_pair(ax: Any, points: np.ndarray, fvals: np.ndarray, bvals: np.ndarray | None,
               knee: int | None, objectives: Sequence[Any], i: int, j: int) -> None:
    """Objective i on x, j on y; labels and legend are the caller's."""
    if len(points):
        ax.scatter(points[:, i], points[:, j], s=12, color="0.7", label="feasible trials")
    ok = np.all(np.isfinite(fvals[:, [i, j]]), axis=1) if len(fvals) else np.zeros(0, bool)
    f = fvals[ok]
    if len(f):
        order = np.argsort(f[:, i], kind="stable")
        if len(objectives) == 2:  # step corners sit at (worse x, worse y) of neighbours
            where = "post" if objectives[i].direction == "minimize" else "pre"
            ax.step(f[order, i], f[order, j], where=where, color="C0", lw=1.2)
        ax.scatter(f[:, i], f[:, j], s=28, color="C0", zorder=3, label="Pareto front")
    if knee is not None and np.all(np.isfinite(fvals[knee, [i, j]])):
        ax.scatter([fvals[knee, i]], [fvals[knee, j]], s=110, facecolors="none",
                   edgecolors="C1", lw=1.5, zorder=4, label="knee")
    if bvals is not None and np.all(np.isfinite(bvals[[i, j]])):
        ax.scatter([bvals[i]], [bvals[j]], marker="*", s=160, color="C3", zorder=5,
                   label="baseline")
        ax.annotate("baseline", (bvals[i], bvals[j]), textcoords="offset points",
                    xytext=(6, 6), color="C3")


def _plot_single(ax: Any, points: np.ndarray, front: Sequence[Any], fvals: np.ndarray,
                 bvals: np.ndarray | None, o: Any) -> None:
    """One objective: histogram of the feasible values, best and baseline as vertical lines."""
    if len(points):
        ax.hist(points[:, 0], bins=min(30, max(5, len(points) // 3)), color="0.7",
                label="feasible trials")
    for x in fvals[:, 0]:
        ax.axvline(x, color="C0", lw=1.5, label="best")
    if bvals is not None and np.isfinite(bvals[0]):
        ax.axvline(bvals[0], color="C3", ls="--", label="baseline")
    ax.set_xlabel(_axis_label(o))
    ax.set_ylabel("trials")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), loc="best", fontsize="small")

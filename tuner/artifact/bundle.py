"""`tune export` as a paper bundle: the classic exports plus a table rounded to its CIs,
figures (front, hypervolume over measurements, knob importance) in PDF/PGF/PNG, CSV and JSON
with provenance, the artifact appendix (Markdown, LaTeX) and a preview.tex that typesets
them all (the tests compile it with pdflatex).

Bundle JSON schema (`tune.bundle/1`, front.json)::

    {"schema", "study", "objectives": [{name, direction, unit}], "reference_point", "hypervolume",
     "baseline": point|null, "points": [point], "runs": {run_id: run provenance},
     "importance": {...}, "hypervolume_curve": {"measurements": [...], "hypervolume": [...]}}
    point = {"trial", "values", "ci": {objective: [low, high]}, "params" (every knob),
             "shown": {knob: value} (the table's configuration), "reduced": bool,
             "knee": bool, "provenance": trial provenance (its "run" keys into "runs"),
             "environment": the machine's state during its launches (tuner.measure.environment),
             "measurement": how it was measured (launch count, interval, baseline checks, paired
             confirmation: counts instead of the raw launches, which stay in the journal)}
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Sequence

from tuner import provenance
from tuner import trials as T
from tuner.artifact import appendix, figures, table
from tuner.artifact.importance import importances
from tuner.export import _plain, plot_front, write_exports
from tuner.measure.summary import speedups
from tuner.report import speedups as value_ratios

SCHEMA = "tune.bundle/1"
PREVIEW = r"""\documentclass[10pt]{article}
\usepackage[margin=2cm]{geometry}
\usepackage{booktabs,array,graphicx,pgf}
\title{%(title)s}
\date{}
\begin{document}
\maketitle
\input{table.tex}
\begin{figure}[h]\centering
\includegraphics[width=0.7\linewidth]{front.pdf}
\caption{Pareto front with the baseline (PDF).}
\end{figure}
%(pgf)s
\begin{figure}[h]\centering
\includegraphics[width=0.6\linewidth]{hypervolume.pdf}\hfill
\caption{Hypervolume of the verified front over measurements.}
\end{figure}
\begin{figure}[h]\centering
\includegraphics[width=\linewidth]{importance.pdf}
\caption{Knob importance.}
\end{figure}
\clearpage
\appendix
\input{appendix.tex}
\end{document}
"""
PGF_FIGURE = r"""\begin{figure}[h]\centering
\resizebox{0.7\linewidth}{!}{\input{front.pgf}}
\caption{The same front as PGF (typeset with the paper's fonts).}
\end{figure}"""


def shown_configs(spec: Any, points: Sequence[Any], reductions: dict[int, dict[str, Any]],
                  order: Sequence[str] = ()) -> dict[int, tuple[dict[str, Any], bool]]:
    """The configuration each point shows: its reduced knob set when `tune reduce` stored one,
    else its knobs away from their defaults, most important knobs first (so a truncated cell
    keeps the knobs that matter)."""
    rank = {k: i for i, k in enumerate(order)}
    out = {}
    for p in points:
        if p.number in reductions:
            out[p.number] = (dict(reductions[p.number]), True)
            continue
        params = {k: v for k, v in p.params.items()
                  if k not in spec.space.knobs or v != spec.space.knobs[k].default}
        keys = sorted(params, key=lambda k: (rank.get(k, len(rank)), k))
        out[p.number] = ({k: params[k] for k in keys}, False)
    return out


def write_bundle(out_dir: str | Path, spec: Any, study: Any, report: Any, *, columns: str | None = None,
                 evaluator: str = "fanova", max_knobs: int = table.MAX_KNOBS) -> list[Path]:
    out = Path(out_dir)
    cols = table.columns(columns, spec.objectives)      # bad --columns fails before anything is written
    written = write_exports(out, T.dataframe(report.records, spec.objectives), report.front,
                            spec.objectives, report.baseline, spec.name)
    runs = provenance.load_runs(study)
    from tuner.artifact.reduce import load_reductions
    reductions = load_reductions(study)
    imp = importances(study, [r.number for r in report.verified], spec.objectives, evaluator)
    order = _importance_order(imp)
    points = list(report.front)
    everyone = points + ([report.baseline] if report.baseline is not None else [])
    configs = shown_configs(spec, everyone, reductions, order)
    rows = table.rows(points, spec.objectives, report.baseline, report.knee, configs, max_knobs)

    def put(name: str, text: str) -> None:
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)

    caption = (f"{table.latex_escape(spec.name)}: the Pareto front"
               + (" and the baseline" if report.baseline is not None else "")
               + r". Values rounded to their 95\% CI (value $\pm$ half-width); values without one are exact "
                 r"or deterministic. $^*$ knee of the front"
               + (r"; $^\dagger$ configuration reduced by \texttt{tune reduce}" if reductions else "")
               + "; knobs not shown are at their defaults (all in front.json).")
    tex = table.latex(cols, rows, caption, f"tab:{spec.name}")
    put("table.tex", f"% {spec.name}: generated by `tune export`\n" + tex)
    md = table.markdown(cols, rows)
    put("table.md", md)

    fig = plot_front(figures_points(report, spec), report.front, spec.objectives, report.baseline, spec.name)
    written += figures.save(fig, out, "front")
    xs, ys = figures.hypervolume_curve(report.records, spec.objectives, report.reference) \
        if report.reference else ([], [])
    written += figures.save(figures.plot_hypervolume(xs, ys, spec.name), out, "hypervolume")
    written += figures.save(figures.plot_importance(imp, spec.name), out, "importance")

    doc = {"schema": SCHEMA, "study": spec.name,
           "objectives": [{"name": o.name, "direction": o.direction, "unit": o.unit} for o in spec.objectives],
           "reference_point": report.reference, "hypervolume": report.hypervolume,
           "baseline": _point(report.baseline, spec, configs, report) if report.baseline is not None else None,
           "points": [_point(p, spec, configs, report) for p in points],
           "runs": runs, "importance": imp,
           "hypervolume_curve": {"measurements": [int(x) for x in xs], "hypervolume": [float(y) for y in ys]}}
    put("front.json", json.dumps(doc, indent=1, default=_plain, allow_nan=False) + "\n")
    put("front.csv", _csv(doc, spec))
    summary = provenance.summary(runs)
    ctx = appendix.context(spec, report, summary, headline_speedups(report, spec, summary["deterministic"]), md,
                           table.latex(cols, rows, floating=False))
    md_text, tex_text = appendix.render(ctx)
    put("appendix.md", md_text)
    put("appendix.tex", tex_text)
    pgf = PGF_FIGURE if (out / "front.pgf").exists() else ""
    put("preview.tex", PREVIEW % {"title": table.latex_escape(f"{spec.name}: results and artifact appendix"),
                                  "pgf": pgf})
    return written


def headline_speedups(report: Any, spec: Any, deterministic: bool) -> dict[str, Any]:
    """Best point against the baseline per objective (tuner.measure.summary): paired for a
    confirmed timed objective; on a deterministic target (a simulator, counted instructions)
    a timed objective's ratio is exact, so no confirmation is needed."""
    out = dict(speedups(report.verified, report.baseline, spec.objectives))
    if deterministic:
        exact = value_ratios(report, spec)
        for name, s in out.items():
            if s.get("kind") == "unconfirmed" and name in exact:
                out[name] = {"kind": "exact", "trial": s.get("trial"), "value": exact[name]}
    return out


def figures_points(report: Any, spec: Any) -> Any:
    from tuner.export import feasible_points
    return feasible_points(T.dataframe(report.records, spec.objectives), spec.objectives)


def _importance_order(imp: dict[str, Any]) -> list[str]:
    total: dict[str, float] = {}
    for scores in imp.get("by_objective", {}).values():
        for k, v in scores.items():
            total[k] = total.get(k, 0.0) + v
    return sorted(total, key=lambda k: -total[k])


def _point(p: Any, spec: Any, configs: dict, report: Any) -> dict[str, Any]:
    shown, reduced = configs.get(p.number, ({}, False))
    ci = {o.name: list(c) for o in spec.objectives if (c := table.ci_of(p, o)) is not None}
    return {"trial": p.number, "values": {k: _clean(v) for k, v in p.values.items()}, "ci": ci,
            "params": {str(k): _clean(v) for k, v in p.params.items()},
            "shown": {str(k): _clean(v) for k, v in shown.items()}, "reduced": reduced,
            "knee": report.knee is not None and p.number == report.knee.number,
            "provenance": provenance.of(p), "environment": _plain_dict(getattr(p, "environment", None)),
            "measurement": measurement_summary(getattr(p, "measurement", None))}


def measurement_summary(measurement: Any) -> dict[str, Any] | None:
    """A trial's measurement record without its raw samples (those stay in the journal): how
    its launches stopped, their interval, its baseline checks, its paired confirmation."""
    if not isinstance(measurement, Mapping):
        return None
    out: dict[str, Any] = {}
    for key, value in measurement.items():
        if key == "launches" and isinstance(value, list):
            out["launches"] = len(value)
            out["contended_launches"] = sum(bool(x.get("contended")) for x in value if isinstance(x, dict))
        elif isinstance(value, Mapping):
            out[key] = {k: (len(v) if k in ("a", "b") and isinstance(v, list) else v) for k, v in value.items()}
        else:
            out[key] = value
    return _plain_dict(out)


def _plain_dict(d: Any) -> dict[str, Any] | None:
    return json.loads(json.dumps(dict(d), default=_plain)) if isinstance(d, Mapping) else None


def _clean(v: Any) -> Any:
    return _plain(v)


def _csv(doc: dict[str, Any], spec: Any) -> str:
    """One row per point: values, CIs, the configuration shown, and its provenance in columns."""
    names = [o.name for o in spec.objectives]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "baseline", *names, *(f"{n}_ci_low" for n in names), *(f"{n}_ci_high" for n in names),
                "configuration", "reduced", "run", "build_key", "build_command", "compiler", "cpu_model",
                "cores", "os", "kernel", "python", "tune_version", "tune_commit", "launches", "run_cpus",
                "load1", "other_frac", "contended"])
    pts = ([doc["baseline"]] if doc["baseline"] else []) + doc["points"]
    for i, p in enumerate(pts):
        prov = p.get("provenance") or {}
        run = doc["runs"].get(str(prov.get("run")), {})
        m = run.get("machine", {})
        build = prov.get("build") or []
        env = p.get("environment") or {}
        w.writerow([p["trial"], bool(doc["baseline"]) and i == 0, *(p["values"].get(n) for n in names),
                    *((p["ci"].get(n) or [None, None])[0] for n in names),
                    *((p["ci"].get(n) or [None, None])[1] for n in names),
                    " ".join(f"{k}={v}" for k, v in p["shown"].items()), p["reduced"], prov.get("run"),
                    prov.get("build_key"), " && ".join(" ".join(c) for c in build),
                    (prov.get("compiler") or run.get("compiler") or {}).get("version"), m.get("cpu_model"),
                    m.get("cores"), m.get("os_release"), m.get("kernel"), run.get("python", {}).get("version"),
                    run.get("tune", {}).get("version"), run.get("tune", {}).get("git_commit"),
                    (p.get("measurement") or {}).get("launches"), env.get("run_cpus"),
                    (env.get("load1") or [None])[-1], env.get("other_frac"), env.get("contended")])
    return buf.getvalue()

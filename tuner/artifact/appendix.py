"""The artifact appendix (ACM structure: abstract, check-list, description, installation,
experiment workflow, evaluation and expected results, customization, notes), in Markdown and
LaTeX, filled in from the study, its campaign and the runs' provenance.

Everything it states comes from the study (its files and journal); nothing is typed in by
hand, so the appendix of a study rerun elsewhere describes that rerun. The templates sit
beside this module (`templates/appendix.{md,tex}.j2`, Jinja2).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Mapping, Sequence

import jinja2

from tuner.export import latex_escape

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _gib(n: Any) -> str:
    return f"{n / 2**30:.0f} GiB" if isinstance(n, (int, float)) and n else "unknown memory"


def context(spec: Any, report: Any, runs_summary: Mapping[str, Any], speedups: Mapping[str, Any],
            table_md: str, table_tex: str, explore_argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The template variables. `runs_summary` is `tuner.provenance.summary(runs)`; `speedups`
    is tuner.measure.summary.speedups' (paired for confirmed timed objectives, exact ratios
    otherwise; plain floats are taken as exact ratios)."""
    recs = report.records
    measured = [r for r in recs if r.status in ("complete", "failed")]
    machines = runs_summary.get("machines") or []
    search = (runs_summary.get("search") or [{}])[-1] or {}
    hw = "; ".join(f"{m.get('cpu_model') or 'unknown CPU'}, {m.get('cores')} cores, {_gib(m.get('memory_bytes'))}"
                   for m in machines) or "not recorded (a campaign before provenance was recorded)"
    os_text = "; ".join(f"{m.get('os_release') or m.get('kernel')} (Linux {m.get('kernel')}, {m.get('arch')})"
                        for m in machines) or "not recorded"
    libs = (runs_summary.get("libraries") or [{}])[-1] or {}
    tune = (runs_summary.get("tune") or [{}])[-1] or {}
    compilers = runs_summary.get("compilers") or []
    run_s = [r.timing.get("total_s", 0.0) for r in measured if r.timing.get("total_s")]
    per = statistics.median(run_s) if run_s else None
    n_front = len(report.front) + (1 if report.baseline is not None else 0)
    target_name = spec.target
    deterministic = _deterministic(runs_summary)
    trials_opt = f" --trials {len([r for r in recs if r.status not in ('running', 'waiting', 'interrupted')])}"
    seed = search.get("seed")
    sampler = search.get("sampler")
    explore = f"tune explore {spec.name}{trials_opt}" + (f" --seed {seed}" if seed is not None else "") \
        + (f" --sampler {sampler}" if sampler else "") + " --results rerun"
    notes = [
        "Every number in the table is the campaign's own measurement; `tune reproduce` re-measures it "
        "with paired launches against the baseline, which is what to compare.",
        f"The campaign ran in {runs_summary.get('runs', 0)} run(s); the provenance of every run and every "
        "point (machine, compiler, build commands, versions, seeds) is in front.json.",
    ]
    if tune.get("git_dirty"):
        notes.append("The campaign ran from a tune checkout with uncommitted changes.")
    if not machines:
        notes.append("This campaign predates provenance recording: machine and versions are not known.")
    return {
        "study": {"name": spec.name, "description": spec.description.rstrip("."), "knobs": len(spec.space),
                  "target": target_name},
        "objectives": list(spec.objectives),
        "objective_list": ", ".join(o.name for o in spec.objectives),
        "counts": {"finished": sum(r.finished for r in recs),
                   "measured": len(measured), "verified": len(report.verified), "front": len(report.front)},
        "speedups": headline(speedups, notes),
        "baseline_text": " ".join(f"{k}={v}" for k, v in spec.baseline.items()) or "defaults",
        "search": search,
        "program_text": ", ".join(p.name for p in spec.program.sources) + (
            f" and the template {spec.program.template.name}" if spec.program.template else "")
            or (spec.program.module or "a Python module"),
        "compilers_text": "; ".join(compilers) or "not recorded",
        "os_text": os_text,
        "python_text": ", ".join(runs_summary.get("python") or []) or "3",
        "libraries_text": ", ".join(f"{k} {v}" for k, v in libs.items() if v) or "see pyproject.toml",
        "hardware_text": hw,
        "execution_text": (f"{len(measured)} builds and runs, median {per:.1f} s each" if per else "see the journal")
            + ("; runs are deterministic (a simulator reports its own figures)" if deterministic else
               "; wall-clock timing by the program's harness across launches"),
        "time_text": (f"about {max(1, round(per * n_front * 6 / 60))} min to reproduce the front "
                      f"({n_front} points with paired launches); about {max(1, round(per * len(recs) / 60))} min "
                      f"to rerun the campaign" if per else "minutes"),
        "tune_text": f"{tune.get('version', '')}" + (f" (commit {tune['git_commit'][:12]})" if tune.get("git_commit") else ""),
        "archive": f"{spec.name}.tune.tar.gz",
        "hardware_dependency": (f"The campaign ran on {hw}. " if machines else "")
            + ("The results are simulated, so any x86-64 or aarch64 Linux machine reproduces them exactly."
               if deterministic else
               "Timings depend on the machine: on another machine `tune reproduce` compares each point's "
               "speedup over the baseline rather than its absolute time."),
        "software_dependency": f"Linux, Python 3.10 or newer, {' and '.join(compilers) or 'a C compiler'}; "
            "the Python packages come with `pip install` (optuna, numpy, scipy, scikit-learn, pandas, matplotlib).",
        "commands": {"reproduce": f"tune reproduce {spec.name} --front",
                     "explore": explore, "export": f"tune export {spec.name} --results rerun --out rerun/paper"},
        "table_md": table_md, "table_tex": table_tex,
        "value_rule": "values rounded to the precision of their 95% confidence interval, shown as value ± half-width; "
                      "values without an interval are exact or deterministic, to four significant digits",
        "determinism_text": ("On this target the measurements are deterministic, so reproduced means equal."
                             if deterministic else
                             "On the same machine, a point reproduced when the new 95% CI of its ratio to the "
                             "recorded value contains 1 or the difference is within the tolerance."),
        "compatible_text": ", ".join(spec.compatible_targets) or f"the study names {target_name} only",
        "notes": notes,
    }


def headline(speedups: Mapping[str, Any], notes: list[str]) -> list[dict[str, str]]:
    """The abstract's speed-ups: a timed objective only with its paired interval; one whose
    best point was never confirmed against the baseline gets a note instead of a figure."""
    out = []
    for name, s in speedups.items():
        if isinstance(s, (int, float)):
            out.append({"objective": name, "value": f"{s:.2f}", "note": ""})
        elif s.get("kind") == "paired":
            out.append({"objective": name, "value": f"{s['value']:.2f}",
                        "note": f"95% CI [{s['low']:.2f}, {s['high']:.2f}], {s.get('pairs')} paired ABBA launches "
                                f"against the baseline, trial {s.get('trial')}"})
        elif s.get("kind") == "exact":
            out.append({"objective": name, "value": f"{s['value']:.2f}", "note": f"exact, trial {s.get('trial')}"})
        elif s.get("kind") == "unconfirmed":
            notes.append(f"The best {name} (trial {s.get('trial')}) was not confirmed against the baseline during "
                         "the campaign, so no speed-up is stated for it; `tune reproduce` measures it in pairs.")
    return out


def _deterministic(runs_summary: Mapping[str, Any]) -> bool:
    return False if not runs_summary.get("runs") else bool(runs_summary.get("deterministic"))


def tex(text: Any) -> str:
    """Plain text for LaTeX: specials escaped, and `code` (Markdown's backticks, which the
    shared texts use) set in \\texttt rather than printed as quotes."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:                   # an unpaired backtick: nothing is code
        return latex_escape(str(text))
    return "".join(latex_escape(x) if i % 2 == 0 else r"\texttt{" + latex_escape(x).replace("--", "-{}-") + "}"
                   for i, x in enumerate(parts))


def render(ctx: Mapping[str, Any]) -> tuple[str, str]:
    """(Markdown, LaTeX) appendix text."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    env.filters["tex"] = tex
    return env.get_template("appendix.md.j2").render(**ctx), env.get_template("appendix.tex.j2").render(**ctx)

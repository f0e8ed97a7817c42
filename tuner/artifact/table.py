"""The paper's table: values rounded to the precision of their confidence interval.

A measured value is printed with as many digits as its 95% CI supports: the CI's half-width
is rounded up to one significant digit (two when that digit is 1), and the value to the same
decimal place, so 72.5954 with CI [71.2, 74.1] prints as 72.6 +- 1.5. A value without a CI
is either exact (an integer such as a code size) or deterministic (a simulator's figure):
integers print whole, other numbers to four significant digits, and the caption says so.

A point the campaign confirmed against the baseline (tuner.measure.confirm: paired ABBA
launches in fresh processes) has its timed values from those launches, so its CI is theirs
too (the interval of the candidate's launch figures), and its speed-up is the paired one with
its 95% interval, not a ratio of two values measured minutes apart.

Columns are named: `trial`, an objective's name, `speedup.<objective>` (against the
baseline, >1 is better), `metric.<name>`, `config` (the configuration as its reduced knob
set when `tune reduce` stored one, else the knobs away from their defaults, truncated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from tuner.errors import BadInput
from tuner.export import latex_escape

MAX_KNOBS = 4          # knobs shown in a configuration cell; the rest is "+N more"
DEFAULT_COLUMNS = ("trial", "objectives", "config")


MIN_PAIRS = 6          # tuner.measure's PairPolicy.min_pairs: fewer clean pairs count all pairs


def timed(objective: Any) -> int:
    """+1 (a time), -1 (a rate) or 0: how the objective follows the run time (tuner.measure.front)."""
    from tuner.measure.front import timed as how
    return how(objective)


def confirmation(record: Any) -> Mapping[str, Any] | None:
    """The record's confirmation against the baseline, when it was confirmed (not raced out)."""
    from tuner.measure.summary import confirmation as of
    return of(record)


def ci_of(record: Any, objective: Any) -> tuple[float, float] | None:
    """The 95% CI (low, high) of a record's objective value, when its measurement has one.

    A confirmed point's timed objective: the interval of the candidate's confirmation launches
    (its value is their median). Else the measurement's own CI (`measurement["ci"][name]`),
    else the harness's `<metric>_ci_low/_ci_high` metrics (latency: `latency_ci_low_ms`/
    `latency_ci_high_ms`, the interval across the screening launches)."""
    attrs = getattr(record, "attrs", None) or {}
    meas = getattr(record, "measurement", None) or attrs.get("measurement") or {}
    confirmed = _confirmed_ci(record, objective)
    if confirmed is not None:
        return confirmed
    ci = (meas.get("ci") or {}).get(objective.name) if isinstance(meas, Mapping) else None
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        return float(ci[0]), float(ci[1])
    metrics = getattr(record, "metrics", None) or {}
    m = objective.metric if hasattr(objective, "metric") else objective.name
    for lo_key, hi_key in ((f"{m}_ci_low", f"{m}_ci_high"),
                           (m.replace("_ms", "_ci_low_ms"), m.replace("_ms", "_ci_high_ms"))):
        if lo_key in metrics and hi_key in metrics and lo_key != hi_key:
            return float(metrics[lo_key]), float(metrics[hi_key])
    return None


def _confirmed_ci(record: Any, objective: Any) -> tuple[float, float] | None:
    from tuner.stats import median_interval

    conf, sign = confirmation(record), timed(objective)
    value = (getattr(record, "values", None) or {}).get(objective.name)
    if conf is None or not sign or value is None or not conf.get("candidate_ms"):
        return None
    launches = [x for x in conf.get("a") or () if isinstance(x, Mapping) and isinstance(x.get("value"), (int, float))]
    clean = [x for x in launches if not x.get("contended")]
    iv = median_interval([x["value"] for x in (clean if len(clean) >= MIN_PAIRS else launches)])
    if iv.n < 2 or not iv.high > iv.low:
        return None
    lo, hi = (value * (b / conf["candidate_ms"]) ** sign for b in (iv.low, iv.high))
    return (min(lo, hi), max(lo, hi))


def decimals_for(half_width: float) -> int:
    """Decimal places (negative: tens, hundreds...) that a CI of this half-width supports."""
    exp = math.floor(math.log10(half_width))
    lead = int(half_width / 10 ** exp + 1e-9)
    return -(exp - 1) if lead == 1 else -exp


def fmt_fixed(x: float, decimals: int) -> str:
    if decimals >= 0:
        return f"{x:.{decimals}f}"
    q = 10 ** (-decimals)
    return f"{round(x / q) * q:.0f}"


def fmt_value(value: float | None, ci: tuple[float, float] | None = None) -> tuple[str, str]:
    """(value, +- half-width) as text; the second is empty without a CI."""
    if value is None or not math.isfinite(value):
        return "--", ""
    if ci is not None and all(math.isfinite(c) for c in ci) and ci[1] > ci[0]:
        half = (ci[1] - ci[0]) / 2
        d = decimals_for(half)
        up = math.ceil(half * 10.0 ** d - 1e-6) / 10.0 ** d     # an uncertainty rounds up, never down
        return fmt_fixed(value, d), fmt_fixed(up, d)
    if float(value).is_integer():
        return f"{int(value)}", ""
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.4e}", ""


def knobs_cell(params: Mapping[str, Any], max_knobs: int = MAX_KNOBS) -> tuple[str, int]:
    """`k=v` pairs of a (reduced) configuration, at most `max_knobs`; returns (text, hidden)."""
    items = [f"{k}={v}" for k, v in params.items()]
    if not items:
        return "(defaults)", 0
    shown = items[:max_knobs]
    return ", ".join(shown), len(items) - len(shown)


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    unit: str = ""
    align: str = "r"


def columns(spec_columns: str | None, objectives: Sequence[Any]) -> list[Column]:
    """The columns `--columns` names (comma-separated), checked; `objectives` expands to all."""
    names = [c.strip() for c in (spec_columns.split(",") if spec_columns else DEFAULT_COLUMNS) if c.strip()]
    by_name = {o.name: o for o in objectives}
    out: list[Column] = []
    for name in names:
        if name == "objectives":
            out += [Column(o.name, o.name, o.unit) for o in objectives]
        elif name == "trial":
            out.append(Column("trial", "Trial"))
        elif name == "config":
            out.append(Column("config", "Configuration", align="l"))
        elif name in by_name:
            out.append(Column(name, name, by_name[name].unit))
        elif name.startswith("speedup.") and name[8:] in by_name:
            out.append(Column(name, f"{name[8:]} speedup", "x"))
        elif name.startswith("metric.") and len(name) > 7:
            out.append(Column(name, name[7:]))
        else:
            known = ["trial", "objectives", "config", *by_name, *(f"speedup.{o}" for o in by_name), "metric.NAME"]
            raise BadInput(f"unknown column '{name}' (choose from {', '.join(known)})", None, "--columns")
    return out


@dataclass(frozen=True)
class Row:
    label: str                      # trial number, "12*" for the knee, "0 (baseline)"
    cells: dict[str, tuple[str, str]]
    config: str
    hidden: int                     # knobs not shown in the config cell
    reduced: bool                   # config is a reduced set from `tune reduce`


def rows(points: Sequence[Any], objectives: Sequence[Any], baseline: Any | None, knee: Any | None,
         configs: Mapping[int, tuple[dict[str, Any], bool]], max_knobs: int = MAX_KNOBS) -> list[Row]:
    """One Row per point (the baseline first when given), every cell already rounded."""
    out = []
    ordered = ([baseline] if baseline is not None else []) + [p for p in points if baseline is None
                                                              or p.number != baseline.number]
    for p in ordered:
        cells: dict[str, tuple[str, str]] = {}
        for o in objectives:
            cells[o.name] = fmt_value(p.values.get(o.name), ci_of(p, o))
            if baseline is not None:
                cells[f"speedup.{o.name}"] = _speedup(p, baseline, o)
        for k, v in (getattr(p, "metrics", None) or {}).items():
            cells[f"metric.{k}"] = fmt_value(float(v)) if isinstance(v, (int, float)) else (str(v), "")
        params, reduced = configs.get(p.number, ({}, False))
        # a reduced set is the explanation: shown whole; a raw configuration is truncated
        text, hidden = knobs_cell(params, len(params) if reduced else max_knobs)
        label = str(p.number)
        if baseline is not None and p.number == baseline.number:
            label += " (baseline)"
        elif knee is not None and p.number == knee.number:
            label += "*"
        out.append(Row(label, cells, text, hidden, reduced))
    return out


def _speedup(p: Any, base: Any, o: Any) -> tuple[str, str]:
    """Against the baseline, >1 better: a confirmed point's timed objective is its paired ABBA
    speed-up with the 95% interval; anything else the ratio of the two values."""
    a, b = p.values.get(o.name), base.values.get(o.name)
    if a is None or b is None or a <= 0 or b <= 0:
        return "--", ""
    conf = confirmation(p) if p.number != base.number and timed(o) else None
    if conf is not None and isinstance(conf.get("speedup"), Mapping):
        sp = conf["speedup"]
        k = _exact_part(o, p, base)
        return fmt_value(sp["value"] * k, (sp["low"] * k, sp["high"] * k))
    return f"{(b / a if o.direction == 'minimize' else a / b):.2f}", ""


def _exact_part(o: Any, p: Any, base: Any) -> float:
    """The paired speed-up is of the kernel's time; an objective derived from it (a per-batch
    latency) may differ by a factor timing does not change (tuner.measure.summary)."""
    try:
        obj = (base.values[o.name] / p.values[o.name]) ** o.sign
        return obj / (base.metrics["latency_ms"] / p.metrics["latency_ms"])
    except (KeyError, ZeroDivisionError, TypeError, AttributeError):
        return 1.0


def _header(c: Column) -> str:
    return f"{c.header} [{c.unit}]" if c.unit and c.unit != "x" else (c.header + (" (x)" if c.unit == "x" else ""))


def latex(cols: Sequence[Column], table_rows: Sequence[Row], caption: str = "", label: str = "",
          floating: bool = True) -> str:
    """A booktabs table (packages: booktabs, array) ready for \\input; +- as math. Without
    `floating`, the bare tabular (for an appendix that must stand on its own)."""
    spec = "".join(r">{\raggedright\arraybackslash}p{0.42\linewidth}" if c.key == "config" else c.align
                   for c in cols)
    head = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{caption}}}", rf"\label{{{label}}}"]
    lines = [*(head if floating else []),
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(_header(c)) for c in cols) + r" \\", r"\midrule"]
    for r in table_rows:
        cells = []
        for c in cols:
            if c.key == "trial":
                cells.append(latex_escape(r.label).replace("*", "$^*$"))
            elif c.key == "config":
                more = rf" \emph{{+{r.hidden} more}}" if r.hidden else ""
                mark = r"$^\dagger$" if r.reduced else ""
                cells.append(r"\texttt{" + latex_escape(r.config) + "}" + more + mark)
            else:
                v, pm = r.cells.get(c.key, ("--", ""))
                cells.append(f"${latex_escape(v)} \\pm {latex_escape(pm)}$" if pm else latex_escape(v))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", *([r"\end{table}"] if floating else [])]
    return "\n".join(lines) + "\n"


def markdown(cols: Sequence[Column], table_rows: Sequence[Row]) -> str:
    head = "| " + " | ".join(_header(c) for c in cols) + " |"
    rule = "|" + "|".join("---" if c.align == "l" else "---:" for c in cols) + "|"
    lines = [head, rule]
    for r in table_rows:
        cells = []
        for c in cols:
            if c.key == "trial":
                cells.append(r.label)
            elif c.key == "config":
                cells.append(f"`{r.config}`" + (f" +{r.hidden} more" if r.hidden else "") + (" (reduced)" if r.reduced else ""))
            else:
                v, pm = r.cells.get(c.key, ("--", ""))
                cells.append(f"{v} ± {pm}" if pm else v)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

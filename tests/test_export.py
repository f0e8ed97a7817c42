"""Export layer: every format parses and carries the front; write_exports writes every file."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from tuner.export import FORMATS, feasible_points, format_front, latex_escape, write_exports
from tuner.pareto import pareto_front


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
    metrics: dict = field(default_factory=dict)


OBJS2 = [Obj("latency_ms", "minimize", "ms"), Obj("binary_bytes", "minimize", "B")]


def make_trials(n: int = 30, k: int = 2, seed: int = 0) -> list[Trial]:
    rng = np.random.default_rng(seed)
    names = ["latency_ms", "binary_bytes", "energy_mj"][:k]
    out = []
    for i in range(n):
        vals = {name: float(rng.uniform(1, 10)) for name in names}
        params = {"opt_level": str(rng.choice(["-O2", "-O3"])), "tile_h": int(rng.choice([1, 2, 4])),
                  "unroll_loops": "on" if i % 2 else "off"}
        out.append(Trial(i, vals, params, {"instructions": float(1e9 + i)}))
    return out


def trials_df(trials: list[Trial], objectives: list[Obj]) -> pd.DataFrame:
    rows = [{"number": t.number, "state": "COMPLETE",
             **{f"values_{o.name}": t.values[o.name] for o in objectives},
             **{f"params_{k}": v for k, v in t.params.items()}} for t in trials]
    rows.append({"number": len(trials), "state": "FAIL"})
    return pd.DataFrame(rows)


@pytest.fixture
def front() -> list[Trial]:
    return pareto_front(make_trials(), OBJS2)


def test_unknown_format_is_rejected(front: list[Trial]) -> None:
    assert FORMATS == ("table", "csv", "json", "latex")
    with pytest.raises(ValueError, match="table, csv, json, latex"):
        format_front(front, OBJS2, "xml")


def test_json_schema(front: list[Trial]) -> None:
    rows = json.loads(format_front(front, OBJS2, "json"))
    assert [r["trial"] for r in rows] == [t.number for t in front]
    for r, t in zip(rows, front):
        assert set(r) == {"trial", "values", "params", "metrics", "knee"}
        assert r["values"] == t.values and r["params"] == t.params and r["metrics"] == t.metrics
    assert sum(r["knee"] for r in rows) == 1


def test_json_handles_numpy_and_nan() -> None:
    t = Trial(3, {"latency_ms": np.float64(1.5), "binary_bytes": np.int64(100)},
              {"tile_h": np.int64(4)}, {"ipc": float("nan")})
    (row,) = json.loads(format_front([t], OBJS2, "json"))
    assert row == {"trial": 3, "values": {"latency_ms": 1.5, "binary_bytes": 100},
                   "params": {"tile_h": 4}, "metrics": {"ipc": None}, "knee": True}


def test_csv_round_trips_through_pandas(front: list[Trial]) -> None:
    df = pd.read_csv(io.StringIO(format_front(front, OBJS2, "csv")))
    assert list(df.columns) == ["trial", "latency_ms", "binary_bytes", "knee",
                                "param.opt_level", "param.tile_h", "param.unroll_loops",
                                "metric.instructions"]
    assert df["trial"].tolist() == [t.number for t in front]
    np.testing.assert_allclose(df["latency_ms"], [t.values["latency_ms"] for t in front])
    assert df["param.opt_level"].tolist() == [t.params["opt_level"] for t in front]
    assert df["knee"].sum() == 1


def test_table_is_aligned_and_compact(front: list[Trial]) -> None:
    lines = format_front(front, OBJS2, "table").splitlines()
    assert lines[0].split()[:3] == ["trial", "latency_ms", "[ms]"]
    assert len(lines) == len(front) + 3  # header, rule, rows, knee footnote
    params_col = lines[0].index("params")
    for line, t in zip(lines[2:], front):
        assert line[params_col:].startswith("opt_level=")
        assert f"tile_h={t.params['tile_h']}" in line
    assert sum(line.split()[0].endswith("*") for line in lines[2:-1]) == 1


def test_latex_booktabs_and_escaping(front: list[Trial]) -> None:
    tex = format_front(front, OBJS2, "latex")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\end{tabular}"):
        assert tex.count(rule) == 1
    assert r"latency\_ms [ms]" in tex and r"unroll\_loops=" in tex
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0]
    assert body.count(r"\\") == len(front)
    # no unescaped underscore anywhere
    assert "_" not in tex.replace(r"\_", "")


def test_latex_escape_specials() -> None:
    assert latex_escape("a_b&c%d$e#f{g}h~i^j\\k") == (
        r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k")


def test_empty_front_formats() -> None:
    assert json.loads(format_front([], OBJS2, "json")) == []
    assert list(csv.reader(io.StringIO(format_front([], OBJS2, "csv"))))[0][0] == "trial"
    assert r"\bottomrule" in format_front([], OBJS2, "latex")
    assert format_front([], OBJS2, "table").startswith("trial")


def test_feasible_points_reads_optuna_style_columns() -> None:
    trials = make_trials(10)
    df = trials_df(trials, OBJS2)
    pts = feasible_points(df, OBJS2)
    assert pts.shape == (10, 2)  # the FAIL row is dropped
    df2 = pd.DataFrame({"latency_ms": [1.0, np.nan], "binary_bytes": [2.0, 3.0],
                        "feasible": [True, True]})
    assert feasible_points(df2, OBJS2).shape == (1, 2)
    assert feasible_points(df2, [Obj("energy_mj", "minimize")]).shape == (0, 1)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_write_exports_writes_every_file(tmp_path, k: int) -> None:
    objs = [Obj("latency_ms", "minimize", "ms"), Obj("binary_bytes", "maximize", "B"),
            Obj("energy_mj", "minimize", "mJ")][:k]
    trials = make_trials(40, k=k, seed=k)
    front = pareto_front(trials, objs)
    df = trials_df(trials, objs)
    paths = write_exports(tmp_path / "out", df, front, objs, trials[0], "conv2d_gcc")
    names = {p.name for p in paths}
    assert names == {"pareto.csv", "pareto.json", "trials.csv", "pareto.tex",
                     "pareto.png", "pareto.pdf"}
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    d = tmp_path / "out"
    assert len(pd.read_csv(d / "pareto.csv")) == len(front)
    assert len(json.loads((d / "pareto.json").read_text())) == len(front)
    pd.testing.assert_frame_equal(pd.read_csv(d / "trials.csv"), df, check_dtype=False)
    tex = (d / "pareto.tex").read_text()
    assert "conv2d_gcc" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert (d / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (d / "pareto.pdf").read_bytes()[:5] == b"%PDF-"


def test_write_exports_without_baseline_or_trial_columns(tmp_path) -> None:
    trials = make_trials(12)
    front = pareto_front(trials, OBJS2)
    paths = write_exports(tmp_path, pd.DataFrame({"number": range(12)}), front, OBJS2, None, "s")
    assert len(paths) == 6

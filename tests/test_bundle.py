"""`tune export` as a paper bundle: rounding to the CI, columns, figures, provenance in CSV/JSON,
an artifact appendix, and LaTeX that compiles (pdflatex) and renders (pdftoppm)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from dataclasses import dataclass, field

import pytest

from conftest import needs_gcc, one_line_error
from knob_tables import int_knob, opt_knob, ordinal_knob
from tuner.artifact import table
from tuner.errors import BadInput

KNOBS = int_knob("a") + ordinal_knob("b", [1, 2, 4, 8], default=1) + opt_knob()


@dataclass
class O:
    name: str
    direction: str = "minimize"
    unit: str = "ms"
    metric: str = ""

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "minimize" else -1.0


@dataclass
class P:
    number: int
    values: dict
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    measurement: dict = field(default_factory=dict)


@pytest.mark.parametrize("value, ci, want", [
    (72.5954, (71.2, 74.1), ("72.6", "1.5")),       # half-width 1.45: two digits (leading 1)
    (72.5954, (70.0, 75.0), ("73", "3")),
    (0.309091, (0.30, 0.32), ("0.309", "0.010")),
    (1234.5, (1100.0, 1400.0), ("1230", "150")),
    (72.5954, None, ("72.6", "")),                   # no CI: four significant digits
    (0.309091, None, ("0.3091", "")),
    (4959.0, None, ("4959", "")),                    # exact integers stay whole
    (float("nan"), None, ("--", "")),
])
def test_values_are_rounded_to_the_precision_of_their_ci(value, ci, want):
    assert table.fmt_value(value, ci) == want


def test_ci_comes_from_the_measurement_or_the_harness_metrics():
    lat = O("latency_ms", metric="latency_ms")
    assert table.ci_of(P(1, {}, metrics={"latency_ci_low_ms": 1.0, "latency_ci_high_ms": 2.0}), lat) == (1.0, 2.0)
    assert table.ci_of(P(1, {}, attrs={"measurement": {"ci": {"latency_ms": [3, 4]}}}), lat) == (3.0, 4.0)
    assert table.ci_of(P(1, {}), O("binary_bytes", metric="binary_bytes")) is None


def confirmed_point(values, speedup, candidate_launches, contended=()):
    """A front point as tuner.measure.confirm stores it: timed values from its ABBA launches."""
    a = [{"value": v, "contended": i in contended} for i, v in enumerate(candidate_launches)]
    cand = sorted(candidate_launches)[len(a) // 2] if len(a) % 2 else sum(sorted(candidate_launches)[len(a) // 2 - 1:
                                                                            len(a) // 2 + 1]) / 2
    conf = {"confirmed": True, "speedup": speedup, "pairs": len(a), "candidate_ms": cand, "baseline_ms": 50.0,
            "a": a, "b": [{"value": 50.0}] * len(a)}
    return P(5, values, metrics={"latency_ms": cand, "latency_ci_low_ms": 1.0, "latency_ci_high_ms": 99.0},
             measurement={"confirmation": conf})


def test_a_confirmed_point_shows_its_confirmation_interval_and_paired_speedup():
    lat, gf, size = O("latency_ms", metric="latency_ms"), O("gflops", "maximize", "GFLOP/s", "gflops"), \
        O("binary_bytes", unit="B", metric="binary_bytes")
    launches = [20.0, 20.2, 20.4, 20.6, 20.8, 21.0, 21.2, 21.4, 21.6, 30.0]   # median 20.9, 95%: [20.2, 21.6]
    p = confirmed_point({"latency_ms": 20.9, "gflops": 10.0, "binary_bytes": 4000}, {"value": 2.4, "low": 2.3,
                        "high": 2.5, "n": 8}, launches)
    assert table.ci_of(p, lat) == pytest.approx((20.2, 21.6))          # not the screening launches' [1, 99]
    lo, hi = table.ci_of(p, gf)                                        # a rate: the interval turns around
    assert lo == pytest.approx(10.0 * 20.9 / 21.6) and hi == pytest.approx(10.0 * 20.9 / 20.2)
    assert table.ci_of(p, size) is None                                # untimed: exact
    base = P(0, {"latency_ms": 50.0, "gflops": 4.1, "binary_bytes": 5000}, metrics={"latency_ms": 50.0})
    (row,) = [r for r in table.rows([p], [lat, gf, size], base, None, {}) if r.label == "5"]
    assert row.cells["speedup.latency_ms"] == ("2.40", "0.10")         # the paired ratio, not 50 / 20.9
    assert row.cells["speedup.binary_bytes"] == ("1.25", "")           # exact ratio of code sizes
    p.measurement["confirmation"]["confirmed"] = False                 # raced out: the screening figures
    assert table.ci_of(p, lat) == (1.0, 99.0)


def test_reproduce_compares_a_confirmed_point_by_its_paired_ratio():
    from tuner.artifact.reproduce import recorded_ratio
    lat, gf, size = O("latency_ms", metric="latency_ms"), O("gflops", "maximize", "GFLOP/s", "gflops"), \
        O("binary_bytes", unit="B", metric="binary_bytes")
    p = confirmed_point({"latency_ms": 20.9, "gflops": 10.0, "binary_bytes": 4000},
                        {"value": 2.4, "low": 2.3, "high": 2.5, "n": 10}, [20.9] * 10)
    p.measurement["confirmation"]["ratio"] = {"value": 1 / 2.4, "low": 1 / 2.5, "high": 1 / 2.3, "n": 10}
    base = P(0, {"latency_ms": 41.0, "gflops": 10.0 * 20.9 / 41.0, "binary_bytes": 5000}, metrics={"latency_ms": 41.0})
    assert recorded_ratio(p, base, lat) == pytest.approx(1 / 2.4)     # paired, not 20.9 / 41
    assert recorded_ratio(p, base, gf) == pytest.approx(2.4)
    assert recorded_ratio(p, base, size) == pytest.approx(0.8)


def test_columns_are_checked_and_expanded():
    objs = [O("latency_ms"), O("binary_bytes", unit="B")]
    assert [c.key for c in table.columns(None, objs)] == ["trial", "latency_ms", "binary_bytes", "config"]
    assert [c.key for c in table.columns("binary_bytes,speedup.latency_ms", objs)] == ["binary_bytes",
                                                                                       "speedup.latency_ms"]
    with pytest.raises(BadInput, match="unknown column 'energy'"):
        table.columns("trial,energy", objs)


def test_long_configurations_are_truncated():
    text, hidden = table.knobs_cell({f"k{i}": i for i in range(10)}, 4)
    assert text == "k0=0, k1=1, k2=2, k3=3" and hidden == 6


def test_a_reduced_configuration_is_shown_whole():
    knobs = {f"k{i}": i for i in range(6)}
    pts = [P(1, {"latency_ms": 1.0}), P(2, {"latency_ms": 2.0})]
    rows = table.rows(pts, [O("latency_ms")], None, None, {1: (knobs, True), 2: (knobs, False)}, 4)
    assert (rows[0].hidden, rows[0].reduced, rows[0].config.count("=")) == (0, True, 6)
    assert (rows[1].hidden, rows[1].reduced, rows[1].config.count("=")) == (2, False, 4)


@needs_gcc
def test_export_writes_a_bundle_whose_latex_compiles(lab, tmp_path):
    study = lab.study("paper", KNOBS, meta='baseline = { a = 0, b = 1, opt = "-O1" }')
    lab.ok("explore", study, "--trials", "10", "--seed", "2", "--no-progress", "--no-export")
    out = tmp_path / "bundle"
    lab.ok("export", study, "--out", out, "--columns", "trial,objectives,speedup.cost,config")
    for name in ("table.tex", "table.md", "front.json", "front.csv", "appendix.md", "appendix.tex", "preview.tex",
                 "front.pdf", "front.png", "hypervolume.pdf", "hypervolume.png", "importance.pdf", "importance.png",
                 "pareto.csv", "pareto.json", "trials.csv"):
        assert (out / name).stat().st_size > 0, name
    doc = json.loads((out / "front.json").read_text())
    assert doc["schema"] == "tune.bundle/1" and doc["points"] and doc["baseline"]["trial"] == 0
    (run,) = doc["runs"].values()
    for p in [doc["baseline"], *doc["points"]]:
        assert p["provenance"]["run"] == run["run"] and p["provenance"]["build"]
        assert set(p["shown"]) <= set(p["params"])
        assert p["params"]["b"] in (1, 2, 4, 8)          # ordinal knobs as their values, not indexes
        # the measurement environment and how the point was measured, without the raw samples
        assert p["environment"]["cpu_model"] and "run_cpus" in p["environment"] and "load1" in p["environment"]
        assert p["measurement"]["launches"] == 1 and p["measurement"]["stopped"]
    assert {"cpu_model", "run_cpus", "build_cpus", "loadavg"} <= set(run["environment"])
    assert doc["importance"]["evaluator"] == "fanova"
    assert doc["hypervolume_curve"]["measurements"]
    rows = list(csv.DictReader((out / "front.csv").open()))
    assert rows[0]["baseline"] == "True" and all(r["cpu_model"] and r["compiler"] and r["build_command"] for r in rows)
    assert all(r["launches"] == "1" and r["run_cpus"] for r in rows)
    tex = (out / "table.tex").read_text()
    assert r"\toprule" in tex and "cost speedup (x)" in tex
    md = (out / "appendix.md").read_text()
    for heading in ("Abstract", "check-list", "Description", "Installation", "Experiment workflow",
                    "Evaluation and expected results", "Notes"):
        assert heading in md
    assert f"tune reproduce {study.stem} --front" in md
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (make system installs texlive)")
    assert (out / "front.pgf").exists()
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "preview.tex"], cwd=out,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (out / "preview.pdf").stat().st_size > 10_000
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", "preview.pdf", "page"], cwd=out,
                       check=True, timeout=60)
        assert list(out.glob("page*.png"))


@needs_gcc
def test_bad_columns_is_one_line_and_writes_nothing(lab, tmp_path):
    study = lab.study("cols", KNOBS)
    lab.ok("explore", study, "--trials", "3", "--seed", "0", "--no-progress", "--no-export")
    out = tmp_path / "nothing"
    line = one_line_error(lab.tune("export", study, "--out", out, "--columns", "trial,nope"))
    assert "--columns" in line and "unknown column 'nope'" in line
    assert not out.exists()


def test_appendix_sets_markdown_code_in_texttt():
    from tuner.artifact.appendix import tex
    assert tex("then `tune reproduce s --front` compares 5% of a_b") == \
        r"then \texttt{tune reproduce s -{}-front} compares 5\% of a\_b"
    assert tex("one ` alone") == tex("one ` alone").replace(r"\texttt", "")     # unpaired: no code

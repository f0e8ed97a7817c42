"""`tune reduce`: ddmin to the knobs that matter, each step measured; export shows the result."""

from __future__ import annotations

import json

from conftest import needs_gcc
from knob_tables import AB, int_knob, opt_knob
from tuner.artifact.probe import Measured
from tuner.artifact.reduce import Reducer

KNOBS = AB + int_knob("c", define="ECHO_D") + opt_knob("d")


class Space:
    """A stand-in space for the algorithm alone: knobs k0..kn, default 0, no constraints."""

    def __init__(self, n: int) -> None:
        self.knobs = {f"k{i}": None for i in range(n)}

    def complete(self, partial):
        return {k: partial.get(k, 0) for k in self.knobs}

    def violations(self, config):
        return []


class Obj:
    name, direction, metric = "cost", "minimize", "cost"


class FakeProbe:
    """The probe seam without a machine: `f(config)` gives the objective values."""

    deterministic = True

    def __init__(self, f):
        self.f, self.calls, self.launches = f, [], 0

    def measure(self, config):
        self.calls.append(dict(config))
        self.launches += 1
        return Measured(self.f(config))

    def compare(self, a, b):
        return {}


def test_ddmin_finds_a_one_minimal_set_and_counts_every_test():
    """cost = 10 unless k3 and k11 are both set (then 1): the reduced set is exactly {k3, k11}."""
    space = Space(16)
    point = {k: 1 for k in space.knobs}
    probe = FakeProbe(lambda cfg: {"cost": 1.0 if cfg["k3"] and cfg["k11"] else 10.0})
    doc = Reducer(space, [Obj()], point, probe, tolerance=0.0).run()
    assert doc["reduced"] == {"k3": 1, "k11": 1}
    assert doc["tests"] == len(doc["log"]) and doc["tests"] < 40
    assert len(probe.calls) == doc["tests"] + 1     # each candidate once, and the point once
    assert all(s["ratios"]["cost"][0] == 1.0 for s in doc["steps"])
    removed = [k for s in doc["steps"] for k in s["removed"]]
    assert sorted(removed + ["k3", "k11"]) == sorted(space.knobs)


def test_ddmin_keeps_everything_when_every_knob_matters():
    space = Space(4)
    point = {k: 1 for k in space.knobs}
    doc = Reducer(space, [Obj()], point, FakeProbe(lambda cfg: {"cost": 10.0 - sum(cfg.values())}),
                  tolerance=0.0).run()
    assert doc["reduced"] == point and doc["steps"] == []


@needs_gcc
def test_reduce_a_real_trial_then_export_shows_the_reduced_set(lab, tmp_path):
    study = lab.study("red", KNOBS, objectives=("cost", "gain"))
    lab.ok("explore", study, "--set", "a=3", "--set", "b=2", "--set", "c=5", "--set", "d=-O2",
           "--trials", "1", "--no-progress", "--no-export")
    proc = lab.ok("reduce", study, "--trial", "0", "--tolerance", "0")
    assert "reduced configuration: a=3 b=2" in proc.stdout, proc.stdout + proc.stderr
    assert "measured against the point: cost x1" in proc.stdout
    out = tmp_path / "bundle"
    lab.ok("export", study, "--out", out)
    (point,) = json.loads((out / "front.json").read_text())["points"]
    assert point["reduced"] and point["shown"] == {"a": 3, "b": 2}
    assert point["params"]["c"] == 5                      # the full configuration stays in the JSON
    assert r"$^\dagger$" in (out / "table.tex").read_text()


def test_reduce_measures_the_reduced_set_against_the_baseline(lab):
    # what the kept knobs are worth: a point may shrink to knobs that gain little over the baseline
    study = lab.study("redbase", KNOBS, objectives=("cost", "gain"), meta="baseline = { a = 1, b = 1 }")
    lab.ok("explore", study, "--set", "a=3", "--set", "b=2", "--set", "d=-O2",
           "--trials", "2", "--no-progress", "--no-export")
    trial = next(p["trial"] for p in lab.json("pareto", study) if p["params"]["a"] == 3)
    proc = lab.ok("reduce", study, "--trial", trial, "--tolerance", "0", "--format", "table")
    # a=3, b=2: cost 3*3 + 5*2 + 6 % 4 = 21, gain 9 + 4 = 13; the baseline a=1, b=1: cost 9, gain 3
    assert "reduced configuration: a=3 b=2\n" in proc.stdout, proc.stdout + proc.stderr
    assert "measured against the baseline (a=1 b=1): cost x2.333 [2.333, 2.333], gain x4.333" in proc.stdout
    doc = json.loads(lab.ok("reduce", study, "--trial", trial, "--tolerance", "0", "--format", "json").stdout)
    assert doc["against"]["reference"] == "baseline" and doc["against"]["ratios"]["cost"][0] == 21 / 9


def test_reduce_says_so_in_one_line_when_the_baseline_fails_and_keeps_the_reduction(lab):
    # a baseline that no longer builds (MODE=5: a syntax error) fails only the last line, not the reduction
    study = lab.study("redbroken", KNOBS + int_knob("m", define="MODE"), objectives=("cost", "gain"),
                      meta="baseline = { m = 5 }")
    # every knob pinned: an unpinned MODE would be drawn, and 1-3 crash or hang the point itself
    lab.ok("explore", study, "--set", "a=3", "--set", "b=2", "--set", "c=0", "--set", "d=-O1", "--set", "m=0",
           "--trials", "2", "--no-progress", "--no-export")
    trial = next(p["trial"] for p in lab.json("pareto", study) if p["params"]["a"] == 3)
    proc = lab.ok("reduce", study, "--trial", trial, "--tolerance", "0")
    assert "reduced configuration: a=3 b=2\n" in proc.stdout, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if "measured against the baseline (m=5)" in ln)
    assert "the reference failed (" in line and "Traceback" not in proc.stderr, line
    doc = json.loads(lab.ok("reduce", study, "--trial", trial, "--tolerance", "0", "--format", "json").stdout)
    assert doc["reduced"] == {"a": 3, "b": 2} and doc["against"]["ratios"] == {}

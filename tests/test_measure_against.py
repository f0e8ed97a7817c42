"""`tune measure --against`: what one configuration is worth over the baseline, measured as
`tune reduce` measures its steps (tuner.artifact.probe.ratios): the time in ABBA pairs of fresh
processes, other objectives from the two measurements' values."""

from __future__ import annotations

import json

from knob_tables import AB, int_knob, opt_knob
from test_measure_campaign import write as timed_study

KNOBS = AB + int_knob("c", define="ECHO_D") + opt_knob("d")


def test_the_ratios_of_deterministic_objectives_are_exact(lab):
    study = lab.study("against", KNOBS, objectives=("cost", "gain"), meta="baseline = { a = 1, b = 1 }")
    proc = lab.ok("measure", study, "--set", "a=3", "--set", "b=2", "--against", "baseline")
    # a=3, b=2: cost 21, gain 13; the baseline a=1, b=1: cost 9, gain 3 (tests/test_reduce.py)
    assert "against the baseline (a=1 b=1): cost x2.333 [2.333, 2.333], gain x4.333" in proc.stdout, proc.stdout
    doc = json.loads(lab.ok("measure", study, "--set", "a=3", "--set", "b=2", "--against", "defaults",
                            "--format", "json").stdout)
    assert doc["against"]["reference"] == "defaults" and doc["against"]["config"] == {}
    defaults = json.loads(lab.ok("measure", study, "--format", "json").stdout)["values"]
    for name, value in doc["values"].items():      # nothing to divide by a zero: n/a, not a crash
        ratio = doc["against"]["ratios"][name]
        assert (ratio is None) if not defaults[name] else ratio[0] == value / defaults[name], (name, defaults)


def test_the_time_is_measured_in_pairs_against_the_baseline(lab):
    # the sleeping kernel: the baseline sleeps 8 ms, `fast` 2 ms, `slow` 24 ms
    study = timed_study(lab, "timed-against", ["base", "fast", "slow"])
    fast = json.loads(lab.ok("measure", study, "--set", "mode=fast", "--against", "baseline", "--pairs", "6",
                             "--format", "json").stdout)["against"]
    value, low, high = fast["ratios"]["latency_ms"]
    assert 0.15 < low <= value <= high < 0.5, fast          # x0.25: four times faster
    slow = lab.ok("measure", study, "--set", "mode=slow", "--against", "baseline", "--pairs", "6").stdout
    line = next(ln for ln in slow.splitlines() if ln.startswith("against the baseline (mode=base): latency_ms x"))
    assert 2.0 < float(line.split(" x")[1].split()[0]) < 4.0, line  # x3


def test_against_a_baseline_the_study_does_not_declare_is_one_clear_line(lab):
    study = lab.study("nobase", KNOBS)
    proc = lab.tune("measure", study, "--against", "baseline")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "tune: error: --against: 'nobase' declares no baseline (use --against defaults)"], proc.stderr


def test_pairs_without_against_or_below_one_is_one_clear_line(lab):
    study = lab.study("pairsonly", KNOBS, meta="baseline = { a = 1 }")
    for extra in (("--pairs", "5"), ("--against", "baseline", "--pairs", "0")):
        proc = lab.tune("measure", study, *extra)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
            "tune: error: --pairs: must be at least 1, and goes with --against"], proc.stderr


def test_a_reference_that_fails_says_so_and_keeps_the_measurement(lab):
    study = lab.study("badbase", KNOBS + int_knob("m", define="MODE"), meta="baseline = { m = 5 }")
    proc = lab.ok("measure", study, "--set", "a=3", "--against", "baseline")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("against the baseline (m=5): "))
    assert "the reference failed (" in line and "cost = " in proc.stdout, proc.stdout

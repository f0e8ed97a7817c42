"""A study as an artifact: pack it, unpack it in another folder, reproduce its front there:
exactly on the VTA simulator, within CI (or exactly, for exact metrics) on `local`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import FAST_TARGET, needs_gcc, one_line_error
from knob_tables import AB

KNOBS = AB


def tune_in(cwd: Path, *args, library: Path | None = None) -> subprocess.CompletedProcess:
    """`tune` run from another folder, with only that folder as the user's library."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNE_")}
    env["TUNE_LIBRARY"] = str(library or cwd)
    return subprocess.run([sys.executable, "-m", "tuner", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env)


def unpack_elsewhere(lab, study_name: str, tmp_path: Path) -> Path:
    archive = lab.root / f"{study_name}.tune.tar.gz"
    assert archive.exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = tune_in(elsewhere, "unpack", archive, "--into", "art")
    assert proc.returncode == 0, proc.stderr
    return elsewhere / "art"


@needs_gcc
def test_packed_simulator_study_reproduces_exactly_elsewhere(lab, tmp_path):
    lab.ok("explore", "resnet18-vta", "--trials", "8", "--seed", "0", "--no-progress", "--no-export")
    lab.ok("pack", "resnet18-vta")
    art = unpack_elsewhere(lab, "resnet18-vta", tmp_path)
    manifest = json.loads((art / "tune-artifact.json").read_text())
    assert {"search_spaces/resnet18-vta.toml", "results/resnet18-vta/journal.log", "targets/vta-sim.toml",
            "objectives/latency_ms.toml"} <= set(manifest["files"])
    (sim,) = art.rglob("vta_sim.c")
    proc = tune_in(art, "reproduce", "resnet18-vta", "--front", "--format", "json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["reproduced"] and doc["points"]
    for p in doc["points"]:
        assert p["same_machine"] is True and not p["relative"]
        for r in p["objectives"].values():
            assert r["exact"] and r["new"] == r["recorded"] and r["verdict"] == "reproduced"
    # the archived sources are the ones built: a changed clock no longer reproduces (exit 1)
    text = sim.read_text()
    assert '{"xc7z020", 220, 140, 53200, 100.0, 8.0}' in text
    sim.write_text(text.replace('{"xc7z020", 220, 140, 53200, 100.0, 8.0}', '{"xc7z020", 220, 140, 53200, 50.0, 8.0}'))
    proc = tune_in(art, "reproduce", "resnet18-vta", "--front", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert not doc["reproduced"]
    assert any(p["objectives"]["latency_ms"]["verdict"] == "not reproduced" for p in doc["points"])


@needs_gcc
def test_packed_local_study_reproduces_within_ci_and_relative_on_another_target(lab, tmp_path):
    three = FAST_TARGET.replace("min_launches = 1", "min_launches = 3").replace("max_launches = 1", "max_launches = 3")
    (lab.root / "targets" / "fast3.toml").write_text(three)
    (lab.root / "targets" / "fast2.toml").write_text(three)
    study = lab.study("art", KNOBS, objectives=("cost", "latency_ms"), target="fast3",
                      meta='baseline = { a = 1, b = 1 }\ntargets = ["fast3", "fast2"]')
    lab.ok("explore", study, "--trials", "6", "--seed", "1", "--no-progress", "--no-export")
    lab.ok("pack", study)
    with tarfile.open(lab.root / "art.tune.tar.gz") as tar:
        names = tar.getnames()
    assert "art.tune/search_spaces/kernel.c" in names and "art.tune/targets/fast2.toml" in names
    art = unpack_elsewhere(lab, "art", tmp_path)
    proc = tune_in(art, "reproduce", "art", "--front", "--pairs", "2", "--format", "json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == (0 if doc["reproduced"] else 1), proc.stderr
    for p in doc["points"]:
        cost, lat = p["objectives"]["cost"], p["objectives"]["latency_ms"]
        assert cost["exact"] and cost["verdict"] == "reproduced"
        assert lat["ci"], (lat, p)
        lo, hi = lat["ci"]                               # the interval across launches
        assert lo <= lat["new"] <= hi and not lat["exact"]
        absolute = lo <= lat["recorded"] <= hi or abs(lat["recorded"] - lat["new"]) <= 0.05 * max(lat["recorded"], lat["new"])
        if absolute:
            assert lat["verdict"] == "reproduced"
        else:    # a moved machine: only the paired ratio to the baseline can still reproduce it
            assert lat["verdict"] in ("not reproduced", "reproduced (relative to the baseline)")
        if not p["baseline"]:
            assert lat["ratio"]["paired"] and lat["ratio"]["ci"]     # ABBA against the baseline
    # another target: absolute values are not comparable; ratios to the baseline are
    proc = tune_in(art, "reproduce", "art", "--front", "--target", "fast2", "--pairs", "2", "--format", "json")
    doc = json.loads(proc.stdout)
    for p in doc["points"]:
        assert p["relative"]
        v = p["objectives"]["cost"]["verdict"]
        assert v == "other machine: compared relative to its baseline: reproduced", v


@needs_gcc
def test_unpack_rejects_a_damaged_or_foreign_archive(lab, tmp_path):
    study = lab.study("dmg", KNOBS)
    lab.ok("explore", study, "--trials", "2", "--seed", "0", "--no-progress", "--no-export")
    lab.ok("pack", study, "--out", tmp_path / "dmg.tar.gz")
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(tmp_path / "dmg.tar.gz") as src, tarfile.open(bad, "w:gz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name.endswith("kernel.c"):
                data += b"\n/* changed */\n"
                m.size = len(data)
            import io
            dst.addfile(m, io.BytesIO(data))
    proc = tune_in(tmp_path, "unpack", bad, "--into", "x")
    assert proc.returncode == 1 and "does not match its hash" in proc.stderr
    (tmp_path / "plain.tar.gz").write_bytes(b"not a tar")
    line = one_line_error(tune_in(tmp_path, "unpack", tmp_path / "plain.tar.gz"))
    assert "not a tune archive" in line


@needs_gcc
def test_warm_start_enqueues_the_front_of_a_finished_study_once(lab):
    old = lab.study("old", KNOBS, objectives=("cost", "gain"))
    lab.ok("explore", old, "--trials", "8", "--seed", "3", "--no-progress", "--no-export")
    front = {tuple(sorted(p["params"].items())) for p in lab.json("pareto", old)}
    (lab.root / "targets" / "fast2.toml").write_text(FAST_TARGET)
    new = lab.study("new", KNOBS, objectives=("cost", "gain"), target="fast2",
                    meta='baseline = { a = 1, b = 1 }')
    proc = lab.ok("explore", new, "--warm-start", old, "--trials", str(len(front) + 2), "--seed", "0",
                  "--surrogate", "off", "--no-export")
    assert (f"warm start: {len(front)} of {len(front)} configurations of old's front ({len(front)} not yet "
            "measured here)") in proc.stderr
    recs = sorted(lab.records(new), key=lambda r: r.number)
    assert recs[0].params == {"a": 1, "b": 1}                     # the baseline first
    assert {tuple(sorted(r.params.items())) for r in recs[1:1 + len(front)]} == front
    again = lab.ok("explore", new, "--warm-start", old, "--trials", str(len(front) + 3), "--no-export")
    assert "(0 not yet measured here)" in again.stderr          # a resume does not measure them again
    recs = lab.records(new)
    assert len({r.config_key for r in recs if r.status == "complete"}) == len([r for r in recs if r.status == "complete"])


@needs_gcc
@pytest.mark.skipif(shutil.which("qemu-aarch64") is None or shutil.which("aarch64-linux-gnu-gcc") is None,
                    reason="qemu-user and gcc-aarch64-linux-gnu not installed (make system installs them)")
def test_warm_start_moves_a_local_study_to_qemu_aarch64(lab):
    """The issue's example: the same study on another target, in another results folder, starts
    from the local front; the new trials are cross-built and counted under qemu, and say so."""
    study = lab.study("mv", KNOBS, objectives=("cost", "gain"), meta='baseline = { a = 1, b = 1 }')
    lab.ok("explore", study, "--trials", "6", "--seed", "3", "--no-progress", "--no-export")
    front = {tuple(sorted(p["params"].items())) for p in lab.json("pareto", study)}
    proc = lab.ok("explore", study, "--target", "qemu-aarch64", "--results", "results-arm", "--warm-start", study,
                  "--warm-results", "results", "--trials", str(len(front) + 1), "--seed", "0", "--surrogate", "off",
                  "--no-export")
    assert "warm start:" in proc.stderr and "target qemu-aarch64" in proc.stderr
    from tuner import provenance
    from tuner.engine import load_campaign
    from tuner import trials as T
    spec, st = load_campaign(str(study), lab.root / "results-arm", None)
    recs = sorted(T.records(st, spec.objectives), key=lambda r: r.number)
    assert recs[0].params == {"a": 1, "b": 1} and all(r.status == "complete" for r in recs)
    front.discard(tuple(sorted(recs[0].params.items())))          # the baseline is measured once
    assert front
    assert {tuple(sorted(r.params.items())) for r in recs[1:1 + len(front)]} == front
    (run,) = provenance.load_runs(st).values()
    assert run["target"]["name"] == "qemu-aarch64" and "aarch64" in run["compiler"]["path"]
    assert all(provenance.of(r)["run"] == run["run"] for r in recs)


def test_same_machine_timed_point_that_moved_reproduces_only_by_its_paired_ratio():
    """The same machine ran 10% faster than when recorded (a baseline drift tune measures), so the
    absolute latency misses its interval; the paired ratio to the baseline came back, or did not."""
    from types import SimpleNamespace

    from tuner.artifact.probe import Measured
    from tuner.artifact.reproduce import verdicts

    lat = SimpleNamespace(name="latency_ms", direction="minimize", unit="ms")
    point = SimpleNamespace(values={"latency_ms": 37.0}, metrics={"latency_ms": 37.0}, user_attrs={})
    base = SimpleNamespace(values={"latency_ms": 26.6}, metrics={"latency_ms": 26.6}, user_attrs={})
    m = Measured({"latency_ms": 33.7}, ci={"latency_ms": (33.6, 34.0)}, noisy=frozenset({"latency_ms"}))
    base_m = Measured({"latency_ms": 24.2}, ci={"latency_ms": (24.1, 24.4)}, noisy=frozenset({"latency_ms"}))
    came_back = {"latency_ms": (1.383, 1.370, 1.391)}        # recorded 37.0 / 26.6 = 1.391
    row = verdicts(point, base, [lat], m, base_m, came_back, relative=False, tolerance=0.05)["latency_ms"]
    assert row["verdict"] == "reproduced (relative to the baseline)" and row["reproduced"]
    moved_too = {"latency_ms": (1.25, 1.24, 1.26)}
    row = verdicts(point, base, [lat], m, base_m, moved_too, relative=False, tolerance=0.05)["latency_ms"]
    assert row["verdict"] == "not reproduced" and not row["reproduced"]
    on_the_spot = Measured({"latency_ms": 37.2}, ci={"latency_ms": (36.9, 37.4)}, noisy=frozenset({"latency_ms"}))
    row = verdicts(point, base, [lat], on_the_spot, base_m, moved_too, relative=False, tolerance=0.05)["latency_ms"]
    assert row["verdict"] == "reproduced"

"""Validation of the VTA simulator (programs/vta_sim) and its standalone CLI (tuner.vta)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tuner.buildcache import BuildCache
from tuner.vta import HwConfig, build, run, source_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED_CSV = ROOT.parent / "shared" / "reference" / "vta" / "calibration_points.csv"


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> BuildCache:
    return BuildCache(tmp_path_factory.mktemp("vta-builds"))


@pytest.fixture(scope="session")
def sim(cache) -> Path:
    return build(HwConfig(), cache=cache).path


def metrics(binary: Path, *args: str) -> dict:
    r = run(binary, [*args, "--quiet"])
    assert r.infeasible is None, r.infeasible
    return dict(r.metrics)


def infeasible(binary: Path, *args: str) -> str:
    r = run(binary, [*args, "--quiet"])
    assert r.infeasible is not None, f"expected infeasible, got {r.metrics}"
    return r.infeasible


# ---------------------------------------------------------------- exact counters (README)

def test_counters_c9_tutorial_schedule(sim):
    # 7x14 output tiles, 8 OC blocks per tile, 1 IC block per step, 2 vthreads over OC;
    # the tutorial's epilogue is SHR, MIN, MAX (3 ALU ops)
    m = metrics(sim, "--layer", "C9", "--schedule", "1,7,14,1,8,2,1", "--epilogue", "clip")
    assert m["inp_load_bytes"] == 114_688
    assert m["wgt_load_bytes"] == 1_179_648
    assert m["out_store_bytes"] == 50_176
    assert m["gemm_count"] == 451_584
    assert m["alu_count"] == 9_408
    assert m["acc_load_bytes"] == 0


def test_counters_blocked_gemm(sim):
    # 1x1024 . 1024x1024 as a 1x1 conv on a 1x1 image, 256 output channels per tile
    m = metrics(sim, "--shape", "1,1,1024,1024,1,1,0", "--schedule", "1,1,1,1,16,1,1", "--epilogue", "clip")
    assert (m["gemm_count"], m["wgt_load_bytes"], m["inp_load_bytes"]) == (4_096, 1_048_576, 4_096)
    assert (m["out_store_bytes"], m["alu_count"]) == (1_024, 192)


@pytest.mark.parametrize("schedule", ["default", "best"])
def test_counters_network_gemm(sim, schedule):
    m = metrics(sim, "--network", "resnet18", "--schedule", schedule)
    assert m["gemm_count"] == 6_623_232
    assert m["ops"] == 2 * 6_623_232 * 256


def test_default_schedule_of_c9_is_the_tutorial_one(sim):
    m = metrics(sim, "--layer", "C9")
    got = [m[k] for k in ("tile_b", "tile_h", "tile_w", "tile_ci", "tile_co", "oc_nthread", "h_nthread")]
    assert got == [1, 7, 14, 1, 8, 2, 1]


# ---------------------------------------------------------------- roofline facts

def test_peak_and_bandwidth_roof(sim):
    m = metrics(sim, "--network", "resnet18", "--schedule", "best")
    assert m["peak_gops"] == pytest.approx(51.2)
    assert m["bw_roof_gbs"] == pytest.approx(0.8)
    assert m["clock_mhz"] == 100
    assert 0 < m["gops"] < 51.2


def test_gemm_bound_never_beats_peak(sim):
    # a huge-reuse layer gets close to, never above, 51.2 GOPS
    m = metrics(sim, "--shape", "14,14,256,256,3,1", "--schedule", "best")
    assert 40 < m["gops"] <= 51.2
    assert m["utilization"] <= 1.0


def test_zu_parts_take_their_board_clock_and_port(cache):
    b = build(HwConfig(part="xczu3eg"), cache=cache).path
    m = metrics(b, "--layer", "C9")
    assert m["clock_mhz"] == 333 and m["bw_roof_gbs"] == pytest.approx(333 * 16 / 1000)
    assert m["peak_gops"] == pytest.approx(2 * 256 * 333 / 1000)


# ---------------------------------------------------------------- calibration (5 published layers)

def _points():
    lines = [l for l in open(source_dir() / "calibration_points.csv") if not l.startswith("#")]
    return list(csv.DictReader(lines))


def test_calibration_csv_matches_reference():
    if not SHARED_CSV.exists():
        pytest.skip("shared reference not present")
    assert (source_dir() / "calibration_points.csv").read_text() == SHARED_CSV.read_text()


@pytest.mark.parametrize("vthread,column", [("off", "gops_no_vthread"), ("on", "gops_vthread")])
@pytest.mark.parametrize("layer", ["C2", "C3", "C5", "C9", "C12"])
def test_calibration_within_20_percent(sim, layer, vthread, column):
    point = next(p for p in _points() if p["layer"] == layer)
    m = metrics(sim, "--layer", layer, "--schedule", "best", "--vthread", vthread)
    assert m["gops"] == pytest.approx(float(point[column]), rel=0.20)


def test_vthreads_help_every_calibration_layer(sim):
    for p in _points():
        off = metrics(sim, "--layer", p["layer"], "--schedule", "best", "--vthread", "off")["gops"]
        on = metrics(sim, "--layer", p["layer"], "--schedule", "best", "--vthread", "on")["gops"]
        assert on >= off


# ---------------------------------------------------------------- functional bit-exactness

def numpy_conv(x, w, bias, stride, pad, shift=8):
    """int8 NCHW conv2d, int32 accumulation, ((acc >> 8) + bias) clipped to [0, 127]."""
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x.astype(np.int32), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    acc = np.zeros((n, o, oh, ow), np.int32)
    for ky in range(k):
        for kx in range(k):
            patch = xp[:, :, ky:ky + stride * oh:stride, kx:kx + stride * ow:stride]
            acc += np.einsum("nchw,oc->nohw", patch, w[:, :, ky, kx].astype(np.int32), dtype=np.int32)
    return np.clip((acc >> shift) + bias.reshape(1, o, 1, 1), 0, 127).astype(np.int8)


def check_functional(binary, tmp_path, shape, schedule="best", extra=()):
    h, w_, ic, oc, k, s = shape[:6]
    p = shape[6] if len(shape) > 6 else k // 2
    n = shape[7] if len(shape) > 7 else None
    m = metrics(binary, "--shape", ",".join(map(str, shape)), "--schedule", schedule,
                "--mode", "functional", "--dump", str(tmp_path), *extra)
    assert m["mismatches"] == 0
    n = n or int(np.fromfile(tmp_path / "input.i8", np.int8).size // (ic * h * w_))
    x = np.fromfile(tmp_path / "input.i8", np.int8).reshape(n, ic, h, w_)
    wt = np.fromfile(tmp_path / "weight.i8", np.int8).reshape(oc, ic, k, k)
    bias = np.fromfile(tmp_path / "bias.i32", np.int32)
    y = np.fromfile(tmp_path / "output.i8", np.int8)
    ref = numpy_conv(x, wt, bias, s, p)
    assert y.size == ref.size
    assert np.array_equal(y.reshape(ref.shape), ref)
    assert ref.max() > 0 and ref.min() == 0  # the epilogue saturates both ways on random data


@pytest.mark.parametrize("shape,schedule", [
    ((8, 8, 16, 16, 3, 1), "1,2,4,1,1,1,2"),
    ((9, 7, 32, 48, 3, 2), "best"),
    ((10, 10, 32, 32, 1, 1), "1,5,2,2,1,2,1"),
    ((6, 6, 16, 32, 5, 1), "best"),
])
def test_functional_small_shapes(sim, tmp_path, shape, schedule):
    check_functional(sim, tmp_path, shape, schedule)


@pytest.mark.parametrize("layer_shape", [
    (14, 14, 256, 256, 3, 1),   # C9
    (56, 56, 64, 128, 1, 2),    # C5
    (7, 7, 512, 512, 3, 1),     # C12
    (28, 28, 128, 256, 3, 2),   # C7
])
def test_functional_real_layers(sim, tmp_path, layer_shape):
    check_functional(sim, tmp_path, layer_shape)


def test_functional_tutorial_schedule_c9_clip(sim, tmp_path):
    m = metrics(sim, "--layer", "C9", "--schedule", "1,7,14,1,8,2,1", "--mode", "functional", "--epilogue", "clip")
    assert m["mismatches"] == 0 and m["alu_count"] == 9_408


@pytest.mark.parametrize("hw,shape", [
    (HwConfig(log_block_in=3, log_block_out=5), (8, 8, 16, 64, 3, 1)),
    (HwConfig(log_batch=1), (8, 8, 32, 32, 3, 1, 1, 2)),
])
def test_functional_other_hardware(cache, tmp_path, hw, shape):
    check_functional(build(hw, cache=cache).path, tmp_path, shape)


# ---------------------------------------------------------------- infeasibility reasons

def test_infeasible_tile_overflows_buffer(sim):
    assert "overflows the input buffer" in infeasible(sim, "--layer", "C2", "--schedule", "1,56,56,4,4,1,1")
    assert "overflows the accumulator buffer" in infeasible(sim, "--layer", "C9", "--schedule", "1,14,14,1,16,1,1")
    assert "overflows the weight buffer" in infeasible(sim, "--layer", "C12", "--schedule", "1,1,7,8,32,1,1")


def test_infeasible_too_many_uops(sim):
    assert "too many micro-ops" in infeasible(sim, "--layer", "C2", "--schedule", "1,28,28,1,1,1,2")


def test_infeasible_shape_not_divisible(sim):
    assert "not divisible by block size" in infeasible(sim, "--shape", "56,56,3,64,3,1")


def test_infeasible_back_to_back_accumulator(sim):
    assert "back-to-back micro-ops on one accumulator" in infeasible(sim, "--layer", "C12", "--schedule", "1,1,1,2,1,1,1")


def test_infeasible_instruction_fields(sim, cache):
    assert "16-bit field" in infeasible(sim, "--shape", "1,70000,16,16,1,1", "--schedule", "1,1,10,1,1,1,1")
    assert "padding" in infeasible(sim, "--shape", "40,40,16,16,3,1,16")
    big_wgt = build(HwConfig(log_wgt_buff_size=19), cache=cache).path
    assert "micro-op index fields do not fit 32 bits" in infeasible(big_wgt)
    big_uop = build(HwConfig(log_uop_buff_size=17), cache=cache).path
    assert "GEMM instruction needs 131 > 128 bits" in infeasible(big_uop)


def test_infeasible_part_does_not_fit(cache):
    b = build(HwConfig(log_block_in=5, log_block_out=5), cache=cache).path
    assert "does not fit xc7z020" in infeasible(b)
    # the same core fits the big UltraScale+ part
    b = build(HwConfig(log_block_in=5, log_block_out=5, part="xczu7ev"), cache=cache).path
    assert metrics(b, "--layer", "C9")["dsp"] == 516


def test_best_search_reports_no_legal_schedule(cache):
    tiny = build(HwConfig(log_wgt_buff_size=11), cache=cache).path  # 8 weight elements < 3x3
    assert "no legal schedule" in infeasible(tiny, "--layer", "C9", "--schedule", "best")


# ---------------------------------------------------------------- resources

def test_default_resources(sim):
    m = metrics(sim, "--layer", "C9")
    assert 110 <= m["bram36"] <= 125            # README: roughly 110-125 of 140
    assert m["dsp"] <= 220 and m["lut"] <= 53_200
    assert m["bram_frac"] == pytest.approx(m["bram36"] / 140)


# ---------------------------------------------------------------- speed and CLI

def test_timing_mode_whole_network_is_fast(sim):
    m = metrics(sim, "--network", "resnet18", "--repeat", "20")
    assert m["eval_us"] < 100_000  # brief: well under 100 ms; measured ~1 ms


def test_binary_bad_input_exit_2(sim):
    for args in (["--layer", "C99"], ["--vthread", "maybe"], ["--schedule", "1,2,3"], ["--bogus"]):
        p = subprocess.run([str(sim), *args], capture_output=True, text=True)
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)


def _cli(*args, env_cache):
    env = {"TUNE_CACHE": str(env_cache), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "tuner.vta", *args], capture_output=True, text=True, cwd=ROOT, env=env)


def test_cli_json_and_table(tmp_path):
    p = _cli("--layer", "C9", "--format", "json", env_cache=tmp_path)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["metrics"]["gemm_count"] == 451_584 and doc["hardware"]["log_wgt_buff_size"] == 18
    p = _cli("--layer", "C9", env_cache=tmp_path)
    assert p.returncode == 0 and "latency_ms" in p.stdout


def test_cli_infeasible_and_bad_input(tmp_path):
    p = _cli("--log-wgt-buff", "19", "--format", "json", env_cache=tmp_path)
    assert p.returncode == 0 and "infeasible" in json.loads(p.stdout)
    for bad in (["--layer", "C99"], ["--log-block", "9"], ["--vthread", "x"], ["--part", "xc7"]):
        p = _cli(*bad, env_cache=tmp_path)
        assert p.returncode == 2, bad
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr


def test_network_runs_one_batch_of_batch_images(cache):
    b = build(HwConfig(log_batch=1), cache=cache).path
    m = metrics(b, "--network", "resnet18", "--schedule", "best")
    assert m["batch"] == 2 and m["ms_per_image"] == pytest.approx(m["latency_ms"] / 2)
    assert m["gemm_count"] == 6_623_232           # 2x the MACs on a 2x wider GEMM core
    assert m["peak_gops"] == pytest.approx(102.4)


def test_no_legal_schedule_reason_names_the_cause(cache):
    tiny = build(HwConfig(log_wgt_buff_size=11), cache=cache).path
    reason = infeasible(tiny, "--layer", "C9", "--schedule", "best")
    assert reason.count("no legal schedule") == 1 and "overflows the weight buffer" in reason


def test_study_loads_with_pynq_baseline_and_defaults():
    study_mod = pytest.importorskip("tuner.study")
    s = study_mod.load_study("resnet18-vta")
    assert [o.name for o in s.objectives] == ["latency_ms", "dsp_frac", "bram_frac"]
    assert s.baseline == {"log_batch": 0, "log_block_in": 4, "log_block_out": 4, "log_uop_buff_size": 15,
                          "log_inp_buff_size": 15, "log_wgt_buff_size": 18, "log_acc_buff_size": 17,
                          "part": "xc7z020"}
    assert s.program.sources[0].resolve() == (source_dir() / "vta_sim.c").resolve()


def test_network_per_layer_schedules(sim):
    base = metrics(sim, "--network", "resnet18", "--schedule", "default")
    # C9 (count 3) given explicitly; the other layers keep their default schedules
    r = run(sim, ["--network", "resnet18", "--schedule", "default", "--schedule", "C9=1,14,14,1,4,2,1"])
    c9 = next(l for l in r.table.splitlines() if l.startswith("C9 "))
    assert "1,14,14,1,4,2,1" in c9.split()[2]
    assert r.metrics["gemm_count"] == base["gemm_count"] and r.metrics["cycles"] != base["cycles"]
    assert "C9: " in infeasible(sim, "--network", "resnet18", "--schedule", "C9=1,14,14,1,16,1,1")
    p = subprocess.run([str(sim), "--layer", "C9", "--schedule", "C2=1,1,1,1,1,1,1"], capture_output=True, text=True)
    assert p.returncode == 2 and "no such layer" in p.stderr

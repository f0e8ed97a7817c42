"""Validation of the VTA simulator (programs/vta_sim) and its standalone CLI (tuner.vta)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tuner.buildcache import BuildCache
from tuner.vta import HwConfig, build, run, source_dir
from tuner.vta.network import load_network, network_path

ROOT = Path(__file__).resolve().parents[1]
SHARED_CSV = next((p for p in (ROOT.parent / "shared", ROOT.parents[1] / "shared", Path("/work/shared"))
                   if (p / "reference" / "vta" / "calibration_points.csv").is_file()), Path("/nonexistent")) \
    / "reference" / "vta" / "calibration_points.csv"


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> BuildCache:
    return BuildCache(tmp_path_factory.mktemp("vta-builds"))


@pytest.fixture(scope="session")
def sim(cache) -> Path:
    return build(cache=cache).path


RESNET18 = str(network_path("resnet18"))


def _args(args: tuple[str, ...]) -> list[str]:
    """`--network resnet18` -> the library file; `--layer X` alone -> a layer of ResNet-18."""
    out = [RESNET18 if a == "resnet18" and i and args[i - 1] == "--network" else a for i, a in enumerate(args)]
    if "--layer" in out and "--network" not in out:
        out += ["--network", RESNET18]
    return [*out, "--quiet"]


def metrics(binary: Path, *args: str, hw: HwConfig | None = None) -> dict:
    r = run(binary, _args(args), hw)
    assert r.infeasible is None, r.infeasible
    return dict(r.metrics)


def infeasible(binary: Path, *args: str, hw: HwConfig | None = None) -> str:
    r = run(binary, _args(args), hw)
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


def test_zu_parts_take_their_board_clock_and_port(sim):
    m = metrics(sim, "--layer", "C9", hw=HwConfig(part="xczu3eg"))
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
def test_in_sample_fit_within_20_percent(sim, layer, vthread, column):
    """In sample: the constants were fitted on these very points (bench/vta_fit.py). The
    out-of-sample check (leave one layer out) is the bench's; its figures are in the README."""
    point = next(p for p in _points() if p["layer"] == layer)
    m = metrics(sim, "--layer", layer, "--schedule", "best", "--vthread", vthread)
    assert m["gops"] == pytest.approx(float(point[column]), rel=0.20)


# a reduced leave-one-layer-out fit (bench/vta_fit.py's grid is 2,520 points and three descent
# rounds from three starts, ~20 s per layer; this: the 8-point coarse grid, one round, one start,
# ~1.5 s). The full fit's worst out-of-sample error is 21.1% (C5 without virtual threads, README);
# the reduced fit must predict the held-out layer within LOO_BOUND, with and without virtual threads.
LOO_BOUND = 0.25


@pytest.mark.parametrize("held", ["C3", "C5"])
def test_leave_one_layer_out_predicts_the_held_out_layer(sim, tmp_path, held):
    """Out of sample: the timing constants fitted on the other four published layers predict
    this 1x1 layer's GOPS, and its virtual-thread gain, within LOO_BOUND."""
    import itertools
    from concurrent.futures import ThreadPoolExecutor

    from tuner.vta.fit import COARSE, VT, Simulator, fit, gain, points

    pts = points()
    s = Simulator(pts, tmp_path, binary=sim)
    grid = [dict(zip(COARSE, v)) for v in itertools.product(*COARSE.values())]
    with ThreadPoolExecutor(1) as pool:
        constants = fit(s, grid, {p["layer"] for p in pts} - {held}, pool, starts=1, rounds=1)
    pred = s.gops(constants)
    point = next(p for p in pts if p["layer"] == held)
    for vt, column in VT:
        assert pred[(held, vt)] == pytest.approx(float(point[column]), rel=LOO_BOUND), (vt, constants)
    published = float(point["gops_vthread"]) / float(point["gops_no_vthread"])
    assert gain(pred, held) == pytest.approx(published, rel=LOO_BOUND), constants


@pytest.mark.parametrize("layer", ["C3", "C5"])
def test_vthread_gain_of_1x1_layers_within_20_percent(sim, layer):
    point = next(p for p in _points() if p["layer"] == layer)
    off = metrics(sim, "--layer", layer, "--schedule", "best", "--vthread", "off")["gops"]
    on = metrics(sim, "--layer", layer, "--schedule", "best", "--vthread", "on")["gops"]
    published = float(point["gops_vthread"]) / float(point["gops_no_vthread"])
    assert on / off == pytest.approx(published, rel=0.20)


@pytest.mark.parametrize("layer", ["C8", "C11"])
def test_vthreads_overlap_1x1_stride2_layers(sim, layer):
    """Issue #13: these got exactly zero gain; TVM's per-thread tokens let one thread's loads
    overlap the other's GEMMs and epilogue."""
    off = metrics(sim, "--layer", layer, "--schedule", "best", "--vthread", "off")["gops"]
    on = metrics(sim, "--layer", layer, "--schedule", "best", "--vthread", "on")["gops"]
    assert on > 1.05 * off


def test_one_thread_chains_load_compute_store(sim):
    """Without virtual threads TVM's tokens serialise each tile: load, GEMM, ALU, store, and the
    next tile's reset waits for the store, so the busy times add up to the cycles."""
    m = metrics(sim, "--layer", "C9", "--schedule", "1,14,14,8,8,1,1")
    busy = m["load_busy"] + m["compute_busy"] + m["store_busy"]
    assert m["cycles"] == pytest.approx(busy, rel=0.02)
    two = metrics(sim, "--layer", "C9", "--schedule", "1,14,14,4,4,2,1")
    assert two["cycles"] < 0.9 * (two["load_busy"] + two["compute_busy"] + two["store_busy"])


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


def check_functional(binary, tmp_path, shape, schedule="best", extra=(), hw=None):
    h, w_, ic, oc, k, s = shape[:6]
    p = shape[6] if len(shape) > 6 else k // 2
    n = shape[7] if len(shape) > 7 else None
    m = metrics(binary, "--shape", ",".join(map(str, shape)), "--schedule", schedule,
                "--mode", "functional", "--dump", str(tmp_path), *extra, hw=hw)
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
def test_functional_other_hardware(sim, tmp_path, hw, shape):
    check_functional(sim, tmp_path, shape, hw=hw)


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


def test_infeasible_instruction_fields(sim):
    assert "16-bit field" in infeasible(sim, "--shape", "1,70000,16,16,1,1", "--schedule", "1,1,10,1,1,1,1")
    assert "padding" in infeasible(sim, "--shape", "40,40,16,16,3,1,16")
    assert "micro-op index fields do not fit 32 bits" in infeasible(sim, "--network", "resnet18",
                                                                    hw=HwConfig(log_wgt_buff_size=19))
    assert "GEMM instruction needs 131 > 128 bits" in infeasible(sim, "--network", "resnet18",
                                                                 hw=HwConfig(log_uop_buff_size=17))


def test_infeasible_part_does_not_fit(sim):
    assert "does not fit xc7z020" in infeasible(sim, "--network", "resnet18", hw=HwConfig(log_block_in=5, log_block_out=5))
    # the same core fits the big UltraScale+ part
    assert metrics(sim, "--layer", "C9", hw=HwConfig(log_block_in=5, log_block_out=5, part="xczu7ev"))["dsp"] == 516


def test_best_search_reports_no_legal_schedule(sim):
    tiny = HwConfig(log_wgt_buff_size=11)  # 8 weight elements < 3x3
    assert "no legal schedule" in infeasible(sim, "--layer", "C9", "--schedule", "best", hw=tiny)


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
    for args in (["--network", RESNET18, "--layer", "C99"], ["--vthread", "maybe"], ["--schedule", "1,2,3"], ["--bogus"],
                 ["--layer", "C9"], [], ["--network", RESNET18, "--log-batch=9"], ["--network", RESNET18, "--part", "xc7"]):
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


def test_network_runs_one_batch_of_batch_images(sim):
    m = metrics(sim, "--network", "resnet18", "--schedule", "best", hw=HwConfig(log_batch=1))
    assert m["batch"] == 2 and m["ms_per_image"] == pytest.approx(m["latency_ms"] / 2)
    assert m["gemm_count"] == 6_623_232           # 2x the MACs on a 2x wider GEMM core
    assert m["peak_gops"] == pytest.approx(102.4)


def test_no_legal_schedule_reason_names_the_cause(sim):
    reason = infeasible(sim, "--layer", "C9", "--schedule", "best", hw=HwConfig(log_wgt_buff_size=11))
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
    r = run(sim, ["--network", RESNET18, "--schedule", "default", "--schedule", "C9=1,14,14,1,4,2,1"])
    c9 = next(l for l in r.table.splitlines() if l.startswith("C9 "))
    assert "1,14,14,1,4,2,1" in c9.split()[2]
    assert r.metrics["gemm_count"] == base["gemm_count"] and r.metrics["cycles"] != base["cycles"]
    assert "C9: " in infeasible(sim, "--network", "resnet18", "--schedule", "C9=1,14,14,1,16,1,1")
    p = subprocess.run([str(sim), "--network", RESNET18, "--layer", "C9", "--schedule", "C2=1,1,1,1,1,1,1"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "no such layer" in p.stderr


# ---------------------------------------------------------------- run-time vs compile-time hardware

AGREE_CONFIGS = [
    HwConfig(),
    HwConfig(log_block_in=3, log_block_out=5, log_wgt_buff_size=17),
    HwConfig(log_batch=1, log_acc_buff_size=16, log_inp_buff_size=16),
    HwConfig(part="xczu3eg", log_uop_buff_size=14),
    HwConfig(gemm_ii=2, clock_mhz=150, dram_bytes_per_cycle=16),
    HwConfig(log_block_in=5, log_block_out=5, part="xczu7ev"),
    HwConfig(log_wgt_buff_size=19),                       # infeasible: both must say why, alike
]


def _tune_line(binary: Path, args: list[str]) -> dict:
    p = subprocess.run([str(binary), *args, "--quiet"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout.strip().splitlines()[-1][len("@tune "):])
    doc.get("metrics", {}).pop("eval_us", None)       # the only wall-clock figure
    return doc


@pytest.mark.parametrize("hw", AGREE_CONFIGS, ids=[f"hw{i}" for i in range(len(AGREE_CONFIGS))])
def test_runtime_and_fixed_hardware_agree(sim, cache, hw):
    fixed = build(cache=cache, fixed=hw).path
    for workload in (["--network", RESNET18, "--schedule", "best"],
                     ["--network", RESNET18, "--schedule", "default", "--vthread", "off"],
                     ["--shape", "9,7,32,64,3,2", "--schedule", "best", "--mode", "functional"]):
        assert _tune_line(sim, [*hw.args(), *workload]) == _tune_line(fixed, workload), (hw, workload)


# The schedule search makes each candidate's instruction stream only as far as its simulation
# reaches, and stops a simulation once the work still ahead of a module (stream_work's closed
# form) shows it cannot beat the best so far. -DVTA_PLAIN_SEARCH is the search without both
# (whole stream, then simulate to the best so far): every figure, the chosen schedules and the
# count of simulated candidates must be equal. -DVTA_CHECK_WORK exits 3 when the closed form
# differs from the sum of a finished stream's own instructions.
SMALLEST = ["--log-block", "3", "--log-uop-buff-size", "13", "--log-inp-buff-size", "13",
            "--log-wgt-buff-size", "16", "--log-acc-buff-size", "15"]
SEARCH_CASES = [
    ["--network", RESNET18],
    ["--network", RESNET18, *SMALLEST],                 # the seeded smallest design
    ["--network", str(network_path("mobilenet_v1_pw")), "--log-batch", "1", "--part", "xczu3eg"],
    ["--network", RESNET18, "--vthread", "off", "--epilogue", "clip", "--gemm-ii", "2"],
    ["--shape", "15,15,48,96,5,1,2", "--model", "pad_cyc=40", "--dram-bytes-per-cycle", "2"],  # padding-bound
    ["--shape", "33,9,32,64,3,2,3,2", "--log-block-in", "3", "--log-wgt-buff-size", "16", "--model", "row_ovh=40"],  # edges, batch 2
    ["--shape", "7,7,512,512,3,1", "--log-block-out", "5", "--model", "insn_ovh=10"],
    # a candidate that does not encode (src_factor_in 512 in 9 bits: 16x32 input tile), skipped alike
    ["--shape", "28,30,16,16,3,1,1", "--log-inp-buff-size", "13", "--log-acc-buff-size", "15"],
]


@pytest.fixture(scope="session")
def plain_search_sim(cache) -> Path:
    return build(cache=cache, extra_cflags=["-DVTA_PLAIN_SEARCH"]).path


@pytest.fixture(scope="session")
def checked_search_sim(cache) -> Path:
    return build(cache=cache, extra_cflags=["-DVTA_CHECK_WORK"]).path


@pytest.mark.parametrize("args", SEARCH_CASES, ids=[f"case{i}" for i in range(len(SEARCH_CASES))])
def test_search_shortcuts_change_nothing(sim, plain_search_sim, checked_search_sim, args):
    argv = [*args, "--schedule", "best"]
    if "--network" not in args:
        argv.append("--mode=functional")      # also runs the chosen schedule's stream functionally
    plain = _tune_line(plain_search_sim, argv)
    assert plain["metrics"]["search_simulated"] > 1
    assert _tune_line(sim, argv) == plain
    assert _tune_line(checked_search_sim, argv) == plain


def test_fixed_hardware_build_refuses_hardware_arguments(cache):
    fixed = build(cache=cache, fixed=HwConfig(log_batch=1)).path
    p = subprocess.run([str(fixed), "--network", RESNET18, "--log-batch=0"], capture_output=True, text=True)
    assert p.returncode == 2 and "fixed" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_options_take_inline_values(sim):
    a = metrics(sim, "--network", "resnet18", hw=HwConfig(part="xczu3eg", log_block_out=5))
    p = subprocess.run([str(sim), f"--network={RESNET18}", "--part", "xczu3eg", "--log-block-out", "5", "--quiet"],
                       capture_output=True, text=True)
    b = json.loads(p.stdout.splitlines()[-1][6:])["metrics"]
    a.pop("eval_us"); b.pop("eval_us")
    assert a == b


# ---------------------------------------------------------------- hostile input under AddressSanitizer

HOSTILE = [  # (argv, expected exit status)
    (["--shape", "1,1,16,16,1,1,0,10080", "--schedule", "best"], 0),     # issue #13: 72 divisors > dB[64]
    (["--shape", "720720,1,16,16,1,1,0,1", "--schedule", "best"], 0),   # 240 divisors of H
    (["--shape", "720,1,16,16,1,1,0,24", "--schedule", "best"], 0),     # divisors of H and N at once
    (["--shape", "55440,55440,16,16,1,1", "--schedule", "best"], 2),    # tensors beyond the simulator
    (["--shape", "1,1,1000000,1000000,1,1"], 2),
    (["--shape", "1,1,16,16,1,1,0,2000000000"], 2),
    (["--shape", "100,100,16,16,3,1,1000000000"], 2),
    (["--shape", "-5,3,16,16,1,1"], 2),
    (["--shape", "8,8,16,16,9,1"], 2),
    (["--shape", "1,1,16,16,1,1,0,0"], 2),
    (["--shape", "1024,1024,16,16,1,1", "--schedule", "1,1,1,1,1,1,1"], 2),   # instruction stream too long
    (["--shape", "8,8,16,16,3,1", "--schedule", "1000000000,1,1,1,1,1,1"], 0),  # infeasible, not a crash
    (["--shape", "8,8,16,16,3,1", "--schedule", "-1,-1,-1,-1,-1,-1,-1"], 0),
    (["--shape", "8,8,16,16,3,1", "--schedule", "1,2,3"], 2),
    (["--shape", "512,512,256,256,3,1", "--mode", "functional"], 2),  # functional mode's own limit
    (["--shape", "8,8,16,16,3,1", "--mode", "functional", "--dump", "/nonexistent/dir"], 2),
    (["--shape", "8,8,16,16,3,1", "--log-block-in=99"], 2),
    (["--shape", "8,8,16,16,3,1", "--clock-mhz=nan"], 2),
    (["--shape", "8,8,16,16,3,1", "--seed", "-1"], 2),
    (["--shape", "8,8,16,16,3,1", "--repeat=0"], 2),
    (["--shape", "8,8,16,16,3,1", "--model", "dram_eff"], 2),
    (["--shape", "8,8,16,16,3,1", "--" + "x" * 5000 + "=1"], 2),
    (["--shape", "8,8,16,16,3,1", *[a for i in range(40) for a in ("--schedule", f"L{i}=1,1,1,1,1,1,1")]], 2),
    (["--shape", "8,8,16,16,3,1", "--schedule", "x" * 100 + "=1,1,1,1,1,1,1"], 2),
    (["--shape", "8,8,16,16,3,1", "--log-batch=4", "--log-block=6", "--log-acc-buff-size=8"], 0),
]

BAD_NETWORKS = {
    "long_line": "name = \"" + "x" * 3000 + "\"\n",
    "too_many": "[[conv]]\nname = \"a\"\nh = 1\nw = 1\nic = 16\noc = 16\nk = 1\ns = 1\n" * 300,
    "duplicate": "[[conv]]\nname = \"a\"\nh = 1\nw = 1\nic = 16\noc = 16\nk = 1\ns = 1\n" * 2,
    "long_name": "[[conv]]\nname = \"" + "n" * 100 + "\"\n",
    "unterminated": "[[conv]]\nname = \"abc\n",
    "garbage": "\x00\x01\xff\xfe[[[\n",
    "huge": "[[conv]]\nname = \"a\"\nh = 99999999999999999999\n",
    "negative": "[[conv]]\nname = \"a\"\nh = -4\nw = 1\nic = 16\noc = 16\nk = 1\ns = 1\n",
    "missing": "[[conv]]\nname = \"a\"\nh = 1\n",
    "empty": "# nothing\n",
    "too_big": "[[conv]]\nname = \"a\"\nh = 100000\nw = 100000\nic = 64\noc = 16\nk = 1\ns = 1\n",
}


@pytest.fixture(scope="session")
def asan_sim(cache) -> Path:
    flags = ["-g", "-O1", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    try:
        return build(cache=cache, extra_cflags=flags).path
    except Exception as e:  # no libasan/libubsan for this compiler
        pytest.skip(f"cannot build with sanitizers: {e}")


def _run_asan(binary: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(binary), *args, "--quiet"], capture_output=True, text=True, timeout=120, env=env,
                          errors="replace")


@pytest.mark.parametrize("args,status", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
def test_hostile_arguments_under_asan(asan_sim, args, status):
    p = _run_asan(asan_sim, args)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr[-3000:]
    assert p.returncode == status, (p.returncode, p.stderr[-500:], p.stdout[-300:])
    if status == 2:
        assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("vta_sim: error: "), p.stderr
    else:
        assert p.stdout.splitlines()[-1].startswith("@tune {")


@pytest.mark.parametrize("name", sorted(BAD_NETWORKS))
def test_hostile_network_files_under_asan(asan_sim, tmp_path, name):
    f = tmp_path / f"{name}.toml"
    f.write_bytes(BAD_NETWORKS[name].encode("latin-1"))
    p = _run_asan(asan_sim, ["--network", str(f), "--schedule", "best"])
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr[-3000:]
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert str(f) in p.stderr


def test_every_library_network_under_asan(asan_sim):
    from tuner.library import names
    for name in names("network"):
        p = _run_asan(asan_sim, ["--network", str(network_path(name)), "--schedule", "best"])
        assert p.returncode == 0 and "Sanitizer" not in p.stderr, (name, p.stderr[-2000:])


# ---------------------------------------------------------------- networks as data

def test_simulator_and_python_read_networks_alike(sim):
    from tuner.library import names
    assert {"resnet18", "mobilenet_v1_pw"} <= set(names("network"))
    for name in names("network"):
        net = load_network(name)
        r = run(sim, ["--network", str(net.path), "--schedule", "default"])
        assert r.infeasible is None
        assert r.metrics["ops"] == 2 * net.macs()
        listed = [line.split()[0] for line in r.table.splitlines()[1:]]
        assert listed == [c.name for c in net.layers if c.count > 0]


def test_resnet18_network_file_is_the_benchmark_list():
    net = load_network("resnet18")
    assert [c.name for c in net.layers] == [f"C{i}" for i in range(2, 13)]
    assert net.macs() == 6_623_232 * 256
    assert net.layer("C9") == load_network(str(net.path)).layer("C9")


def test_bad_network_file_python_side(tmp_path):
    from tuner.errors import BadInput
    f = tmp_path / "n.toml"
    f.write_text("[[conv]]\nname = \"a\"\nh = 1\nw = 1\nic = 16\noc = 16\nk = 1\ns = 1\nfoo = 2\n")
    with pytest.raises(BadInput, match=r"n\.toml: conv\[0\]\.foo"):
        load_network(str(f))
    with pytest.raises(BadInput, match="unknown network 'nope'"):
        load_network("nope")


def test_study_args_find_the_network_through_the_library(tmp_path):
    from tuner.errors import BadInput
    from tuner.study import load_study
    s = load_study("resnet18-vta")
    i = s.program.args.index("--network")
    assert Path(s.program.args[i + 1]) == network_path("resnet18")
    bad = tmp_path / "bad.toml"
    text = (ROOT / "search_spaces" / "resnet18-vta.toml").read_text().replace("{network:resnet18}", "{network:nope}")
    text = text.replace('file = "knobs/vta.toml"', f'file = "{ROOT / "search_spaces" / "knobs" / "vta.toml"}"')
    bad.write_text(text.replace('sources = ["vta_sim/vta_sim.c"]', f'sources = ["{source_dir() / "vta_sim.c"}"]'))
    with pytest.raises(BadInput, match=r"bad\.toml: program\.args: unknown network 'nope'"):
        load_study(str(bad))


def test_user_network_from_tune_library(tmp_path):
    (tmp_path / "search_spaces" / "networks").mkdir(parents=True)
    (tmp_path / "search_spaces" / "networks" / "tiny.toml").write_text(
        'name = "tiny"\n[[conv]]\nname = "L1"\nh = 8\nw = 8\nic = 32\noc = 32\nk = 3\ns = 1\ncount = 2\n')
    env = {"TUNE_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "TUNE_LIBRARY": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", "tuner.vta", "--network", "tiny", "--format", "json"],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert p.returncode == 0, p.stderr
    m = json.loads(p.stdout)["metrics"]
    assert m["ops"] == 2 * 2 * 8 * 8 * 32 * 32 * 9


# ---------------------------------------------------------------- the new hardware knobs

def test_batch_knob_runs_more_images_per_pass(sim):
    one = metrics(sim, "--network", "resnet18", "--schedule", "best")
    four = metrics(sim, "--network", "resnet18", "--schedule", "best", "--batch", "4")
    assert four["batch"] == 4 and four["ops"] == 4 * one["ops"]
    assert four["ms_per_image"] == pytest.approx(four["latency_ms"] / 4)
    assert four["ms_per_image"] < one["ms_per_image"]          # weights reused across images
    assert "not divisible" in infeasible(sim, "--network", "resnet18", "--batch", "3", hw=HwConfig(log_batch=1))


def test_gemm_ii_halves_peak_and_multipliers(sim):
    one = metrics(sim, "--network", "resnet18", "--schedule", "best")
    two = metrics(sim, "--network", "resnet18", "--schedule", "best", hw=HwConfig(gemm_ii=2))
    assert two["peak_gops"] == pytest.approx(one["peak_gops"] / 2)
    assert two["dsp"] < one["dsp"] and two["lut"] < one["lut"]
    assert two["latency_ms"] > one["latency_ms"]


@pytest.mark.parametrize("part,mhz,bpc", [("xc7z020", 100, 8), ("xczu3eg", 333, 16), ("xczu7ev", 333, 16)])
def test_part_knob_sets_clock_bandwidth_and_budget(sim, part, mhz, bpc):
    m = metrics(sim, "--layer", "C9", hw=HwConfig(part=part))
    assert m["clock_mhz"] == mhz and m["bw_roof_gbs"] == pytest.approx(mhz * bpc / 1000)
    budget = {"xc7z020": 220, "xczu3eg": 360, "xczu7ev": 1728}[part]
    assert m["dsp_frac"] == pytest.approx(m["dsp"] / budget, abs=1e-6)


@pytest.mark.parametrize("study", ["resnet18-vta", "resnet18-vta-wide", "mobilenet-vta"])
def test_vta_studies_render_to_simulator_arguments(sim, study):
    """Every knob value of each VTA study becomes an argument the one binary accepts."""
    from tuner.study import load_study
    s = load_study(study)
    assert s.target == "vta-sim"
    assert all(k.to == "arg" for k in s.space.knobs.values())
    base = {k.name: k.default for k in s.space.knobs.values()}
    for knob in s.space.knobs.values():
        for value in getattr(knob, "values", None) or knob.choices:
            config = {**base, knob.name: value}
            args = [a for k in s.space.knobs.values() for a in k.render(config[k.name]).args]
            p = subprocess.run([str(sim), *s.program.args, *args], capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, (study, knob.name, value, p.stderr)
            assert p.stdout.splitlines()[-1].startswith("@tune {")


# ---------------------------------------------------------------- the exact front (bench/vta_exhaustive.py)

@pytest.fixture()
def tiny_study(tmp_path, monkeypatch):
    """A 3-knob cut of resnet18-vta (75 configurations) in a user library."""
    lib = tmp_path / "lib" / "search_spaces"
    lib.mkdir(parents=True)
    text = (ROOT / "search_spaces" / "resnet18-vta.toml").read_text()
    knobs = ROOT / "search_spaces" / "knobs" / "vta.toml"
    text = text.replace('include = [{ file = "knobs/vta.toml", tags = ["core"] }]',
                        f'include = [{{ file = "{knobs}", names = ["log_block_out", "log_wgt_buff_size", "log_acc_buff_size"] }}]')
    text = text.split("[[constraints]]")[0]
    text = re.sub(r"(?ms)^seeds = \[.*?\}\]\s*$", "", text)     # the obvious points: a multi-line array
    text = "\n".join(line for line in text.splitlines() if not line.startswith("baseline"))
    (lib / "tiny-vta.toml").write_text(text)
    monkeypatch.setenv("TUNE_LIBRARY", str(tmp_path / "lib"))
    monkeypatch.setenv("TUNE_CACHE", str(tmp_path / "cache"))
    return "tiny-vta"


def test_exhaustive_front_is_exact_and_cached(tiny_study, tmp_path):
    from tuner import pareto
    from tuner.vta.exhaustive import evaluate_all, exact_front
    ev = evaluate_all(tiny_study, jobs=2)
    assert not ev.cached and len(ev.configs) == 3 * 5 * 5 and ev.feasible.sum() > 10
    assert all((r is None) == f for r, f in zip(ev.reasons, ev.feasible))
    front = ev.front()
    # brute force: a feasible row is on the front iff no feasible row dominates it
    rows = [tuple(v) for v in ev.values if np.all(np.isfinite(v))]
    brute = {r for r in rows if not any(all(o <= x for o, x in zip(q, r)) and q != r for q in rows)}
    assert {tuple(v) for v in front.values} == brute
    again = evaluate_all(tiny_study, jobs=1)
    assert again.cached and np.array_equal(np.nan_to_num(again.values, nan=-1), np.nan_to_num(ev.values, nan=-1))
    ref = (500.0, 1.5, 1.5)
    assert exact_front(tiny_study).hypervolume(ref) == pytest.approx(pareto.hypervolume(front.values, front.directions, ref))
    # the front's hypervolume is the best any subset of the space reaches
    assert front.hypervolume(ref) >= pareto.hypervolume(ev.values[ev.feasible][:10], ev.directions, ref)


def test_exhaustive_runs_what_the_study_target_runs(tiny_study, tmp_path):
    """One configuration through the engine's own target gives the exhaustive row exactly."""
    from tuner.study import load_study
    from tuner.targets import load_target, make_target
    from tuner.vta.exhaustive import evaluate_all
    ev = evaluate_all(tiny_study, jobs=2)
    spec = load_study(tiny_study)
    target = make_target(load_target(spec.target), tmp_path / "builds")
    i = int(np.flatnonzero(ev.feasible)[0])
    rendering = spec.space.render(ev.configs[i])
    built = target.build(spec.program, rendering)
    m = target.run(built, spec.program, rendering)
    assert [o.value(m.metrics) for o in spec.objectives] == list(ev.values[i])


# ---------------------------------------------------------------- the flagship as a user runs it

def test_flagship_explore_reports_exact_ratios_for_the_simulator(lab):
    """`tune explore resnet18-vta`: the simulator's latency is deterministic (method "reported",
    one launch), so the summary gives the ratio of the values, never "not confirmed" (confirmation
    in ABBA pairs is for noisy timings) and no contention warning: nothing watches what else ran
    (/proc is not read around a deterministic run; the record says so)."""
    proc = lab.tune("explore", "resnet18-vta", "--trials", "14", "--seed", "0", "--surrogate", "off",
                    "--no-progress", "--no-export")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "not confirmed" not in out and "paired ABBA" not in out and "shared their run core" not in proc.stderr
    recs = [r for r in lab.records(ROOT / "search_spaces" / "resnet18-vta.toml") if r.status == "complete"]
    base = next(r for r in recs if r.baseline)
    # the study's obvious point (the smallest design, trial 1) beats the baseline's DSP share
    best = min(recs, key=lambda r: r.values["dsp_frac"])
    assert best.values["dsp_frac"] < base.values["dsp_frac"]
    ratio = base.values["dsp_frac"] / best.values["dsp_frac"]
    assert f"best dsp_frac vs baseline: {ratio:.3f}x (exact; trial {best.number})" in out
    assert all(r.environment.get("watched") is False and "other_frac" not in r.environment for r in recs)

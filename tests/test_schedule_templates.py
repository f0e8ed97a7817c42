"""Schedule templates (conv2d, depthwise) and the MobileNet block: render, compile, run, compare.

Every rendered schedule is compiled with gcc (argument lists, never a shell), run on a small
shape, and compared with a float64 numpy convolution; all schedules of one template must
also be bit-identical to each other and to the -O0 build (the basis of verify = "exact").
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest

from tuner.knobs import make_knob
from tuner.template import render_template

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "programs"
SCHED = PROGRAMS / "conv2d_schedule"
CONV_T = SCHED / "conv2d.c.j2"
DW_T = SCHED / "depthwise.c.j2"
MOBILENET = PROGRAMS / "mobilenet" / "mobilenet_block.c"

GCC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(GCC is None, reason="gcc not installed")

FAST = ["-O2", "-march=native", "-fopenmp"]
RUN_ENV = {"TUNE_WARMUP": "0", "TUNE_MIN_REPS": "1", "TUNE_MAX_REPS": "1", "OMP_NUM_THREADS": "2"}


# --- numpy side -------------------------------------------------------------------------
def values(n: int, salt: int) -> np.ndarray:
    """The C side's conv_value(i, salt) for i in range(n), bit for bit."""
    i = np.arange(n, dtype=np.int64)
    return ((i * 37 + salt) % 101).astype(np.float32) / np.float32(101.0) - np.float32(0.5)


def conv2d_ref(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """3x3, stride 1, pad 1 conv in float64. x: CI x H x W, w: CO x CI x 3 x 3."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))  # CI,H,W,3,3
    return np.einsum("chwij,ocij->ohw", win, w.astype(np.float64))


def depthwise_ref(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))  # C,H,W,3,3
    return np.einsum("chwij,cij->chw", win, w.astype(np.float64))


# --- build and run ----------------------------------------------------------------------
def compile_c(src: Path, exe: Path, cflags: list[str], cc: str = "gcc") -> None:
    cmd = [cc, "-std=c11", *cflags, f"-I{PROGRAMS}", f"-I{src.parent}", str(src), "-o", str(exe), "-lm"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr[-3000:]}"


def run_exe(command: list[str], tmp: Path, env_extra: dict | None = None) -> tuple[dict, bytes]:
    out = tmp / f"out-{abs(hash(tuple(command)))}.bin"
    env = {**os.environ, **RUN_ENV, "TUNE_OUTPUT": str(out), **(env_extra or {})}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    line = [l for l in done.stdout.splitlines() if l.startswith("@tune ")][-1]
    report = json.loads(line[len("@tune "):])
    return report, (out.read_bytes() if out.exists() else b"")


def build_template(template: Path, variables: dict, tmp: Path, name: str, cflags=FAST) -> Path:
    src = tmp / f"{name}.c"
    src.write_text(render_template(template, variables))
    exe = tmp / name
    compile_c(src, exe, cflags)
    return exe


# --- conv2d -----------------------------------------------------------------------------
CONV_SHAPE = {"H": 6, "W": 6, "CI": 8, "CO": 16}
CONV_CASES = [
    # every value of parallel and vec; orders given as lists and as strings;
    # remainders (tile_w % unroll_w != 0) and unroll_w > tile_w
    dict(tile_co=16, tile_h=6, tile_w=6, tile_ci=8, order=["co", "h", "w", "ci"], unroll_w=4, vec=16, parallel="none"),
    dict(tile_co=8, tile_h=2, tile_w=3, tile_ci=2, order=["ci", "w", "h", "co"], unroll_w=2, vec=8, parallel="co"),
    dict(tile_co=4, tile_h=3, tile_w=1, tile_ci=4, order="h,ci,co,w", unroll_w=1, vec=4, parallel="h"),
    dict(tile_co=16, tile_h=1, tile_w=2, tile_ci=1, order=["w", "co", "ci", "h"], unroll_w=7, vec=1, parallel="w"),
    dict(tile_co=8, tile_h=6, tile_w=6, tile_ci=8, order="co,ci,h,w", unroll_w=6, vec=8, parallel="co"),
]


def conv_inputs(shape: dict) -> tuple[np.ndarray, np.ndarray]:
    ci, co, h, w = shape["CI"], shape["CO"], shape["H"], shape["W"]
    x = values(ci * h * w, 11).reshape(ci, h, w)
    k = values(co * ci * 9, 29).reshape(co, ci, 3, 3)
    return x, k


def test_conv2d_schedules_match_numpy_and_each_other(tmp_path):
    x, k = conv_inputs(CONV_SHAPE)
    ref = conv2d_ref(x, k)
    checksums = set()
    first_out = None
    for n, case in enumerate(CONV_CASES):
        exe = build_template(CONV_T, {**CONV_SHAPE, **case}, tmp_path, f"conv{n}")
        report, raw = run_exe([str(exe)], tmp_path)
        assert "infeasible" not in report, (case, report)
        got = np.frombuffer(raw, dtype=np.float32).reshape(ref.shape)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5, err_msg=str(case))
        assert report["metrics"]["gflops"] > 0
        checksums.add(report["checksum"])
        first_out = first_out if first_out is not None else raw
    assert len(checksums) == 1, f"schedules differ bit-wise: {checksums}"
    # the -O0 build (how the engine builds the reference) gives the same bytes
    exe0 = build_template(CONV_T, {**CONV_SHAPE, **CONV_CASES[1]}, tmp_path, "conv_ref", cflags=["-O0"])
    report0, raw0 = run_exe([str(exe0)], tmp_path)
    assert raw0 == first_out and report0["checksum"] in checksums


def test_conv2d_every_order_renders_and_parallel_goes_on_the_named_loop():
    for order in itertools.permutations(["co", "h", "w", "ci"]):
        for par in ["none", "co", "h", "w"]:
            text = render_template(CONV_T, {**CONV_SHAPE, **CONV_CASES[0], "order": list(order), "parallel": par})
            loops = [l.strip() for l in text.splitlines() if l.strip().startswith("for (int ") and "_o = 0" in l]
            assert [l.split()[2].removesuffix("_o") for l in loops] == list(order)
            lines = text.splitlines()
            pragmas = [i for i, l in enumerate(lines) if "omp parallel for" in l]
            if par == "none":
                assert pragmas == []
            else:
                assert len(pragmas) == 1 and f"int {par}_o = 0" in lines[pragmas[0] + 1]


def test_conv2d_infeasible_tiles_are_reported(tmp_path):
    case = {**CONV_CASES[0], "tile_co": 5}
    exe = build_template(CONV_T, {**CONV_SHAPE, **case}, tmp_path, "conv_bad")
    report, _ = run_exe([str(exe)], tmp_path)
    assert "tile_co=5 does not divide co=16" in report["infeasible"]


def test_missing_variable_is_a_clear_error():
    import jinja2

    variables = {**CONV_SHAPE, **CONV_CASES[0]}
    del variables["tile_ci"]
    with pytest.raises(jinja2.UndefinedError, match=r"conv2d\.c\.j2.*'tile_ci' is undefined"):
        render_template(CONV_T, variables)
    with pytest.raises(jinja2.UndefinedError, match="'CO' is undefined"):
        render_template(CONV_T, {k: v for k, v in variables.items() if k != "CO"} | {"tile_ci": 8})


# --- depthwise --------------------------------------------------------------------------
DW_SHAPE = {"H": 10, "W": 20, "C": 6}
DW_CASES = [
    dict(tile_c=6, tile_h=10, tile_w=20, order=["c", "h", "w"], unroll_h=3, vec=16, parallel="none"),
    dict(tile_c=2, tile_h=5, tile_w=10, order="w,h,c", unroll_h=2, vec=8, parallel="c"),
    dict(tile_c=1, tile_h=2, tile_w=4, order=["h", "c", "w"], unroll_h=4, vec=4, parallel="h"),
    dict(tile_c=3, tile_h=1, tile_w=5, order=["w", "c", "h"], unroll_h=1, vec=1, parallel="w"),
]


def test_depthwise_schedules_match_numpy_and_each_other(tmp_path):
    c, h, w = DW_SHAPE["C"], DW_SHAPE["H"], DW_SHAPE["W"]
    x = values(c * h * w, 11).reshape(c, h, w)
    k = values(c * 9, 29).reshape(c, 3, 3)
    ref = depthwise_ref(x, k)
    outs = set()
    for n, case in enumerate(DW_CASES):
        exe = build_template(DW_T, {**DW_SHAPE, **case}, tmp_path, f"dw{n}")
        report, raw = run_exe([str(exe)], tmp_path)
        assert "infeasible" not in report, (case, report)
        got = np.frombuffer(raw, dtype=np.float32).reshape(ref.shape)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, err_msg=str(case))
        outs.add(raw)
    exe0 = build_template(DW_T, {**DW_SHAPE, **DW_CASES[2]}, tmp_path, "dw_ref", cflags=["-O0"])
    outs.add(run_exe([str(exe0)], tmp_path)[1])
    assert len(outs) == 1, "depthwise schedules are not bit-identical"


# --- the studies' domains are feasible for their shapes ---------------------------------
@pytest.mark.parametrize("study, dims", [
    ("conv2d-schedule.toml", {"co": "CO", "h": "H", "w": "W", "ci": "CI"}),
    ("depthwise-schedule.toml", {"c": "C", "h": "H", "w": "W"}),
])
def test_study_tile_domains_divide_the_shape_and_baseline_renders(study, dims, tmp_path):
    spec = tomllib.loads((ROOT / "search_spaces" / study).read_text())
    params, knobs = spec["program"]["params"], spec["knobs"]
    for d, p in dims.items():
        knob = make_knob(f"tile_{d}", knobs[f"tile_{d}"], study)      # divisor knobs list their values
        for t in knob.values:
            assert params[p] % t == 0, f"{study}: tile_{d}={t} does not divide {p}={params[p]}"
    assert sorted(knobs["order"]["items"]) == sorted(dims)
    template = PROGRAMS / spec["program"]["template"]
    text = render_template(template, {**params, **spec["study"]["baseline"]})
    src = tmp_path / "baseline.c"
    src.write_text(text)
    exe = tmp_path / "baseline"
    compile_c(src, exe, ["-O2", "-march=native", "-fopenmp"])
    report, raw = run_exe([str(exe)], tmp_path)
    assert "infeasible" not in report and report["metrics"]["gflops"] > 0


# --- MobileNet block ----------------------------------------------------------------------
MB_ARGS = ["--hw", "9", "--cin", "12", "--cout", "10"]


def mobilenet_ref(hw: int, cin: int, cout: int) -> np.ndarray:
    x = values(cin * hw * hw, 11).reshape(cin, hw, hw)
    wdw = values(cin * 9, 29).reshape(cin, 3, 3)
    bdw = np.float32(0.25) * values(cin, 3)
    wpw = values(cout * cin, 47).reshape(cout, cin)
    bpw = np.float32(0.25) * values(cout, 5)
    mid = np.maximum(depthwise_ref(x, wdw) + bdw[:, None, None], 0.0)
    out = np.einsum("oc,chw->ohw", wpw.astype(np.float64), mid) + bpw[:, None, None]
    return np.maximum(out, 0.0)


@pytest.mark.parametrize("tiles", [
    [],                                                                   # defaults
    ["-DTILE_H=3", "-DTILE_CO=7", "-DTILE_P=50", "-DTILE_CI=5"],         # remainders everywhere
    ["-DTILE_H=100", "-DTILE_CO=1", "-DTILE_P=1", "-DTILE_CI=100"],      # tiles larger than dims
])
def test_mobilenet_block_matches_numpy(tiles, tmp_path):
    ref = mobilenet_ref(9, 12, 10)
    exe = tmp_path / "mb"
    compile_c(MOBILENET, exe, ["-O3", "-march=native", "-fopenmp", *tiles])
    report, raw = run_exe([str(exe), *MB_ARGS], tmp_path)
    got = np.frombuffer(raw, dtype=np.float32).reshape(ref.shape)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert report["metrics"]["gflop"] > 0
    exe0 = tmp_path / "mb0"
    compile_c(MOBILENET, exe0, ["-O0", *tiles])
    assert run_exe([str(exe0), *MB_ARGS], tmp_path)[1] == raw, "not bit-identical to -O0"


CROSS = shutil.which("aarch64-linux-gnu-gcc")
QEMU = shutil.which("qemu-aarch64")


@pytest.mark.skipif(not (CROSS and QEMU and Path("/usr/aarch64-linux-gnu").is_dir()),
                    reason="aarch64 cross toolchain or qemu-aarch64 missing")
def test_mobilenet_block_aarch64_under_qemu_is_bit_identical(tmp_path):
    native = tmp_path / "mb"
    compile_c(MOBILENET, native, ["-O2", "-fopenmp", "-DTILE_CO=3"])
    _, raw_native = run_exe([str(native), *MB_ARGS], tmp_path)
    arm = tmp_path / "mb-arm"
    compile_c(MOBILENET, arm, ["-O3", "-fopenmp", "-DTILE_CO=3", "-DTILE_P=20"], cc=CROSS)
    _, raw_arm = run_exe([QEMU, "-L", "/usr/aarch64-linux-gnu", str(arm), *MB_ARGS], tmp_path)
    assert raw_arm == raw_native

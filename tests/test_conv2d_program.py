"""programs/conv2d/conv2d.c follows the harness protocol and is exact across -O levels."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "programs" / "conv2d" / "conv2d.c"
SMALL = ["--h", "7", "--w", "5", "--c", "8", "--k", "4"]
QUICK_ENV = {"TUNE_WARMUP": "1", "TUNE_MIN_REPS": "3", "TUNE_MAX_REPS": "5"}

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


def build(tmp_path: Path, opt: str, extra=()) -> Path:
    exe = tmp_path / f"conv2d{opt}{''.join(extra)}".replace("=", "_")
    cmd = ["gcc", "-std=c11", opt, *extra, str(SRC), "-o", str(exe), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
    return exe


def run(exe: Path, args=SMALL, **env) -> dict:
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **QUICK_ENV, **env})
    assert proc.returncode == 0, proc.stderr
    lines = [l for l in proc.stdout.splitlines() if l.startswith("@tune ")]
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0][len("@tune "):])


def test_o0_and_o3_agree_and_samples_positive(tmp_path):
    results = {opt: run(build(tmp_path, opt)) for opt in ("-O0", "-O3")}
    for res in results.values():
        assert res["samples_ms"] and all(s > 0 for s in res["samples_ms"])
        assert len(res["checksum"]) == 16
        assert res["output_bytes"] == 4 * 7 * 5 * 4
        assert res["metrics"]["gflop"] == pytest.approx(2 * 4 * 8 * 9 * 7 * 5 * 1e-9)
    assert results["-O0"]["checksum"] == results["-O3"]["checksum"]


def test_all_o_levels_bit_identical(tmp_path):
    """fp32 without fast-math and without FMA (no -march) is bit-identical at every -O level."""
    sums = {opt: run(build(tmp_path, opt))["checksum"] for opt in ("-O0", "-O1", "-O2", "-O3", "-Os")}
    assert len(set(sums.values())) == 1, sums


def test_output_matches_numpy_reference(tmp_path):
    exe = build(tmp_path, "-O2")
    out_path = tmp_path / "out.bin"
    run(exe, TUNE_OUTPUT=str(out_path))
    got = np.fromfile(out_path, dtype=np.float32).reshape(4, 7, 5)

    # the same LCG as the C program
    state = 12345
    def uniform(n):
        nonlocal state
        vals = np.empty(n, dtype=np.float32)
        for i in range(n):
            state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
            vals[i] = np.float32(state >> 8) * np.float32(1.0 / 8388608.0) - np.float32(1.0)
        return vals
    K, C, H, W = 4, 8, 7, 5
    x = uniform(C * H * W).reshape(C, H, W).astype(np.float64)
    w = (uniform(K * C * 9) * np.float32(1.0 / 64.0)).reshape(K, C, 3, 3).astype(np.float64)
    b = (uniform(K) * np.float32(0.1)).astype(np.float64)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    ref = np.zeros((K, H, W)) + b[:, None, None]
    for r in range(3):
        for s in range(3):
            ref += np.einsum("kc,chw->khw", w[:, :, r, s], xp[:, r:r + H, s:s + W])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_bad_argument_is_rejected(tmp_path):
    exe = build(tmp_path, "-O1")
    proc = subprocess.run([str(exe), "--h", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "bad value" in proc.stderr

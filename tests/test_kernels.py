"""The flag-study kernels (programs/sort, stencil, nbody): each follows the harness protocol, is
bit-identical at every -O level and with -march=native (what `verify = "exact"` relies on), and
computes what it says (checked against numpy at small sizes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tuner.study import load_study

ROOT = Path(__file__).resolve().parents[1]
QUICK_ENV = {"TUNE_WARMUP": "1", "TUNE_MIN_REPS": "2", "TUNE_MAX_REPS": "2"}
KERNELS = {   # name: (extra cflags of its study, small arguments)
    "sort": ([], ["--n", "3000"]),
    "stencil": ([], ["--n", "37", "--t", "3"]),
    "nbody": (["-fno-math-errno"], ["--n", "33", "--steps", "3"]),
}

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


def build(tmp_path: Path, name: str, flags: list[str]) -> Path:
    exe = tmp_path / f"{name}{'_'.join(flags)}".replace("=", "_").replace(" ", "")
    src = ROOT / "programs" / name / f"{name}.c"
    cmd = ["gcc", "-std=c11", *KERNELS[name][0], *flags, str(src), "-o", str(exe), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
    return exe


def run(exe: Path, args: list[str], out: Path | None = None) -> dict:
    env = {**os.environ, **QUICK_ENV, **({"TUNE_OUTPUT": str(out)} if out else {})}
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith("@tune ")]
    return json.loads(line[len("@tune "):])


@pytest.mark.parametrize("name", list(KERNELS))
def test_bit_identical_at_every_level_and_march(name, tmp_path):
    args = KERNELS[name][1]
    sums = {}
    for flags in (["-O0"], ["-O1"], ["-O2"], ["-O3"], ["-Os"], ["-O3", "-march=native"],
                  ["-O2", "-march=x86-64-v3", "-funroll-loops"]):
        res = run(build(tmp_path, name, flags), args)
        assert res["samples_ms"] and all(s > 0 for s in res["samples_ms"])
        sums[" ".join(flags)] = res["checksum"]
    assert len(set(sums.values())) == 1, sums


def test_sort_sorts(tmp_path):
    out = tmp_path / "out.bin"
    res = run(build(tmp_path, "sort", ["-O2"]), ["--n", "5000"], out)
    keys = np.fromfile(out, dtype=np.uint32)
    assert len(keys) == 5000 and np.all(keys[:-1] <= keys[1:]) and res["metrics"]["unsorted_pairs"] == 0
    assert len(np.unique(keys)) > 4000          # mostly distinct, with runs of equal keys


def test_stencil_matches_numpy(tmp_path):
    n, t = 19, 3
    out = tmp_path / "out.bin"
    run(build(tmp_path, "stencil", ["-O3"]), ["--n", str(n), "--t", str(t)], out)
    state = 2463534242
    vals = []
    for _ in range(n * n):
        state = (state * 1664525 + 1013904223) % 2**32
        vals.append((state >> 8) * (1.0 / 16777216.0))
    a = np.array(vals, dtype=np.float32).reshape(n, n)
    for _ in range(t):
        b = a.copy()
        c = a[1:-1, 1:-1]
        b[1:-1, 1:-1] = ((((c + a[:-2, 1:-1]) + a[2:, 1:-1]) + a[1:-1, :-2]) + a[1:-1, 2:]) * np.float32(0.2)
        a = b
    got = np.fromfile(out, dtype=np.float32).reshape(n, n)
    assert np.array_equal(got, a)                # the same operations in the same order: exact


def test_nbody_matches_numpy(tmp_path):
    n, steps = 17, 2
    out = tmp_path / "out.bin"
    run(build(tmp_path, "nbody", ["-O2"]), ["--n", str(n), "--steps", str(steps)], out)
    state = 88172645463325252
    def uniform():
        nonlocal state
        state ^= (state << 13) % 2**64
        state ^= state >> 7
        state ^= (state << 17) % 2**64
        return (state >> 11) * (1.0 / 9007199254740992.0)
    init = []
    for _ in range(n):
        init.append([uniform() * 2 - 1, uniform() * 2 - 1, uniform() * 2 - 1,
                     (uniform() - 0.5) * 0.1, (uniform() - 0.5) * 0.1, (uniform() - 0.5) * 0.1, (0.5 + uniform()) / n])
    s = np.array(init)
    pos, vel, m = s[:, 0:3].copy(), s[:, 3:6].copy(), s[:, 6]
    for _ in range(steps):
        acc = np.zeros((n, 3))
        for j in range(n):                       # the same order of additions as the C loop
            d = pos[j] - pos
            r2 = (d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]) + d[:, 2] * d[:, 2] + 1e-4
            acc += d * (m[j] / (r2 * np.sqrt(r2)))[:, None]
        vel += acc * 1e-3
        pos += vel * 1e-3
    got = np.fromfile(out, dtype=np.float64).reshape(6, n)
    assert np.array_equal(got, np.vstack([pos.T, vel.T]))


@pytest.mark.parametrize("name", list(KERNELS))
def test_study_loads_over_the_whole_gcc_space(name):
    spec = load_study(f"{name}-gcc")
    assert len(spec.space) == 384 and spec.program.verify.mode == "exact"
    assert list(spec.program.cflags) == ["-std=c11", *KERNELS[name][0]]     # as tested above
    assert spec.space.complete(spec.baseline)["opt_level"] == "-O3"

"""Compiler knob files: the curated GCC set and the generator in tuner/flagspace.py."""
import shutil
import subprocess
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KNOBS = ROOT / "search_spaces" / "knobs"
HAVE_GCC = shutil.which("gcc") is not None

# gcc -Werror turns "unknown --param" / "ignored option" warnings into failures
FP_UNSAFE = {"-ffast-math", "-funsafe-math-optimizations", "-fassociative-math",
             "-freciprocal-math", "-ffinite-math-only", "-fno-signed-zeros",
             "-fno-trapping-math", "-fno-math-errno", "-fcx-limited-range",
             "-fcx-fortran-rules", "-fsingle-precision-constant"}


def gcc_accepts(tmp: Path, args: list[str], cc: str = "gcc") -> tuple[bool, str]:
    src = tmp / "trivial.c"
    if not src.exists():
        src.write_text("int f(int *a, int n) { int s = 0; for (int i = 0; i < n; i++) s += a[i];"
                       " return s; }\nint main(void) { return 0; }\n")
    proc = subprocess.run([cc, "-O2", "-Werror", *args, "-c", str(src), "-o", "/dev/null"],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode == 0, proc.stderr.strip()


def curated() -> dict:
    return tomllib.loads((KNOBS / "gcc-curated.toml").read_text())["knobs"]


def test_curated_shape():
    knobs = curated()
    flags = {n: k for n, k in knobs.items() if k["kind"] == "flag"}
    params = {n: k for n, k in knobs.items() if k["kind"] == "param"}
    assert len(flags) >= 40 and len(params) >= 10
    for name, k in flags.items():
        assert k["tristate"] is True and k["flag"].startswith("-f"), name
        assert name == "f_" + k["flag"][2:].replace("-", "_")
        assert k["flag"] not in FP_UNSAFE and "-fno-" + k["flag"][2:] not in FP_UNSAFE
        assert "fp-contract" not in k["flag"] and "math" not in k["flag"]
    for name, k in params.items():
        assert name == "param_" + k["param"].replace("-", "_")
        assert isinstance(k["low"], int) and isinstance(k["high"], int) and k["low"] < k["high"]
        if "default" in k:
            assert k["low"] <= k["default"] <= k["high"], name


@pytest.mark.skipif(not HAVE_GCC, reason="gcc not installed")
def test_curated_all_accepted_by_gcc(tmp_path):
    cases = []
    for k in curated().values():
        if k["kind"] == "flag":
            cases += [[k["flag"]], ["-fno-" + k["flag"][2:]]]
        else:
            cases += [[f"--param={k['param']}={k['low']}"], [f"--param={k['param']}={k['high']}"]]
    gcc_accepts(tmp_path, [])  # write the source once before threads start
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda a: (a, *gcc_accepts(tmp_path, a)), cases))
    rejected = [(a, err) for a, ok, err in results if not ok]
    assert not rejected, rejected


@pytest.mark.skipif(not HAVE_GCC, reason="gcc not installed")
def test_bogus_flag_and_out_of_range_param_rejected(tmp_path):
    assert not gcc_accepts(tmp_path, ["-fdefinitely-not-a-flag"])[0]
    assert not gcc_accepts(tmp_path, ["--param=definitely-not-a-param=1"])[0]
    assert not gcc_accepts(tmp_path, ["--param=sched-pressure-algorithm=3"])[0]


def test_conv2d_study_parses():
    study = tomllib.loads((ROOT / "search_spaces" / "conv2d-flags.toml").read_text())
    assert study["study"]["target"] == "local"
    assert study["study"]["objectives"] == ["latency_ms", "binary_bytes"]
    assert study["study"]["baseline"] == {"opt_level": "-O3"}
    assert study["study"]["include"] == ["knobs/gcc-curated.toml"]
    assert study["knobs"]["opt_level"]["choices"] == ["-O1", "-O2", "-O3", "-Os"]
    assert study["program"]["verify"] == "exact"
    assert (ROOT / "programs" / study["program"]["sources"][0]).exists()
    assert not set(study["knobs"]) & set(curated())

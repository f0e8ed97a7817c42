"""Compiler knob files: the curated GCC set and the generator in tuner/flagspace.py."""
import shutil
import time
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


# ---------------------------------------------------------------- the generator

from tuner import flagspace  # noqa: E402

# options the installed compilers list but legitimately refuse for C at -O2 -Werror
KNOWN_REJECTS = {
    "f_unroll_completely_grow_size",    # gcc: "not valid for C" (Fortran only)
    "f_enable_matrix", "f_inline_hint_functions",  # clang 14: the -fno- form does not exist
}
BOGUS = "-fthis-flag-does-not-exist"


@pytest.fixture(scope="module")
def gcc_generated():
    if not HAVE_GCC:
        pytest.skip("gcc not installed")
    t0 = time.monotonic()
    knobs, rep = flagspace.generate("gcc", extra_flags=[BOGUS])
    secs = time.monotonic() - t0
    print(f"\nfull gcc flag-space generation took {secs:.1f} s "
          f"({len(rep.accepted)} knobs accepted)")
    return knobs, rep


def test_gcc_discovery_finds_many_flags_and_params():
    rep = flagspace.Report("gcc", "")
    flags = flagspace.gcc_flag_candidates("gcc", rep)
    params = flagspace.gcc_param_candidates("gcc", rep)
    assert rep.flags_found > 100 and len(flags) > 100
    assert rep.params_found > 100 and len(params) > 50
    names = {c.name for c in flags}
    assert {"f_tree_vectorize", "f_unroll_loops", "f_fast_math"} <= names
    assert any(c.table["fp_unsafe"] if "fp_unsafe" in c.table else c.fp_unsafe
               for c in flags if c.name == "f_fast_math")


def test_gcc_generation_accepts_real_rejects_bogus(gcc_generated):
    knobs, rep = gcc_generated
    rejected = {c.name for c in rep.rejected}
    bogus = flagspace.knob_name("f_", BOGUS[2:])
    assert bogus in rejected
    assert rejected - {bogus} <= KNOWN_REJECTS, rejected
    flags = [k for k in knobs if k.kind == "flag"]
    params = [k for k in knobs if k.kind == "param"]
    assert len(flags) > 100 and len(params) > 50
    assert rep.seconds < 120
    names = {k.name for k in knobs}
    assert {"f_tree_vectorize", "param_max_unroll_times", "opt_level", "march",
            "mtune", "prefer_vector_width"} <= names
    # FP-semantics flags are out by default
    assert not names & {"f_fast_math", "f_associative_math", "f_fp_contract"}
    assert "f_fast_math" in rep.fp_unsafe
    march = next(k for k in knobs if k.name == "march").table["choices"]
    assert "-march=native" in march and "-march=x86-64" in march
    assert "-march=i386" not in march            # 32-bit only: does not compile for x86-64
    assert "-Ofast" not in next(k for k in knobs if k.name == "opt_level").table["choices"]


def test_generated_toml_parses_and_is_well_formed(gcc_generated, tmp_path):
    knobs, rep = gcc_generated
    text = flagspace.render_toml(knobs, rep, ["gcc"])
    parsed = tomllib.loads(text)["knobs"]
    assert set(parsed) == {k.name for k in knobs}
    check_knob_tables(parsed)


def check_knob_tables(knobs: dict):
    for name, k in knobs.items():
        assert k["tags"] and all(isinstance(t, str) for t in k["tags"]), name
        if k["kind"] == "flag":
            assert k["flag"].startswith("-f") and k["tristate"] is True, name
        elif k["kind"] == "param":
            assert k["low"] < k["high"], name
        else:
            assert k["kind"] == "categorical" and k["choices"] and k["to"] == "cflag", name
        assert not k.get("fp_unsafe"), name


@pytest.mark.parametrize("fname", ["gcc.toml", "clang.toml"])
def test_committed_generated_files_parse(fname):
    knobs = tomllib.loads((KNOBS / fname).read_text())["knobs"]
    check_knob_tables(knobs)
    assert sum(k["kind"] == "flag" for k in knobs.values()) >= 15
    if fname == "gcc.toml":
        assert sum(k["kind"] == "param" for k in knobs.values()) >= 50


def test_cli_writes_file_and_rejects_bogus_flag(tmp_path, capsys):
    if not HAVE_GCC:
        pytest.skip("gcc not installed")
    out = tmp_path / "sub.toml"
    rc = flagspace.main(["gcc", "--out", str(out), "--limit", "30", "--no-target",
                         f"--extra-flag={BOGUS}"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "rejected f_this_flag_does_not_exist" in err and "wrote" in err
    knobs = tomllib.loads(out.read_text())["knobs"]
    assert "f_this_flag_does_not_exist" not in knobs and len(knobs) >= 25


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed")
def test_clang_generation(tmp_path):
    knobs, rep = flagspace.generate("clang", extra_flags=[BOGUS], with_target=False)
    names = {k.name for k in knobs}
    assert {"f_unroll_loops", "f_vectorize", "f_slp_vectorize", "opt_level"} <= names
    rejected = {c.name for c in rep.rejected}
    assert "f_this_flag_does_not_exist" in rejected
    assert rejected - {"f_this_flag_does_not_exist"} <= KNOWN_REJECTS, rejected
    assert not [k for k in knobs if k.kind == "param"]      # clang has no --param

"""The TVM TensorIR matmul (`programs/tvm_matmul/tvm_matmul.py`, the optional ``tvm`` extra).

Small shapes and few timing repetitions keep the whole file well under a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tuner.library import program_module

tm = program_module("tvm_matmul/tvm_matmul.py")

ROOT = Path(__file__).resolve().parents[1]
SMALL = tm.Shape(64, 48, 32)
FAST = tm.Options(timing=tm.Timing(number=1, repeat=3, min_repeat_ms=0))
KNOBS = tm.Knobs(tile_i=8, tile_j=16, tile_k=4)


# Checks that need no TVM.

@pytest.mark.parametrize("knobs, reason", [
    (tm.Knobs(tile_i=24), "tile_i=24 does not divide M=64"),
    (tm.Knobs(tile_j=0), "tile_j=0 is not a positive split factor"),
    (tm.Knobs(order="io,jo,ko,ii,ji"), "is not a permutation"),
    (tm.Knobs(order="ko,io,jo,ii,ki,ji", parallel=True), "needs a spatial outermost loop"),
    (tm.Knobs(tile_i=16, tile_i2=3), "tile_i2=3 does not divide tile_i=16"),
    (tm.Knobs(tile_j2=0), "tile_j2=0 is not a positive split factor"),
    (tm.Knobs(cache_write="shared"), "cache_write='shared' is not one of off, global, local"),
    (tm.Knobs(order="ko,io,jo,ii,ki,ji", parallel=False, cache_write="global"),
     "needs a spatial loop outside every k loop"),
    (tm.Knobs(order="io,jo,ii,ji,ko,ki", cache_write="local", tile_j2=1),
     "needs ji inside a k loop"),
])
def test_check_reports_infeasible(knobs, reason):
    assert reason in tm.check(tm.Shape(64, 64, 64), knobs)


def test_check_accepts_default():
    assert tm.check(tm.Shape(), tm.Knobs()) is None


def test_check_accepts_register_blocking():
    knobs = tm.Knobs(tile_i=32, tile_j=64, order="io,jo,ii,ji,ko,ki", tile_i2=4, tile_j2=32,
                     cache_write="global")
    assert tm.check(tm.Shape(), knobs) is None


def test_study_knobs_are_knob_fields():
    import tomllib  # noqa: PLC0415

    with open(ROOT / "search_spaces" / "tvm-matmul.toml", "rb") as fh:
        study = tomllib.load(fh)
    fields = set(tm.Knobs.__dataclass_fields__)
    assert set(study["knobs"]) == fields
    assert set(study["study"]["baseline"]) == fields


def test_protocol_line_shapes():
    ok = tm.protocol_line({"latency_ms": 1.5, "gflops": 2.0, "samples_ms": [1.5, 1.6]})
    assert ok.startswith("@tune ")
    assert json.loads(ok[6:]) == {"samples_ms": [1.5, 1.6], "checksum": "na",
                                  "metrics": {"latency_ms": 1.5, "gflops": 2.0}}
    bad = json.loads(tm.protocol_line({"infeasible": "why"})[6:])
    assert bad == {"infeasible": "why"}


# Checks that build and run with TVM.

@pytest.fixture
def tvm():
    return pytest.importorskip("tvm", reason="apache-tvm (the 'tvm' extra) is not installed")


needs_tvm = pytest.mark.usefixtures("tvm")


@needs_tvm
def test_default_schedule_matches_numpy():
    result = tm.measure(SMALL, KNOBS, FAST)
    assert "wrong_output" not in result and "infeasible" not in result
    assert len(result["samples_ms"]) == 3
    assert result["latency_ms"] > 0 and result["gflops"] > 0


@needs_tvm
@pytest.mark.parametrize("knobs", [
    # the register-blocked nest: C_local tile 4x16 written back under ji
    tm.Knobs(tile_i=16, tile_j=16, tile_k=4, order="io,jo,ii,ji,ko,ki", tile_i2=4,
             tile_j2=16, cache_write="local"),
    tm.Knobs(tile_i=16, tile_j=16, tile_k=4, order="io,jo,ii,ji,ko,ki", tile_i2=4,
             tile_j2=16, cache_write="global", unroll_step=16),
    tm.Knobs(tile_i=8, tile_j=16, tile_k=4, cache_write="local"),  # one level, copy under jo
    tm.Knobs(tile_i=8, tile_j=16, tile_k=4, order="io,ko,jo,ii,ki,ji", cache_write="global",
             parallel=False, unroll_k=True),  # copy under io: a whole row block of C
    tm.Knobs(tile_i=8, tile_j=16, tile_k=4, tile_i2=2, tile_j2=8),  # second level alone
], ids=["local-2level", "global-2level-unroll", "local", "global-under-io", "2level-only"])
def test_local_accumulator_and_second_level_match_numpy(knobs):
    result = tm.measure(SMALL, knobs, FAST)
    assert "wrong_output" not in result and "infeasible" not in result, result
    assert result["latency_ms"] > 0


@needs_tvm
def test_cache_write_moves_the_write_back_under_the_tile():
    knobs = tm.Knobs(tile_i=16, tile_j=16, tile_k=4, order="io,jo,ii,ji,ko,ki", tile_i2=4,
                     tile_j2=16, cache_write="local", parallel=False)
    script = tm.schedule(SMALL, knobs).mod.script()
    assert 'T.sblock("C_local")' in script and '"local"' in script
    off = tm.Knobs(**{**knobs.__dict__, "cache_write": "off"})
    assert 'T.sblock("C_local")' not in tm.schedule(SMALL, off).mod.script()
    # the write-back runs per 4 x 16 register tile inside the nest (vectorized), not once
    # over all of C after it
    assert "for ax0 in range(4):" in script and "for ax1 in T.vectorized(16):" in script
    lib = tm.build(SMALL, knobs)
    assert "<16 x float>" in lib.inspect_source("ll")


@needs_tvm
def test_infeasible_split_is_reported_not_raised():
    result = tm.measure(SMALL, tm.Knobs(tile_i=7), FAST)
    assert result == {"infeasible": "tile_i=7 does not divide M=64"}


@needs_tvm
def test_schedule_error_is_infeasible(monkeypatch):
    # check() rejects a parallel reduction loop up front; without it TVM's own
    # ScheduleError must still come back as Infeasible with a one-line reason.
    monkeypatch.setattr(tm, "check", lambda shape, knobs: None)
    with pytest.raises(tm.Infeasible, match="^schedule error: .*parallel") as info:
        tm.schedule(SMALL, tm.Knobs(tile_i=8, tile_j=16, order="ko,io,jo,ii,ki,ji"))
    assert "\n" not in str(info.value)


@needs_tvm
def test_mismatch_is_wrong_output():
    strict = tm.Options(rtol=0.0, atol=0.0, timing=FAST.timing)
    result = tm.measure(tm.Shape(32, 32, 256), tm.Knobs(tile_i=8, tile_j=16, tile_k=8), strict)
    assert result["wrong_output"].startswith("max abs err")
    assert "latency_ms" in result  # a wrong configuration is still timed


@needs_tvm
@pytest.mark.parametrize("change, marker", [
    ({"vectorize": True}, "T.vectorized("),
    ({"parallel": True}, "T.parallel("),
    ({"unroll_k": True}, "T.unroll("),
    ({"unroll_step": 64}, '"pragma_auto_unroll_max_step": 64'),
])
def test_knobs_change_the_schedule(change, marker):
    off = tm.Knobs(tile_i=8, tile_j=16, tile_k=4, vectorize=False, parallel=False)
    on = tm.Knobs(**{**off.__dict__, **change})
    assert marker not in tm.schedule(SMALL, off).mod.script()
    assert marker in tm.schedule(SMALL, on).mod.script()


@needs_tvm
def test_order_and_tiles_change_the_loop_nest():
    a = tm.schedule(SMALL, tm.Knobs(tile_i=8, tile_j=16, order="io,jo,ko,ii,ki,ji")).mod.script()
    b = tm.schedule(SMALL, tm.Knobs(tile_i=8, tile_j=16, order="io,jo,ii,ko,ki,ji")).mod.script()
    c = tm.schedule(SMALL, tm.Knobs(tile_i=16, tile_j=16)).mod.script()
    assert len({a, b, c}) == 3


@needs_tvm
def test_vectorize_emits_vector_ir():
    lib = tm.build(SMALL, tm.Knobs(tile_i=8, tile_j=16, tile_k=4, vectorize=True))
    assert "<16 x float>" in lib.inspect_source("ll")


@needs_tvm
def test_mcpu_native_is_resolved():
    assert tm.target("native").attrs["mcpu"] not in ("", "native")
    assert "mcpu" not in tm.target("generic").attrs


@needs_tvm
def test_timing_differs_between_configurations():
    fast = tm.measure(tm.Shape(128, 128, 128), tm.Knobs(tile_i=8, tile_j=32, tile_k=4), FAST)
    slow = tm.measure(tm.Shape(128, 128, 128),
                      tm.Knobs(tile_i=1, tile_j=1, tile_k=1, order="jo,ko,io,ji,ki,ii",
                               vectorize=False, parallel=False), FAST)
    assert fast["latency_ms"] != slow["latency_ms"]
    assert "wrong_output" not in slow


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "programs" / "tvm_matmul" / "tvm_matmul.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


@needs_tvm
def test_cli_prints_protocol_line_last():
    proc = _run("--M", "32", "--N", "32", "--K", "32", "--tile-i=8", "--tile-j=16",
                "--tile-k=4", "--vectorize=on", "--parallel=off", "--repeat", "2")
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    payload = json.loads(last.removeprefix("@tune "))
    assert payload["checksum"] == "na" and len(payload["samples_ms"]) == 2
    assert set(payload["metrics"]) == {"latency_ms", "gflops"}


@needs_tvm
def test_cli_infeasible_exits_zero():
    proc = _run("--M", "32", "--tile-i", "5")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == '@tune {"infeasible":"tile_i=5 does not divide M=32"}'


@needs_tvm
def test_cli_new_knobs():
    proc = _run("--M", "32", "--N", "32", "--K", "32", "--tile-i=8", "--tile-j=16",
                "--order=io,jo,ii,ji,ko,ki", "--tile-i2=4", "--tile-j2=16",
                "--cache-write=local", "--parallel=off", "--repeat", "2")
    assert proc.returncode == 0, proc.stderr
    assert "cache_write=local" in proc.stdout
    payload = json.loads(proc.stdout.strip().splitlines()[-1].removeprefix("@tune "))
    assert "wrong_output" not in payload and len(payload["samples_ms"]) == 2


def test_cli_without_tvm_exits_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tvm", None)  # makes `import tvm` raise ImportError
    assert tm.main(["--M", "32"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "apache-tvm" in err

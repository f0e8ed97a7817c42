"""Each knob kind: its distribution, decode/encode, coerce, render; and that every kind reaches
the build or the run of a real compiled program (`tune measure --format json`)."""

from __future__ import annotations

import shutil

import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution

from conftest import needs_gcc
from tuner.errors import BadInput
from tuner.knobs import KINDS, make_knob
from tuner.records import Rendering


def knob(kind, name="k", **table):
    return make_knob(name, {"kind": kind, **table}, "<test>")


# --- categorical -----------------------------------------------------------------------
def test_categorical():
    k = knob("categorical", choices=["-O1", "-O2", "-O3"], to="cflag")
    assert k.distribution() == CategoricalDistribution(("-O1", "-O2", "-O3"))
    assert k.decode("-O2") == "-O2" and k.encode("-O2") == "-O2"
    assert k.coerce("-o3") == "-O3"                      # the command line's text form
    assert k.default == "-O1"
    assert k.render("-O2") == Rendering(cflags=("-O2",))
    with pytest.raises(ValueError):
        k.coerce("-O9")
    nums = knob("categorical", choices=[1, 2, 8])
    assert nums.coerce("8") == 8 and nums.coerce(8) == 8
    for bad in (True, 3, "3", 8.5, None):
        with pytest.raises(ValueError):
            nums.coerce(bad)


def test_categorical_multi_word_cflag_is_split_into_argv():
    k = knob("categorical", choices=["-O2 -fno-tree-vectorize", "-O3"], to="cflag")
    assert k.render("-O2 -fno-tree-vectorize").cflags == ("-O2", "-fno-tree-vectorize")


def test_hostile_values_stay_one_argv_piece():
    word = "a b; touch pwned $(id) `id`"
    assert knob("categorical", choices=[word, "x"], to="arg", arg="--v={}").render(word).args == (f"--v={word}",)
    assert knob("categorical", choices=[word, "x"], to="define").render(word).cflags == (f"-DK={word}",)
    assert knob("categorical", choices=[word, "x"], to="env", env="V").render(word).env == {"V": word}


# --- int ----------------------------------------------------------------------------------
def test_int_with_step():
    k = knob("int", low=2, high=64, step=2, to="arg")
    assert k.distribution() == IntDistribution(2, 64, step=2)
    assert k.decode(6) == 6 and k.encode(6) == 6
    assert k.coerce("0x10") == 16 and k.coerce(64.0) == 64
    for bad in (3, 0, 66, "x", True, 2.5, None):
        with pytest.raises(ValueError):
            k.coerce(bad)
    assert k.render(8) == Rendering(args=("--k=8",))
    assert k.default == 2


def test_int_log():
    k = knob("int", low=1, high=4096, log=True, to="env", env="THREADS")
    assert k.distribution() == IntDistribution(1, 4096, log=True)
    assert k.render(64) == Rendering(env={"THREADS": "64"})
    with pytest.raises(ValueError):
        k.coerce(0)


@pytest.mark.parametrize("table", [
    {"low": 5, "high": 1}, {"low": 1, "high": 8, "step": 0}, {"low": 0, "high": 8, "log": True},
    {"low": 1, "high": 8, "step": 2, "log": True}, {"low": "a", "high": 3}, {"high": 3},
    {"low": 0, "high": 3, "default": 7},
])
def test_int_bad_tables(table):
    with pytest.raises(BadInput):
        knob("int", **table)


# --- ordinal ------------------------------------------------------------------------------
def test_ordinal_sampler_sees_an_index():
    k = knob("ordinal", values=[1, 2, 4, 7, 14])
    assert k.distribution() == IntDistribution(0, 4)
    assert k.decode(3) == 7 and k.encode(7) == 3 and k.encode("14") == 4
    assert k.coerce("7") == 7
    for bad in (3, "3", True, 15, None):
        with pytest.raises(ValueError):
            k.coerce(bad)
    assert k.render(7) == Rendering(cflags=("-DK=7",))
    with pytest.raises(BadInput):
        knob("ordinal", values=[1, 1, 2])
    with pytest.raises(BadInput):
        knob("ordinal", values=[])


# --- flag ---------------------------------------------------------------------------------
def test_flag_bool():
    k = knob("flag", flag="-funroll-loops")
    assert k.distribution() == CategoricalDistribution(("off", "on"))
    assert k.coerce(True) == "on" and k.coerce("0") == "off" and k.coerce("ON") == "on"
    assert k.render("on") == Rendering(cflags=("-funroll-loops",))
    assert k.render("off") == Rendering()
    assert k.default == "off"
    for bad in ("default", "maybe", 2):
        with pytest.raises(ValueError):
            k.coerce(bad)


def test_flag_tristate():
    k = knob("flag", flag="-ftree-vectorize", tristate=True)
    assert set(k.distribution().choices) == {"on", "off", "default"}
    assert k.default == "default"
    assert k.render("on").cflags == ("-ftree-vectorize",)
    assert k.render("off").cflags == ("-fno-tree-vectorize",)
    assert k.render("default") == Rendering()
    neg = knob("flag", flag="-fno-inline", tristate=True)
    assert neg.render("off").cflags == ("-finline",)
    with pytest.raises(BadInput):
        knob("flag", flag="-O2", tristate=True)        # cannot be negated
    with pytest.raises(BadInput):
        knob("flag", flag="-fa -fb")                   # two arguments in one


def test_flag_tristate_default_is_distinct_from_off_everywhere():
    k = knob("flag", flag="-mavx2", tristate=True, to="define", define="AVX2")
    assert k.render("on").cflags == ("-DAVX2=1",)
    assert k.render("off").cflags == ("-DAVX2=0",)
    assert k.render("default") == Rendering()


# --- param --------------------------------------------------------------------------------
def test_param():
    k = knob("param", param="max-unroll-times", low=2, high=32)
    assert k.distribution() == IntDistribution(2, 32)
    assert k.render(8) == Rendering(cflags=("--param=max-unroll-times=8",))
    with pytest.raises(ValueError):
        k.coerce(33)
    with pytest.raises(BadInput):
        knob("param", param="a b", low=1, high=2)
    with pytest.raises(BadInput):
        knob("param", param="x=1", low=1, high=2)


# --- permutation -------------------------------------------------------------------------
def test_permutation():
    k = knob("permutation", items=["h", "w", "c"], to="arg", arg="--order={}")
    assert len(k.distribution().choices) == 6
    assert k.coerce(" w, h ,c") == "w,h,c" and k.coerce(["c", "w", "h"]) == "c,w,h"
    assert k.encode("c,w,h") == "c,w,h" and k.decode("c,w,h") == "c,w,h"
    assert k.template_value("c,w,h") == ["c", "w", "h"]
    assert k.render("w,c,h") == Rendering(args=("--order=w,c,h",))
    for bad in ("h,w", "h,h,w", "h,w,c,x", "", None):
        with pytest.raises(ValueError):
            k.coerce(bad)
    with pytest.raises(BadInput):
        knob("permutation", items=list("abcdefgh"))    # 8! orders: too many
    with pytest.raises(BadInput):
        knob("permutation", items=["a", "a"])


# --- destinations and tables ---------------------------------------------------------------
def test_destinations():
    base = {"choices": [4, 8]}
    assert knob("categorical", name="tile_h", **base, to="define").render(8).cflags == ("-DTILE_H=8",)
    assert knob("categorical", **base, to="define", define="T").render(8).cflags == ("-DT=8",)
    assert knob("categorical", name="omp", **base, to="env").render(8).env == {"OMP": "8"}
    assert knob("categorical", name="batch_size", **base, to="arg").render(8).args == ("--batch-size=8",)
    assert knob("categorical", **base, to="arg", arg="-b{}").render(8).args == ("-b8",)
    assert knob("categorical", choices=["gcc", "clang"], to="compiler").render("clang").compiler == "clang"
    assert knob("categorical", **base, to="none").render(8) == Rendering()
    assert knob("categorical", choices=[True, False], to="define").render(True).cflags == ("-DK=1",)


def test_bad_kind_destination_and_key():
    with pytest.raises(BadInput, match="unknown kind"):
        knob("float", low=0, high=1)
    with pytest.raises(BadInput, match="to"):
        knob("int", low=0, high=1, to="shell")
    with pytest.raises(BadInput, match="unknown key 'hgih'"):
        knob("int", low=0, high=1, hgih=3)
    with pytest.raises(BadInput, match="when"):
        knob("int", low=0, high=1, when="x.y")


# --- divisor -------------------------------------------------------------------------------
def test_divisor_holds_only_legal_tiles():
    k = knob("divisor", of=512, max=128, to="arg", arg="--tile={}")
    assert k.values == (1, 2, 4, 8, 16, 32, 64, 128)
    assert k.distribution() == IntDistribution(0, 7)           # an ordered index, like ordinal
    assert k.decode(3) == 8 and k.encode(8) == 3 and k.encode("8") == 3
    assert k.default == 1 and k.render(64) == Rendering(args=("--tile=64",))
    for bad in (3, 256, 0, -8, "x", True, 8.5, None):
        with pytest.raises(ValueError):
            k.coerce(bad)
    assert knob("divisor", of=14).values == (1, 2, 7, 14)
    assert knob("divisor", of=112, min=8).values == (8, 14, 16, 28, 56, 112)
    assert knob("divisor", of="14 * 14", min=2, max=98).values == (2, 4, 7, 14, 28, 49, 98)
    assert knob("divisor", of="2 ** 9", default=32).default == 32
    assert knob("divisor", of=97).values == (1, 97)             # a prime: only the trivial tiles


@pytest.mark.parametrize("table, key, match", [
    ({}, "k", "needs 'of'"),
    ({"of": 0}, "k.of", "integer in"),
    ({"of": 12.5}, "k.of", "integer in"),
    ({"of": True}, "k.of", "integer in"),
    ({"of": "H * 2"}, "k.of", "constants only"),
    ({"of": "1 +"}, "k.of", "cannot evaluate"),
    ({"of": "1 // 0"}, "k.of", "cannot evaluate"),
    ({"of": 12, "min": 5, "max": 5}, "k", "no divisor of 12"),
    ({"of": 12, "min": "a"}, "k", "not an integer"),
    ({"of": 12, "default": 5}, "k.default", "not in"),
    ({"of": 12, "step": 2}, "k.step", "unknown key 'step'"),
])
def test_divisor_bad_tables(table, key, match):
    with pytest.raises(BadInput, match=match) as e:
        knob("divisor", **table)
    assert e.value.key == f"knobs.{key}"


@needs_gcc
def test_divisor_reaches_the_build(lab):
    study = lab.study("echo_div", "[knobs.d]\nkind = \"divisor\"\nof = 20\nmin = 2\ndefine = \"ECHO_D\"\n",
                      verify="none")
    assert lab.json("measure", study, "--set", "d=10")["metrics"]["define"] == 10
    r = lab.tune("measure", study, "--set", "d=3")
    assert r.returncode == 2 and "d: 3 is not in divisors of 20 in [2, 20]" in r.stderr


def test_every_kind_is_covered_here():
    assert set(KINDS) == {"categorical", "int", "ordinal", "flag", "param", "permutation", "divisor"}, \
        "a new kind: add its tests to this file and examples to tuner/testing/knob_checks.py"


# --- each kind reaches the build or the run ------------------------------------------------
ECHO_KNOBS = """
[knobs.cc]
kind = "categorical"
choices = ["gcc", "clang"]
to = "compiler"

[knobs.d]
kind = "int"
low = 0
high = 20
step = 5
define = "ECHO_D"

[knobs.e]
kind = "int"
low = 1
high = 64
log = true
to = "env"
env = "TUNE_TEST_E"

[knobs.a]
kind = "ordinal"
values = [3, 5, 7]
to = "arg"
arg = "--echo-arg={}"

[knobs.uc]
kind = "flag"
flag = "-funsigned-char"

[knobs.fm]
kind = "flag"
flag = "-ffast-math"
tristate = true

[knobs.unroll]
kind = "param"
param = "max-unroll-times"
low = 1
high = 16

[knobs.order]
kind = "permutation"
items = ["a", "b", "c"]
to = "arg"
arg = "--order={}"
"""


def build_commands(lab, study):
    return [p.read_text() for p in (lab.root / "results" / study.stem / "builds").glob("*/build.txt")]


@needs_gcc
def test_every_kind_reaches_the_build_or_the_run(lab):
    study = lab.study("echo", ECHO_KNOBS, verify="none")
    cc = "clang" if shutil.which("clang") else "gcc"
    doc = lab.json("measure", study, "--set", f"cc={cc}", "--set", "d=15", "--set", "e=32", "--set", "a=7",
                   "--set", "uc=on", "--set", "fm=on", "--set", "unroll=7", "--set", "order=c,a,b")
    assert doc["ok"], doc
    m = doc["metrics"]
    assert m["clang"] == (1.0 if cc == "clang" else 0.0)     # categorical -> compiler
    assert m["define"] == 15                                 # int with step -> -DECHO_D=15
    assert m["env"] == 32                                    # int log -> $TUNE_TEST_E
    assert m["arg"] == 7                                     # ordinal -> --echo-arg=7
    assert m["unsigned_char"] == 1                           # flag -> -funsigned-char
    assert m["fast_math"] == 1                               # tri-state flag on -> -ffast-math
    assert m["order"] == 312                                 # permutation -> --order=c,a,b
    [cmd] = build_commands(lab, study)
    assert "--param=max-unroll-times=7" in cmd.split()       # param -> the compiler line

    doc = lab.json("measure", study, "--set", "cc=gcc", "--set", "fm=off", "--set", "unroll=3")
    m = doc["metrics"]
    assert doc["ok"] and doc["config"]["d"] == 0 and doc["config"]["uc"] == "off"
    assert (m["clang"], m["define"], m["env"], m["arg"], m["unsigned_char"], m["fast_math"], m["order"]) == \
        (0, 0, 1, 3, 0, 0, 123)
    cmds = [c for c in build_commands(lab, study) if "--param=max-unroll-times=3" in c.split()]
    assert len(cmds) == 1 and "-fno-fast-math" in cmds[0].split() and "-funsigned-char" not in cmds[0].split()

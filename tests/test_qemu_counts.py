"""Instruction counts under qemu-aarch64: the harness's region markers, multi-threaded guests
(OpenMP workers are vCPUs in qemu-user), and that setup stays outside the region."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tuner.program import ProgramSpec
from tuner.records import Build, Measurement, Rendering
from tuner.targets import load_target, make_target
from tuner.targets.qemu import REGION_SYMBOLS, elf_symbols, marked_region, parse_counts

ROOT = Path(__file__).resolve().parents[1]
HARNESS_DIR = ROOT / "programs"
CONV = ROOT / "programs" / "conv2d" / "conv2d.c"
MOBILENET = ROOT / "programs" / "mobilenet" / "mobilenet_block.c"
HAVE_QEMU = shutil.which("qemu-aarch64") is not None and shutil.which("aarch64-linux-gnu-gcc") is not None
pytestmark = pytest.mark.skipif(not HAVE_QEMU, reason="qemu-user and gcc-aarch64-linux-gnu not installed")


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    t = make_target(load_target("qemu-aarch64"), tmp_path_factory.mktemp("qemu") / "cache")
    assert t.probe().usable, t.probe().reason
    return t


def measure(target, program, rendering) -> Measurement:
    b = target.build(program, rendering)
    assert isinstance(b, Build), b
    m = target.run(b, program, rendering)
    assert m.ok, m.detail
    return m


def conv_program():
    return ProgramSpec(sources=(CONV,), cflags=("-std=c11",), ldflags=("-lm",),
                       args=("--h", "7", "--w", "5", "--c", "8", "--k", "4"))


def mobilenet_program():
    return ProgramSpec(sources=(MOBILENET,), cflags=("-std=c11", "-fopenmp"), ldflags=("-lm", "-fopenmp"),
                       args=("--hw", "8", "--cin", "16", "--cout", "16"))


def test_marked_region_rules():
    assert marked_region([100], [400]) == 300
    assert marked_region([100, 500], [400, 900]) == 400          # the last complete pair
    assert marked_region([100, 500], [400]) == 300               # a begin without its end is skipped
    assert marked_region([], [400]) is None and marked_region([100], []) is None
    assert parse_counts("mark 0 1\nvcpus 2\ntotal 9\n")["vcpus"] == 2


@pytest.mark.parametrize("flags", [("-O0",), ("-O3",), ("-Os",), ("-O3", "-flto"), ("-Os", "-flto")])
def test_region_markers_survive_optimisation(target, flags):
    b = target.build(conv_program(), Rendering(cflags=flags))
    assert isinstance(b, Build), b
    syms = elf_symbols(b.path, REGION_SYMBOLS)
    assert set(syms) == set(REGION_SYMBOLS) and len(set(syms.values())) == 2, syms   # two distinct functions


def test_single_threaded_counts_are_deterministic(target):
    a = measure(target, conv_program(), Rendering(cflags=("-O2",)))
    b = measure(target, conv_program(), Rendering(cflags=("-O2",)))
    assert a.metrics["instructions_scope"] == 1.0
    assert a.metrics["instructions"] == b.metrics["instructions"]
    assert 10_000 < a.metrics["instructions"] < a.metrics["instructions_total"]


def test_openmp_threads_are_counted(target):
    """16x8x8 depthwise+pointwise block: 2 passive OpenMP threads give the 1-thread count plus a
    small overhead (thread creation, barriers: ~1.7k instructions measured), never a tiny number
    (the old clock_gettime cut gave ~10)."""
    counts = {}
    for threads in ("1", "2"):
        r = Rendering(cflags=("-O2",), env={"OMP_NUM_THREADS": threads, "OMP_WAIT_POLICY": "passive"})
        counts[threads] = [measure(target, mobilenet_program(), r).metrics["instructions"] for _ in range(2)]
    one, two = counts["1"], counts["2"]
    assert one[0] == one[1]                                      # one thread: exact
    assert one[0] > 16 * 16 * 64                                 # > one instruction per pointwise MAC
    for c in two:
        assert one[0] <= c <= one[0] * 1.05 + 5_000, counts       # tolerance: 5% + 5k instructions
    assert abs(two[0] - two[1]) <= 0.001 * one[0], counts       # 2 threads: near-deterministic


SETUP_HEAVY = r"""
#include "tune_harness.h"
static volatile unsigned long sink;
static unsigned long x = 1;
void tune_setup(int argc, char **argv) {
    (void)argc; (void)argv;
    for (unsigned long i = 0; i < 2000000; i++) sink = sink * 31 + i;   /* heavy, untimed */
}
void tune_kernel(void) { x = x * 3 + 1; }
const void *tune_output(size_t *n) { *n = sizeof x; return &x; }
"""


def test_region_excludes_setup(target, tmp_path):
    src = tmp_path / "setup_heavy.c"
    src.write_text(SETUP_HEAVY)
    prog = ProgramSpec(sources=(src,), cflags=("-std=c11", f"-I{HARNESS_DIR}"), ldflags=("-lm",))
    m = measure(target, prog, Rendering(cflags=("-O2",)))
    assert m.metrics["instructions_scope"] == 1.0
    assert m.metrics["instructions"] < 50, m.metrics           # the trivial kernel + marker overhead
    assert m.metrics["instructions_total"] > 2_000_000 * 3

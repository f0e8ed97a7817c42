"""A TVM TensorIR matmul whose schedule knobs `tune` explores (the optional ``tvm`` extra).

``C[M, N] = A[M, K] @ B[K, N]`` in float32 is written with ``te.compute``, turned into a
TensorIR PrimFunc (``te.create_prim_func``) and scheduled with ``tvm.s_tir.Schedule``
(apache-tvm 0.27 names; older releases called these ``tvm.tir.Schedule`` /
``get_block``). The knobs:

==============  ===========================================================================
``tile_i/j/k``  inner split factor of the i, j, k loop: ``i -> io, ii`` with ``ii`` of
                extent ``tile_i`` (a divisor of M; one that does not divide is infeasible)
``order``       the loop order, a permutation of ``io,jo,ko,ii,ji,ki``
``vectorize``   vectorize ``ji`` (the inner j loop; useful when it is innermost)
``parallel``    run the outermost loop on the TVM thread pool (must be a spatial loop)
``unroll_step`` ``pragma_auto_unroll_max_step`` on the outermost loop, unrolled explicitly
                in TIR (0 = off)
``unroll_k``    explicit ``unroll`` of ``ki``
``tile_i2/j2``  second-level split of the i, j tiles: ``ii -> ii, ii2`` with ``ii2`` of
                extent ``tile_i2`` (a divisor of ``tile_i``, else infeasible; 1 = no second
                level). ``ii2`` and ``ji2`` go innermost, after the six loops of ``order``,
                ``ji2`` last, so ``io,jo,ii,ji,ko,ki`` + ``ii2,ji2`` is a register-blocked
                (MetaSchedule-like SSRSRS) nest; ``vectorize`` then applies to ``ji2``
``cache_write`` ``off``, ``global`` or ``local``: accumulate into a copy of C in that scope
                (``cache_write(block, 0, scope)``) written back to C by a copy block moved
                with ``reverse_compute_at`` under the innermost spatial loop that encloses
                every k loop (so the copy holds one C tile, compacted at lowering; the
                write-back is vectorized with ``vectorize``). Infeasible when a k loop is
                outermost (there is no such loop), and with ``vectorize`` when the
                vectorized loop (``ji``, ``tile_j2=1``) encloses the k loops: TVM then
                emits wrong code
==============  ===========================================================================

Compilation is for LLVM with ``mcpu`` set to the host CPU as LLVM names it
(``tvm.target.codegen.llvm_get_system_cpu()``, e.g. ``emeraldrapids``): in 0.27 a target is
a JSON dict and ``"mcpu": "native"`` is rejected by the bundled LLVM (it falls back to
``generic``), so ``mcpu="native"`` here is resolved in Python. ``mcpu="generic"`` gives the
portable x86-64 baseline (SSE2 only).

Timing uses TVM's own ``time_evaluator``: one discarded warm-up call, then ``repeat``
samples, each the mean of ``number`` calls, where ``number`` grows until one sample lasts
at least ``min_repeat_ms`` (defaults: number=1, repeat=10, min_repeat_ms=20). The runtime
thread pool size is TVM's default (one thread per physical core) unless ``TVM_NUM_THREADS``
is set. Before timing, the output (pre-filled with NaN) is checked against a float64 numpy
product with ``rtol=1e-4, atol=1e-4``; a mismatch is reported as ``wrong_output``.

Run as a program (the ``python`` target runs it like a native program)::

    python programs/tvm_matmul/tvm_matmul.py --M 512 --N 512 --K 512 --tile-i 32 --tile-j 32 --tile-k 4 \\
        --order io,jo,ko,ii,ki,ji --vectorize on --parallel on --unroll-step 16 --unroll-k off \\
        --tile-i2 4 --tile-j2 16 --cache-write global

Its last stdout line is the tune protocol line (see ``programs/tune_harness.h``)::

    @tune {"samples_ms":[...],"checksum":"na","metrics":{"latency_ms":..,"gflops":..}}
    @tune {"infeasible":"tile_i=24 does not divide M=512"}

plus ``"wrong_output": "max abs err ..."`` when the result does not match numpy. The exit
status is 0 in all these cases, and 2 with one line on stderr when apache-tvm is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

LOOPS = ("io", "jo", "ko", "ii", "ji", "ki")
CACHE_SCOPES = ("off", "global", "local")
DEFAULT_ORDER = "io,jo,ko,ii,ki,ji"
_ON = {"on": True, "true": True, "1": True, "yes": True,
       "off": False, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class Shape:
    """The problem: ``C[M, N] = A[M, K] @ B[K, N]`` in float32."""

    M: int = 512
    N: int = 512
    K: int = 512

    @property
    def flop(self) -> int:
        return 2 * self.M * self.N * self.K


@dataclass(frozen=True)
class Knobs:
    """One schedule configuration. Defaults are a reasonable hand schedule for AVX-512."""

    tile_i: int = 32
    tile_j: int = 32
    tile_k: int = 4
    order: str = DEFAULT_ORDER
    vectorize: bool = True
    parallel: bool = True
    unroll_step: int = 0
    unroll_k: bool = False
    tile_i2: int = 1
    tile_j2: int = 1
    cache_write: str = "off"


@dataclass(frozen=True)
class Timing:
    """``time_evaluator`` settings (see the module docstring)."""

    number: int = 1
    repeat: int = 10
    min_repeat_ms: int = 20


@dataclass(frozen=True)
class Options:
    """Everything but the knobs: compile target, verification, input seed."""

    mcpu: str = "native"
    rtol: float = 1e-4
    atol: float = 1e-4
    seed: int = 0
    timing: Timing = field(default_factory=Timing)


class Infeasible(Exception):
    """The knob values cannot form a legal schedule; ``str(exc)`` is the reason."""


def check(shape: Shape, knobs: Knobs) -> str | None:
    """The reason this configuration is infeasible, or None. Needs no TVM."""
    for dim, name in ((shape.M, "M"), (shape.N, "N"), (shape.K, "K")):
        if dim < 1:
            return f"{name}={dim} is not a positive size"
    for tile, dim, axis, name in ((knobs.tile_i, shape.M, "i", "M"),
                                  (knobs.tile_j, shape.N, "j", "N"),
                                  (knobs.tile_k, shape.K, "k", "K")):
        if tile < 1:
            return f"tile_{axis}={tile} is not a positive split factor"
        if dim % tile:
            return f"tile_{axis}={tile} does not divide {name}={dim}"
    order = knobs.order.split(",")
    if sorted(order) != sorted(LOOPS):
        return f"order {knobs.order!r} is not a permutation of {','.join(LOOPS)}"
    if knobs.parallel and order[0][0] == "k":
        return f"parallel=on needs a spatial outermost loop, got {order[0]}"
    if knobs.unroll_step < 0:
        return f"unroll_step={knobs.unroll_step} is negative"
    for tile2, tile, axis in ((knobs.tile_i2, knobs.tile_i, "i"),
                              (knobs.tile_j2, knobs.tile_j, "j")):
        if tile2 < 1:
            return f"tile_{axis}2={tile2} is not a positive split factor"
        if tile % tile2:
            return f"tile_{axis}2={tile2} does not divide tile_{axis}={tile}"
    if knobs.cache_write not in CACHE_SCOPES:
        return f"cache_write={knobs.cache_write!r} is not one of {', '.join(CACHE_SCOPES)}"
    if knobs.cache_write != "off" and order[0][0] == "k":
        return (f"cache_write={knobs.cache_write} needs a spatial loop outside every k loop, "
                f"got {order[0]} outermost")
    if (knobs.cache_write != "off" and knobs.vectorize and knobs.tile_j2 == 1
            and order.index("ji") < min(order.index("ko"), order.index("ki"))):
        # TVM 0.27 vectorizes such a loop (reduction and write-back inside) into wrong code
        return (f"cache_write={knobs.cache_write} with vectorize=on needs ji inside a k loop "
                f"(or tile_j2 > 1), got order {knobs.order}")
    return None


def _acc_loop(order: list[str]) -> str:
    """The innermost loop of ``order`` outside every k loop (where the C copy is written back)."""
    return order[min(order.index("ko"), order.index("ki")) - 1]


def _tvm():
    import tvm  # noqa: PLC0415 (optional dependency, imported only when used)

    return tvm


def target(mcpu: str = "native"):
    """The LLVM target; ``native`` is resolved to the host CPU name (see module doc)."""
    tvm = _tvm()
    if mcpu == "native":
        mcpu = tvm.target.codegen.llvm_get_system_cpu()
    spec: dict[str, Any] = {"kind": "llvm"}
    if mcpu and mcpu != "generic":
        spec["mcpu"] = mcpu
    return tvm.target.Target(spec)


def prim_func(shape: Shape):
    """The unscheduled matmul as a TensorIR PrimFunc (block ``C``)."""
    from tvm import te  # noqa: PLC0415

    a = te.placeholder((shape.M, shape.K), name="A", dtype="float32")
    b = te.placeholder((shape.K, shape.N), name="B", dtype="float32")
    k = te.reduce_axis((0, shape.K), name="k")
    c = te.compute((shape.M, shape.N), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")
    return te.create_prim_func([a, b, c])


def schedule(shape: Shape, knobs: Knobs):
    """The scheduled ``tvm.s_tir.Schedule``; raises Infeasible for illegal knob values."""
    reason = check(shape, knobs)
    if reason:
        raise Infeasible(reason)
    from tvm.s_tir import Schedule, ScheduleError  # noqa: PLC0415

    sch = Schedule(prim_func(shape))
    try:
        block = sch.get_sblock("C")
        i, j, k = sch.get_loops(block)
        io, ii = sch.split(i, [None, knobs.tile_i])
        jo, ji = sch.split(j, [None, knobs.tile_j])
        ko, ki = sch.split(k, [None, knobs.tile_k])
        loops = {"io": io, "ii": ii, "jo": jo, "ji": ji, "ko": ko, "ki": ki}
        inner = []  # second-level loops, innermost, ji2 last
        if knobs.tile_i2 > 1:
            loops["ii"], ii2 = sch.split(ii, [None, knobs.tile_i2])
            inner.append(ii2)
        if knobs.tile_j2 > 1:
            loops["ji"], ji2 = sch.split(ji, [None, knobs.tile_j2])
            inner.append(ji2)
        order = knobs.order.split(",")
        sch.reorder(*(loops[name] for name in order), *inner)
        outer = loops[order[0]]
        if knobs.cache_write != "off":
            copy = sch.cache_write(block, 0, knobs.cache_write)
            sch.reverse_compute_at(copy, loops[_acc_loop(order)], preserve_unit_loops=True)
            if knobs.vectorize:
                sch.vectorize(sch.get_loops(copy)[-1])
        if knobs.parallel:
            sch.parallel(outer)
        if knobs.vectorize:
            # the innermost j loop; before decompose_reduction, which copies it into C_init
            sch.vectorize(ji2 if knobs.tile_j2 > 1 else loops["ji"])
        if knobs.unroll_k:
            sch.unroll(ki)
        if knobs.unroll_step:
            sch.annotate(outer, "pragma_auto_unroll_max_step", knobs.unroll_step)
            sch.annotate(outer, "pragma_unroll_explicit", 1)
        # Hoist the zero-initialisation out of the reduction: above the outermost k loop.
        sch.decompose_reduction(block, loops[next(n for n in order if n[0] == "k")])
    except ScheduleError as exc:
        raise Infeasible(f"schedule error: {_first_line(exc)}") from None
    return sch


def build(shape: Shape, knobs: Knobs, mcpu: str = "native"):
    """The compiled ``tvm.runtime.Module`` (function ``main``); raises Infeasible."""
    tvm = _tvm()
    sch = schedule(shape, knobs)
    try:
        return tvm.tirx.build(sch.mod, target=target(mcpu))
    except tvm.error.TVMError as exc:
        raise Infeasible(f"build error: {_first_line(exc)}") from None


def measure(shape: Shape = Shape(), knobs: Knobs = Knobs(), options: Options = Options()) -> dict:
    """Build, verify against numpy and time one configuration.

    Returns ``{"latency_ms", "gflops", "samples_ms"}`` (plus ``"wrong_output"`` with the
    error when the result does not match numpy), or ``{"infeasible": reason}``.
    """
    import numpy as np  # noqa: PLC0415

    tvm = _tvm()
    try:
        lib = build(shape, knobs, options.mcpu)
    except Infeasible as exc:
        return {"infeasible": str(exc)}
    dev = tvm.cpu(0)
    rng = np.random.default_rng(options.seed)
    a = rng.random((shape.M, shape.K), dtype=np.float32)
    b = rng.random((shape.K, shape.N), dtype=np.float32)
    ta, tb = tvm.runtime.tensor(a, dev), tvm.runtime.tensor(b, dev)
    tc = tvm.runtime.tensor(np.full((shape.M, shape.N), np.nan, dtype=np.float32), dev)
    lib["main"](ta, tb, tc)
    got = tc.numpy()
    want = a.astype(np.float64) @ b.astype(np.float64)
    result: dict[str, Any] = {}
    bad = ~np.isclose(got, want, rtol=options.rtol, atol=options.atol)
    if bad.any():
        err = np.abs(got.astype(np.float64) - want)
        worst = "nan" if np.isnan(err).any() else f"{np.max(err):.3g}"
        result["wrong_output"] = (f"max abs err {worst} ({int(bad.sum())} of {bad.size} "
                                  f"elements outside rtol={options.rtol:g} atol={options.atol:g})")
    t = options.timing
    evaluator = lib.time_evaluator("main", dev, number=t.number, repeat=t.repeat,
                                   min_repeat_ms=t.min_repeat_ms)
    samples_ms = [s * 1e3 for s in evaluator(ta, tb, tc).results]
    latency_ms = float(np.median(samples_ms))
    result.update(latency_ms=latency_ms, gflops=shape.flop / (latency_ms * 1e6),
                  samples_ms=samples_ms)
    return result


def protocol_line(result: dict) -> str:
    """The ``@tune {json}`` line for a ``measure`` result."""
    if "infeasible" in result:
        payload: dict[str, Any] = {"infeasible": result["infeasible"]}
    else:
        payload = {"samples_ms": [round(s, 6) for s in result["samples_ms"]],
                   "checksum": "na",
                   "metrics": {"latency_ms": result["latency_ms"], "gflops": result["gflops"]}}
        if "wrong_output" in result:
            payload["wrong_output"] = result["wrong_output"]
    return "@tune " + json.dumps(payload, separators=(",", ":"))


def _first_line(exc: BaseException) -> str:
    """The most informative short line of a TVM error (they span screens)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("Error message:"):
            return ln[len("Error message:"):].strip()[:300]
    return (lines[0] if lines else type(exc).__name__)[:300]


def _on_off(text: str) -> bool:
    try:
        return _ON[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected on/off, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    d, t, o = Knobs(), Timing(), Options()
    p = argparse.ArgumentParser(prog="tvm_matmul.py",
                                description="Time a TVM TensorIR fp32 matmul schedule; "
                                            "prints one '@tune {json}' line last.")
    p.add_argument("--M", type=int, default=Shape.M)
    p.add_argument("--N", type=int, default=Shape.N)
    p.add_argument("--K", type=int, default=Shape.K)
    p.add_argument("--tile-i", type=int, default=d.tile_i, help="inner split of i")
    p.add_argument("--tile-j", type=int, default=d.tile_j, help="inner split of j")
    p.add_argument("--tile-k", type=int, default=d.tile_k, help="inner split of k")
    p.add_argument("--order", default=d.order, help=f"permutation of {','.join(LOOPS)}")
    p.add_argument("--vectorize", type=_on_off, default=d.vectorize, help="vectorize ji (on/off)")
    p.add_argument("--parallel", type=_on_off, default=d.parallel,
                   help="parallelize the outermost loop (on/off)")
    p.add_argument("--unroll-step", type=int, default=d.unroll_step,
                   help="pragma_auto_unroll_max_step on the outermost loop (0 = off)")
    p.add_argument("--unroll-k", type=_on_off, default=d.unroll_k,
                   help="explicitly unroll ki (on/off)")
    p.add_argument("--tile-i2", type=int, default=d.tile_i2,
                   help="second-level split of the i tile (a divisor of tile-i; 1 = none)")
    p.add_argument("--tile-j2", type=int, default=d.tile_j2,
                   help="second-level split of the j tile (a divisor of tile-j; 1 = none)")
    p.add_argument("--cache-write", default=d.cache_write, choices=CACHE_SCOPES,
                   help="accumulate into a copy of C in this scope (off = into C directly)")
    p.add_argument("--mcpu", default=o.mcpu, help="LLVM CPU: native (host), generic, or a name")
    p.add_argument("--number", type=int, default=t.number)
    p.add_argument("--repeat", type=int, default=t.repeat)
    p.add_argument("--min-repeat-ms", type=int, default=t.min_repeat_ms)
    p.add_argument("--rtol", type=float, default=o.rtol)
    p.add_argument("--atol", type=float, default=o.atol)
    p.add_argument("--seed", type=int, default=o.seed)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _tvm()
    except ImportError as exc:
        print(f"tvm_matmul: apache-tvm is not installed ({exc}); install the 'tvm' extra",
              file=sys.stderr)
        return 2
    shape = Shape(args.M, args.N, args.K)
    knobs = Knobs(tile_i=args.tile_i, tile_j=args.tile_j, tile_k=args.tile_k,
                  order=args.order.replace(" ", ""), vectorize=args.vectorize,
                  parallel=args.parallel, unroll_step=args.unroll_step, unroll_k=args.unroll_k,
                  tile_i2=args.tile_i2, tile_j2=args.tile_j2, cache_write=args.cache_write)
    options = Options(mcpu=args.mcpu, rtol=args.rtol, atol=args.atol, seed=args.seed,
                      timing=Timing(args.number, args.repeat, args.min_repeat_ms))
    result = measure(shape, knobs, options)
    summary = {**asdict(shape), **asdict(knobs), "mcpu": str(target(args.mcpu).attrs.get("mcpu", "generic"))}
    print("# tvm_matmul " + " ".join(f"{k}={v}" for k, v in summary.items()))
    sys.stdout.flush()
    print(protocol_line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

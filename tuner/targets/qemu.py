"""A user-mode emulator (qemu-aarch64, ...): cross-compiled static binaries, counted instructions.

Wall time under an emulator says little about the guest CPU, so the measurement method
"instructions" counts executed guest instructions with a TCG plugin that the project
builds itself (`targets/qemu_plugin/`, through the build cache, with the host compiler).

What is counted: the kernel region, from the first instruction of the harness's
`tune_region_begin()` marker to the first instruction of `tune_region_end()`; tune_harness.h
calls them right around each timed `tune_kernel()` call (this method runs one repetition
and no warm-up). The region adds a constant handful of harness instructions (the begin
marker's body and the two calls). Guest threads are counted too: in qemu-user each guest
thread (an OpenMP worker, say) is a vCPU, the plugin keeps one counter per vCPU, and a mark
logs the sum over all vCPUs, so the region is every instruction any thread executed between
the main thread's two marker hits (thread creation, the work, barriers and spinning included).

Programs built without the markers (an older harness) fall back to the old cut: from
`tune_kernel`'s entry to the next `clock_gettime`, or, if `tune_kernel` was inlined, between
the harness's 2nd and 3rd clock reads. That fallback is wrong for kernels that read the clock
themselves (mobilenet_block.c's self-timing) or call into a runtime that does (libgomp).
When nothing works, `instructions` is the whole program and `instructions_scope` is 0
(1 means the kernel region). Metrics: instructions, instructions_total, instructions_scope.

Determinism (measured with qemu-aarch64 7.2, aarch64-linux-gnu-gcc 12, static, -O2):
  * single-threaded guests: the region is exactly reproducible (conv2d.c; mobilenet_block.c
    with OMP_NUM_THREADS=1: 95,514,848 on 8 of 8 runs). The program total
    (`instructions_total`) can move by a few dozen instructions between runs (libc
    start-up/exit, outside the region).
  * multi-threaded guests are NOT exactly reproducible: how often a thread retries a futex
    or an atomic, and which side of a marker another thread's last instructions fall on,
    depend on host scheduling. mobilenet_block.c, OMP_WAIT_POLICY=passive: 2 threads gave
    95,516,625..95,516,725 over 8 runs (spread 100, ~1e-6 relative; ~1,800 above 1 thread:
    thread creation, barriers); 4 threads spread 241 over 5 runs. With
    OMP_WAIT_POLICY=active, spinning workers execute (and get counted as) instructions for
    as long as they wait, so the count follows host timing: 2 threads gave 104.9M..117.9M
    (spread 13%) over 5 runs -- treat active-wait counts as noisy.
Cost: the per-vCPU counting helper costs about 10-15% host CPU time over an uncounted run
(mobilenet_block.c, 10 repetitions, ~1e9 guest instructions); one shared atomic counter cost
about 40%, and the old inline add (~5%) loses counts when guest threads run concurrently.

[transport] keys: emulator ("qemu-aarch64"), cpu (-cpu model, ""), ld_prefix (-L, ""),
plugin_cc ("gcc", the host compiler for the plugin).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from tuner import library
from tuner.buildcache import CompileError, ToolMissing, compiler_identity
from tuner.errors import BadInput
from tuner.records import Availability, FailureReason, Measurement
from tuner.targets.base import Completed, Target
from tuner.targets.local import run_process

PLUGIN_DIR = library.BUILTIN_ROOT / "targets" / "qemu_plugin"
TRANSPORT_KEYS = {"emulator", "cpu", "ld_prefix", "plugin_cc"}
REGION_SYMBOLS = ("tune_region_begin", "tune_region_end")
KERNEL_SYMBOLS = ("tune_kernel",)
CLOCK_SYMBOLS = ("clock_gettime", "__clock_gettime", "__clock_gettime64")


@dataclass(frozen=True)
class Counted(Completed):
    """A finished emulator run plus what the plugin wrote."""

    counts: Mapping[str, object] = field(default_factory=dict)


def elf_symbols(path: Path, names: Sequence[str]) -> dict[str, int]:
    """Addresses of the named function symbols in an ELF file's .symtab (64-bit, either endian)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return {}
    e = "<" if data[5] == 1 else ">"
    shoff, = struct.unpack_from(e + "Q", data, 0x28)
    shentsize, shnum = struct.unpack_from(e + "HH", data, 0x3A)
    sections = [struct.unpack_from(e + "IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    wanted, found = set(names), {}
    for _name, sh_type, _f, _a, off, size, link, _i, _al, entsize in sections:
        if sh_type != 2 or not entsize:   # SHT_SYMTAB
            continue
        stroff = sections[link][4]
        for k in range(size // entsize):
            st_name, st_info, _o, st_shndx, st_value, _s = struct.unpack_from(e + "IBBHQQ", data, off + k * entsize)
            if st_info & 0xF != 2 or not st_value:   # STT_FUNC, defined
                continue
            end = data.index(b"\0", stroff + st_name)
            name = data[stroff + st_name:end].decode(errors="replace")
            if name in wanted:
                found[name] = st_value
    return found


def parse_counts(text: str) -> dict[str, object]:
    """The plugin's file: `mark <i> <count>` lines, one `total <count>` and one `vcpus <n>` line."""
    marks: dict[int, list[int]] = {}
    total = vcpus = None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "mark":
            marks.setdefault(int(parts[1]), []).append(int(parts[2]))
        elif len(parts) == 2 and parts[0] == "total":
            total = int(parts[1])
        elif len(parts) == 2 and parts[0] == "vcpus":
            vcpus = int(parts[1])
    return {"total": total, "marks": marks, "vcpus": vcpus}


def marked_region(begin_hits: list[int], end_hits: list[int]) -> int | None:
    """Instructions between the last begin-marker hit and the first end-marker hit after it."""
    for start in reversed(begin_hits):
        after = [e for e in end_hits if e >= start]
        if after:
            return after[0] - start
    return None


def kernel_region(kernel_hits: list[int], clock_hits: list[int]) -> int | None:
    """Instructions of the kernel region (see the module docstring), or None if not locatable."""
    if kernel_hits:
        start = kernel_hits[-1]
        after = [c for c in clock_hits if c > start]
        return after[0] - start if after else None
    if len(clock_hits) == 4:     # start, t0, [kernel], t1, max-seconds check: the harness's reads
        return clock_hits[2] - clock_hits[1]
    return None


class QemuTarget(Target):
    runs_here = True       # the emulator is a local process (its counts are deterministic: one launch)
    tags = frozenset({"emulated"})

    def __init__(self, spec, cache_root: Path) -> None:
        super().__init__(spec, cache_root)
        unknown = set(spec.transport) - TRANSPORT_KEYS
        if unknown:
            raise BadInput(f"unknown [transport] keys {sorted(unknown)} (known: {sorted(TRANSPORT_KEYS)})",
                           spec.file, "transport")
        self.emulator = str(spec.transport.get("emulator", "qemu-aarch64"))
        self.plugin_cc = str(spec.transport.get("plugin_cc", "gcc"))
        self._plugin: Path | None = None

    @property
    def counting(self) -> bool:
        return self.spec.measure.method == "instructions"

    # --- the plugin -----------------------------------------------------------------
    def plugin(self) -> Path:
        """The instruction-count plugin, built once per content (raises ToolMissing/CompileError)."""
        if self._plugin is None:
            built = self.cache.compile(self.plugin_cc, [PLUGIN_DIR / "insn_count.c"],
                                       ["-shared", "-fPIC", "-O2", "-Wall"],
                                       headers=[PLUGIN_DIR / "tune_qemu_plugin.h"])
            self._plugin = built.path
        return self._plugin

    def emulator_argv(self) -> list[str]:
        argv = [self.emulator]
        if self.spec.transport.get("cpu"):
            argv += ["-cpu", str(self.spec.transport["cpu"])]
        if self.spec.transport.get("ld_prefix"):
            argv += ["-L", str(self.spec.transport["ld_prefix"])]
        return argv

    # --- the protocol ---------------------------------------------------------------
    def probe(self) -> Availability:
        if shutil.which(self.emulator) is None:
            return Availability(False, f"emulator '{self.emulator}' not installed (Debian: qemu-user)")
        try:
            compiler_identity(self.spec.toolchain.cc)
        except ToolMissing as e:
            return Availability(False, f"{e} (Debian: gcc-aarch64-linux-gnu)")
        # end to end: a tiny static guest program, run under the plugin when counting
        probe_src = self.gen_dir / "qemu-probe.c"
        try:
            if not probe_src.exists():
                self.gen_dir.mkdir(parents=True, exist_ok=True)
                probe_src.write_text("int main(void) { return 0; }\n")
            guest = self.cache.compile(self.spec.toolchain.cc, [probe_src], list(self.spec.toolchain.cflags),
                                       list(self.spec.toolchain.ldflags)).path
            argv = self.emulator_argv()
            with tempfile.TemporaryDirectory(prefix="tune-qemu-") as tmp:
                if self.counting:
                    argv += ["-plugin", f"{self.plugin()},out={tmp}/count.txt"]
                done = run_process([*argv, str(guest)], None, 30)
                counted = parse_counts(Path(tmp, "count.txt").read_text()) if self.counting and Path(tmp, "count.txt").exists() else {}
        except (ToolMissing, CompileError) as e:
            return Availability(False, f"cannot build for {self.spec.name}: {e} {getattr(e, 'stderr_tail', '')}".strip())
        if done.returncode != 0 or done.transport_error:
            return Availability(False, f"{self.emulator} cannot run a {self.spec.toolchain.cc} binary: "
                                       f"{(done.stderr or done.transport_error).strip()[:300]}")
        if self.counting and not counted.get("total"):
            return Availability(False, f"the instruction-count plugin did not count under {self.emulator}")
        return Availability(True, "")

    def execute(self, command: Sequence[str], env: Mapping[str, str], timeout_s: float,
                want_output: bool) -> Completed:
        binary = Path(command[0])
        with tempfile.TemporaryDirectory(prefix="tune-qemu-") as tmp:
            argv = self.emulator_argv()
            plugin_marks: list[str] = []
            roles: dict[str, int] = {}
            count_file = Path(tmp) / "count.txt"
            if self.counting:
                try:
                    so = self.plugin()
                except (ToolMissing, CompileError) as e:
                    return Completed(None, "", str(e), 0.0, transport_error=f"instruction-count plugin: {e}")
                if "," in str(so) or "," in tmp:
                    return Completed(None, "", "", 0.0,
                                     transport_error="a path contains ',' (qemu's plugin argument separator)")
                syms = elf_symbols(binary, (*REGION_SYMBOLS, *KERNEL_SYMBOLS, *CLOCK_SYMBOLS))
                if all(s in syms for s in REGION_SYMBOLS):      # the harness's markers
                    wanted = (("begin", REGION_SYMBOLS[:1]), ("end", REGION_SYMBOLS[1:]))
                else:                                          # an older harness: the old cut
                    wanted = (("kernel", KERNEL_SYMBOLS), ("clock", CLOCK_SYMBOLS))
                # mark index per role, in the order the plugin gets them
                for role, names in wanted:
                    addr = next((syms[s] for s in names if s in syms), 0)
                    if addr:
                        roles[role] = len(roles)
                        plugin_marks.append(f"mark={addr:#x}")
                argv += ["-plugin", ",".join([str(so), f"out={count_file}", *plugin_marks])]
            out_path = Path(tmp) / "output.bin"
            if want_output:
                env = {**env, "TUNE_OUTPUT": str(out_path)}
            done = run_process([*argv, *command], env, timeout_s, cwd=tmp)
            output = out_path.read_bytes() if want_output and out_path.exists() else None
            counts: dict[str, object] = {}
            if self.counting and count_file.exists():
                counts = parse_counts(count_file.read_text())
                counts["roles"] = roles
            return Counted(done.returncode, done.stdout, done.stderr, done.wall_s, done.timed_out,
                           output, done.transport_error, counts=counts)

    def parse(self, done: Completed, timeout_s: float) -> Measurement:
        m = super().parse(done, timeout_s)
        if not m.ok or not self.counting:
            return m
        counts = getattr(done, "counts", {}) or {}
        total = counts.get("total")
        if total is None:
            return Measurement.failed(FailureReason.BAD_OUTPUT, "the instruction-count plugin wrote no count",
                                      **m.metrics)
        marks: dict[int, list[int]] = counts.get("marks", {})  # type: ignore[assignment]
        roles: dict[str, int] = counts.get("roles", {})  # type: ignore[assignment]
        def hits(role: str) -> list[int]:
            return marks.get(roles[role], []) if role in roles else []
        if "begin" in roles:
            region = marked_region(hits("begin"), hits("end"))
        else:
            region = kernel_region(hits("kernel"), hits("clock"))
        metrics = {**m.metrics, "instructions_total": float(total),
                   "instructions": float(region if region is not None else total),
                   "instructions_scope": 1.0 if region is not None else 0.0}
        return Measurement(metrics=metrics, samples_ms=m.samples_ms, checksum=m.checksum,
                           output=m.output, reason=m.reason, detail=m.detail)

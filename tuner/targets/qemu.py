"""A user-mode emulator (qemu-aarch64, ...): cross-compiled static binaries, counted instructions.

Wall time under an emulator says little about the guest CPU, so the measurement method
"instructions" counts executed guest instructions with a TCG plugin that the project
builds itself (`targets/qemu_plugin/`, through the build cache, with the host compiler).
The count is deterministic: the same binary and inputs give the same number on every run.

What is counted: the kernel region, from the first instruction of `tune_kernel` to the
harness's next clock read (`clock_gettime`) right after it returns (the harness runs one
repetition and no warm-up for this method). That includes a constant handful of harness
instructions (the return and the call of the clock read). When `tune_kernel` is never
entered as a function (the compiler inlined it into main), the region is cut between the
harness's second and third clock reads instead; when neither works, `instructions` is the
whole program and `instructions_scope` is 0 (1 means the kernel region).
Metrics: instructions, instructions_total, instructions_scope.

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
    """The plugin's file: `mark <i> <count>` lines and one `total <count>` line."""
    marks: dict[int, list[int]] = {}
    total = None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "mark":
            marks.setdefault(int(parts[1]), []).append(int(parts[2]))
        elif len(parts) == 2 and parts[0] == "total":
            total = int(parts[1])
    return {"total": total, "marks": marks}


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
                syms = elf_symbols(binary, (*KERNEL_SYMBOLS, *CLOCK_SYMBOLS))
                # mark index per role, in the order the plugin gets them
                for role, names in (("kernel", KERNEL_SYMBOLS), ("clock", CLOCK_SYMBOLS)):
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
        kernel_hits = marks.get(roles["kernel"], []) if "kernel" in roles else []
        clock_hits = marks.get(roles["clock"], []) if "clock" in roles else []
        region = kernel_region(kernel_hits, clock_hits)
        metrics = {**m.metrics, "instructions_total": float(total),
                   "instructions": float(region if region is not None else total),
                   "instructions_scope": 1.0 if region is not None else 0.0}
        return Measurement(metrics=metrics, samples_ms=m.samples_ms, checksum=m.checksum,
                           output=m.output, reason=m.reason, detail=m.detail)

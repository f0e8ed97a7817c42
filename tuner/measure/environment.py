"""The machine around a measurement: what else ran, on which cores, at what speed.

A timing is only as good as the quiet it was taken in. `Watch` brackets a measurement and
records the load average, the CPU time that *other* processes used during it (from /proc/stat,
minus what our own child processes used, from getrusage), the time the hypervisor stole, the
cores used for runs and for builds, and the CPU model, governor and frequency where readable.
`contended` says whether the run cores were busy with something else for more than a fraction
of the run; the campaign warns then.

`Placement` keeps builds off the core that runs the measured binary: with at least two cores
available a single-threaded run goes to the last one and builds to the others, so that
compiling the next configuration never shares a core with the one being timed; a run that
asks for more threads (OMP_NUM_THREADS, an -fopenmp build) than leaves a core free is not
pinned. `--target-opt run_cpu=... build_cpu=...` chooses, `none` turns pinning off.

Linux only in what it reads (/proc, /sys); elsewhere the fields are simply absent.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

# /proc/stat columns: user nice system idle iowait irq softirq steal guest guest_nice
_IDLE, _IOWAIT, _STEAL = 3, 4, 7


def _ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100.0


def read_stat(path: str = "/proc/stat") -> dict[str, list[int]]:
    """Per-CPU jiffies: {"cpu": [...], "cpu0": [...], ...}; {} where there is no /proc."""
    rows: dict[str, list[int]] = {}
    try:
        with open(path) as f:
            for line in f:
                if not line.startswith("cpu"):
                    break
                parts = line.split()
                rows[parts[0]] = [int(x) for x in parts[1:]]
    except (OSError, ValueError):
        return {}
    return rows


def _busy(row: list[int]) -> int:
    """Jiffies a CPU spent running something (guest time is already inside user)."""
    return sum(row[:8]) - row[_IDLE] - row[_IOWAIT] - row[_STEAL]


def parse_cpus(text: str) -> tuple[int, ...]:
    """A taskset-style CPU list ("1", "0,2", "0-3") as a sorted tuple; ValueError when bad."""
    cpus: set[int] = set()
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if a < 0 or b < a:
            raise ValueError(f"bad CPU range {part!r}")
        cpus.update(range(a, b + 1))
    if not cpus:
        raise ValueError("empty CPU list")
    return tuple(sorted(cpus))


def cpu_list(cpus: tuple[int, ...]) -> str:
    return ",".join(str(c) for c in cpus)


def threads_wanted(flags: Sequence[str], env: Mapping[str, str]) -> int | None:
    """How many threads a run will use, as far as its build flags and environment say: the
    OMP_NUM_THREADS it is given, else None (unknown: all cores) for an -fopenmp or -pthread
    build, else 1."""
    omp = str(env.get("OMP_NUM_THREADS", "")).split(",")[0].strip()
    if omp.isdigit() and int(omp) >= 1:
        return int(omp)
    if any(f in ("-fopenmp", "-pthread", "-lpthread", "-lgomp", "-fopenmp=libomp") for f in flags):
        return None
    return 1


def available_cpus() -> tuple[int, ...]:
    try:
        return tuple(sorted(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return tuple(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class Placement:
    """Which cores run the measured binary and which build; empty tuples mean "not pinned"."""

    run: tuple[int, ...] = ()
    build: tuple[int, ...] = ()

    @classmethod
    def choose(cls, run_cpu: str = "auto", build_cpu: str = "auto",
               available: tuple[int, ...] | None = None, threads: int | None = 1) -> "Placement":
        """Resolve the target's settings: "auto", "none" (no pinning) or a CPU list; ValueError
        for a malformed list. "auto" runs a program that wants `threads` threads (None: unknown,
        as many as there are cores) on the last `threads` cores when that leaves at least one
        core for builds, else anywhere; builds go to the cores the runs do not use."""
        cpus = available if available is not None else available_cpus()
        run_cpu, build_cpu = str(run_cpu).strip().lower(), str(build_cpu).strip().lower()
        if run_cpu in ("", "none"):
            run: tuple[int, ...] = ()
        elif run_cpu == "auto":
            k = threads if threads is not None else len(cpus)
            run = tuple(cpus[-k:]) if 1 <= k < len(cpus) else ()
        else:
            run = parse_cpus(run_cpu)
        if build_cpu in ("", "none"):
            build: tuple[int, ...] = ()
        elif build_cpu == "auto":
            # the cores a single-threaded run would not use, whatever this run uses: builds never
            # go to the last core while there is another
            build = tuple(c for c in cpus if c not in (run or cpus[-1:])) if len(cpus) >= 2 else ()
        else:
            build = parse_cpus(build_cpu)
        return cls(run, build)

    def as_dict(self) -> dict[str, str]:
        return {"run_cpus": cpu_list(self.run) or "any", "build_cpus": cpu_list(self.build) or "any"}


@contextlib.contextmanager
def affinity(cpus: tuple[int, ...]) -> Iterator[None]:
    """Run the body (and the processes it starts) on `cpus`, then restore the old affinity.
    A no-op for an empty tuple or where affinity cannot be set."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        yield
        return
    old = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, set(cpus))
    except OSError:
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, old)


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


@functools.lru_cache(maxsize=1)
def machine() -> dict[str, Any]:
    """What does not change during a campaign: CPU model, core count, frequency policy."""
    info: dict[str, Any] = {"cpus": os.cpu_count() or 1}
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            info["cpu_model"] = value.strip()
            break
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    info["governor"] = governor or "unreadable"
    if "hypervisor" in _read("/proc/cpuinfo"):
        info["virtualised"] = True
    return info


def frequencies_mhz(cpus: tuple[int, ...]) -> dict[str, float]:
    """Current frequency of each CPU (cpufreq, else /proc/cpuinfo's "cpu MHz"); {} if unreadable."""
    out: dict[str, float] = {}
    for c in cpus or available_cpus():
        khz = _read(f"/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_cur_freq")
        if khz.isdigit():
            out[str(c)] = int(khz) / 1000
    if out:
        return out
    mhz = [ln.split(":")[1].strip() for ln in _read("/proc/cpuinfo").splitlines() if ln.startswith("cpu MHz")]
    for c in cpus or available_cpus():
        if c < len(mhz):
            with contextlib.suppress(ValueError):
                out[str(c)] = float(mhz[c])
    return out


def _own_cpu_s() -> tuple[float, float]:
    """CPU seconds used so far by this process, and by its waited-for children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


class Watch:
    """Brackets a measurement: `with Watch(placement) as w: ...; w.record` is the environment.

    Other processes' CPU time is counted on the run cores when runs are pinned (minus the CPU
    time of our children, the measured processes, which ran there), on all cores otherwise
    (minus ours and our children's). `contended` is true when others used more than `threshold` of the run
    cores' capacity during the measurement, or the hypervisor stole more than that."""

    def __init__(self, placement: Placement = Placement(), threshold: float = 0.1) -> None:
        self.placement = placement
        self.threshold = threshold
        self.record: dict[str, Any] = {}

    def __enter__(self) -> "Watch":
        self._t0 = time.monotonic()
        self._stat0 = read_stat()
        self._own0 = _own_cpu_s()
        self._load0 = _read("/proc/loadavg").split()[:1]
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self._t0
        stat1 = read_stat()
        me, kids = _own_cpu_s()
        own = (kids - self._own0[1]) + (0.0 if self.placement.run else me - self._own0[0])
        rec: dict[str, Any] = {**machine(), **self.placement.as_dict(), "wall_s": round(wall, 4)}
        load1 = _read("/proc/loadavg").split()[:1]
        if self._load0 and load1:
            rec["load1"] = [float(self._load0[0]), float(load1[0])]
        rows = [f"cpu{c}" for c in self.placement.run] or ["cpu"]
        if self._stat0 and all(r in stat1 and r in self._stat0 for r in rows):
            hz = _ticks()
            busy = sum(_busy(stat1[r]) - _busy(self._stat0[r]) for r in rows) / hz
            steal = sum(stat1[r][_STEAL] - self._stat0[r][_STEAL] for r in rows) / hz
            capacity = wall * (len(self.placement.run) or len(available_cpus()))
            other = max(busy - own, 0.0)
            rec.update(other_cpu_s=round(other, 3), steal_s=round(steal, 3), own_cpu_s=round(own, 3),
                       cores_watched="run" if self.placement.run else "all")
            if capacity > 0:
                rec["other_frac"] = round(other / capacity, 4)
                rec["steal_frac"] = round(steal / capacity, 4)
                rec["contended"] = bool(other / capacity > self.threshold or steal / capacity > self.threshold)
            if self.placement.run and "cpu" in stat1 and "cpu" in self._stat0 and wall > 0:
                # the whole machine too: a pinned run keeps its core, not the shared cache and
                # memory bus, which the other cores' jobs load (a memory-bound kernel feels it)
                everyone = (_busy(stat1["cpu"]) - _busy(self._stat0["cpu"])) / hz
                ours = (kids - self._own0[1]) + (me - self._own0[0])
                cores = sum(1 for k in stat1 if k != "cpu")
                rec["machine_other_frac"] = round(max(everyone - ours, 0.0) / (wall * max(cores, 1)), 4)
        freq = frequencies_mhz(self.placement.run)
        if freq:
            rec["mhz"] = freq
        self.record = rec


def describe(record: dict[str, Any]) -> str:
    """One line for a warning: what contended with the measurement."""
    parts = []
    if "other_frac" in record:
        parts.append(f"other processes used {100 * record['other_frac']:.0f}% of the run "
                     f"core{'s' if record.get('cores_watched') == 'all' else ''} ({record.get('run_cpus')})")
    if record.get("steal_frac", 0) > 0:
        parts.append(f"the hypervisor stole {100 * record['steal_frac']:.0f}%")
    if "machine_other_frac" in record:
        parts.append(f"{100 * record['machine_other_frac']:.0f}% of the whole machine")
    if "load1" in record:
        parts.append(f"load average {record['load1'][-1]:g}")
    return "; ".join(parts)

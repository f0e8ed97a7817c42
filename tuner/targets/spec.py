"""A target file: a toolchain, a transport (the driver) and a measurement method."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner import library
from tuner.errors import BadInput
from tuner.measure.environment import Placement
from tuner.measure.launches import LaunchPolicy
from tuner.measure.paired import PairPolicy
from tuner.tomlfile import check_keys, describe, get, key_path, load_toml

METHODS = ("wall", "reported", "instructions")
NOISY = ("wall",)     # methods whose figure varies between processes; the others run once


@dataclass(frozen=True)
class Toolchain:
    cc: str = "gcc"
    cflags: tuple[str, ...] = ()
    ldflags: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeasureSpec:
    """The [measure] table. A measurement is a series of launches (processes); inside each the
    harness repeats the kernel (warmup, min_reps..max_reps, max_seconds). `ci_rel` is the
    relative width of the 95% interval that ends both loops: the repetitions inside a launch
    and the launches (whose interval is computed across processes; see tuner.measure)."""

    method: str = "wall"
    warmup: int = 1
    min_reps: int = 1
    max_reps: int = 10
    ci_rel: float = 0.05
    max_seconds: float = 0.1
    timeout_s: float = 60.0
    min_launches: int = 0    # 0: by method (wall: 3; deterministic methods: 1)
    max_launches: int = 0    # 0: by method (wall: 8; deterministic methods: 1)
    confirm_min_pairs: int = 6    # paired ABBA confirmation against the baseline
    confirm_max_pairs: int = 16
    confirm_ci_rel: float = 0.04
    confirm_decided_rel: float = 0.10   # campaigns stop confirming once admission is decided and
                                        # the paired interval is this narrow (0: only confirm_ci_rel)
    run_cpu: str = "auto"    # a taskset CPU list, "auto" (single-threaded runs on the last core) or "none"
    build_cpu: str = "auto"  # CPU list for builds, "auto" (the cores not running) or "none"
    pin_cpu: str = ""        # older name for run_cpu (kept: `--target-opt pin_cpu=1` still works)
    confirm: bool = True     # campaigns confirm would-be front points against the baseline (ABBA)
    confirm_topup: bool = True   # explore tops up the points it prints as best (and the knee) to
                                 # confirm_ci_rel / confirm_max_pairs at its end (tuner.measure.topup)
    race: bool = True        # campaigns stop candidates out of the running early
    race_margin: float = 0.05    # ... when even their best launch, less this, misses the front
    baseline_every: int = 8  # campaigns re-measure the baseline every K measured trials (and per run)
    contention: float = 0.1  # a launch off its core more than this is contended; warn above it
    exclude_contended: bool = True   # figure from uncontended launches when there are min_launches
    retries: int = 1         # transport failures retried this many times
    parallel_runs: int = 0   # runs measured at once under `explore --jobs N`; 0: by method (wall and
                             # reported on this machine: 1; counted instructions, a remote device: N)

    @property
    def noisy(self) -> bool:
        return self.method in NOISY

    def launch_policy(self) -> LaunchPolicy:
        lo = self.min_launches or (3 if self.noisy else 1)
        hi = self.max_launches or (8 if self.noisy else 1)
        return LaunchPolicy(lo, max(lo, hi), self.ci_rel, contention=self.contention,
                            exclude_contended=self.exclude_contended)

    def pair_policy(self) -> PairPolicy:
        if not self.noisy and not self.max_launches:
            return PairPolicy(1, 1, self.confirm_ci_rel)
        return PairPolicy(self.confirm_min_pairs, self.confirm_max_pairs, self.confirm_ci_rel,
                          contention=self.contention, exclude_contended=self.exclude_contended)

    def placement(self, threads: int | None = 1) -> Placement:
        """Cores for runs and builds (tuner.measure.environment.Placement) for a run that wants
        `threads` threads (None: unknown); ValueError if malformed."""
        return Placement.choose(self.pin_cpu or self.run_cpu, self.build_cpu, threads=threads)

    def harness_env(self) -> dict[str, str]:
        """The environment that steers tune_harness.h's repetition loop."""
        if self.method == "wall":
            reps = dict(TUNE_WARMUP=self.warmup, TUNE_MIN_REPS=self.min_reps,
                        TUNE_MAX_REPS=self.max_reps, TUNE_CI_REL=self.ci_rel,
                        TUNE_MAX_SECONDS=self.max_seconds)
        else:  # counts and simulations are deterministic: one run is the measurement
            reps = dict(TUNE_WARMUP=0, TUNE_MIN_REPS=1, TUNE_MAX_REPS=1)
        return {k: str(v) for k, v in reps.items()}


@dataclass(frozen=True)
class TargetSpec:
    name: str
    driver: str
    description: str = ""
    toolchain: Toolchain = Toolchain()
    measure: MeasureSpec = MeasureSpec()
    transport: dict[str, Any] = field(default_factory=dict)
    cores: int = 0           # 0: ask the driver
    file: Path | None = None


def _section(table: dict[str, Any], key: str, allowed: set[str], path: Path) -> dict[str, Any]:
    section = table.get(key, {})
    if not isinstance(section, dict):
        raise BadInput(f"[{key}] must be a table", path, key)
    check_keys(section, allowed, path, key)
    return section


def _check_measure(ms: dict[str, Any], path: Path | None, where: str) -> None:
    """Each [measure] value has its field's type (an int where the default is an int, a number
    where it is a float) and is not negative; timeouts and rep counts are above zero."""
    for key, value in ms.items():
        default = MeasureSpec.__dataclass_fields__[key].default
        kind = {str: "a string", bool: "a boolean (true or false)", int: "an integer",
                float: "a number"}.get(type(default))
        if kind is None:      # a field of another type checks itself
            continue
        get(ms, key, kind, path, where)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                value < 0 or (value == 0 and key in _ABOVE_ZERO)):
            raise BadInput(f"must be {'> 0' if key in _ABOVE_ZERO else '>= 0'}, got {describe(value)}",
                           path, key_path(where, key))


_ABOVE_ZERO = {"timeout_s", "max_seconds", "min_reps", "max_reps"}


def _coerce_like(default: Any, value: Any, key: str) -> Any:
    """A command-line value (text) as the type of the field it overrides."""
    if isinstance(default, bool):
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise BadInput(f"{key}: expected true or false, got {value!r}", None, "--target-opt")
    try:
        return type(default)(value) if not isinstance(default, str) else str(value)
    except (TypeError, ValueError):
        raise BadInput(f"{key}: expected a {type(default).__name__}, got {value!r}", None, "--target-opt") from None


def load_target(name: str, overrides: dict[str, Any] | None = None) -> TargetSpec:
    """Load targets/NAME.toml; `overrides` (from the command line) replace [measure] keys
    (pin_cpu, max_reps, timeout_s, ...) and [transport] keys (host, port, serial, ...)."""
    path = library.find("target", name)
    table = load_toml(path)
    check_keys(table, {"description", "driver", "toolchain", "measure", "transport", "cores"}, path, "")
    driver = table.get("driver")
    if not isinstance(driver, str):
        raise BadInput("a target needs driver = \"local\" (or qemu, ssh, android, python)", path, "driver")
    tc = _section(table, "toolchain", {"cc", "cflags", "ldflags"}, path)
    for key, kind in (("cc", "a string"), ("cflags", "a list of strings"), ("ldflags", "a list of strings")):
        get(tc, key, kind, path, "toolchain")
    ms = _section(table, "measure", set(MeasureSpec.__dataclass_fields__), path)
    _check_measure(ms, path, "measure")
    overrides = dict(overrides or {})
    given = {}
    for key in set(overrides) & set(MeasureSpec.__dataclass_fields__):
        given[key] = ms[key] = _coerce_like(MeasureSpec.__dataclass_fields__[key].default, overrides.pop(key), key)
    _check_measure(given, None, "--target-opt")
    if ms.get("method", "wall") not in METHODS:
        raise BadInput(f"method must be one of {', '.join(METHODS)}", path, "measure.method")
    try:
        measure = MeasureSpec(**ms)
    except TypeError as e:
        raise BadInput(str(e), path, "measure") from None
    for key in ("min_launches", "max_launches", "confirm_min_pairs", "confirm_max_pairs", "baseline_every"):
        if getattr(measure, key) < 0:
            raise BadInput(f"{key} must be >= 0, got {getattr(measure, key)}", path, f"measure.{key}")
    if measure.min_launches and measure.max_launches and measure.max_launches < measure.min_launches:
        raise BadInput(f"max_launches ({measure.max_launches}) is below min_launches ({measure.min_launches})",
                       path, "measure.max_launches")
    try:
        measure.placement()
    except ValueError as e:
        raise BadInput(f"run_cpu/build_cpu/pin_cpu: {e}", path, "measure") from None
    transport = get(table, "transport", "a table", path, "", {})
    transport.update(overrides or {})
    cores = get(table, "cores", "an integer", path, "", 0)
    if cores < 0:
        raise BadInput(f"must be >= 0, got {cores}", path, "cores")
    cc = os.environ.get("TUNE_CC_" + path.stem.upper().replace("-", "_"), tc.get("cc", "gcc"))
    return TargetSpec(
        name=path.stem, driver=driver, description=get(table, "description", "a string", path, "", ""),
        toolchain=Toolchain(cc, tuple(tc.get("cflags", ())), tuple(tc.get("ldflags", ()))),
        measure=measure, transport=dict(transport), cores=cores, file=path,
    )

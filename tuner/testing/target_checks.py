"""Conformance checks that every target driver must pass (like scikit-learn's estimator checks).

Each check is a small named function `check_x(target, workdir)` that raises AssertionError
on a violation. `applicable_checks(target_cls, spec)` yields (name, skip reason or None);
what applies is chosen by the driver's `tags` (a class attribute, e.g. {"remote",
"needs_device"}) and its `expected_failed_checks` ({check name: reason}, run as xfail), never by
a list of names kept here. `tests/test_targets_common.py` runs them over every targets/*.toml.

    needs = "nothing"    only probe(): always runs
    needs = "toolchain"  compiles: skipped (with the reason) when the compiler is missing
    needs = "device"     runs programs: skipped (with probe()'s reason) when the target is unusable

The test programs are tiny C files written to a temp dir that include tune_harness.h.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from tuner.buildcache import ToolMissing, compiler_identity
from tuner.program import ProgramSpec
from tuner.records import Availability, Build, FailureReason, Measurement, Rendering

# Echoes argv[1..] and $TUNE_CHECK_ENV as its output (NUL-separated), so the checksum shows
# that every word arrived verbatim.
ECHO_PROGRAM = r"""
#include "tune_harness.h"
static char buf[4096];
static size_t len;
static volatile unsigned sink;
void tune_setup(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        size_t n = strlen(argv[i]) + 1;
        if (len + n > sizeof buf) break;
        memcpy(buf + len, argv[i], n);
        len += n;
    }
    const char *e = getenv("TUNE_CHECK_ENV");
    if (e) { size_t n = strlen(e) + 1; if (len + n <= sizeof buf) { memcpy(buf + len, e, n); len += n; } }
}
void tune_kernel(void) { for (unsigned i = 0; i < 1000; i++) sink += i * SALT; }
const void *tune_output(size_t *nbytes) { *nbytes = len; return buf; }
"""

HANG_PROGRAM = r"""
#include "tune_harness.h"
#include <signal.h>
#include <unistd.h>
void tune_setup(int argc, char **argv) { (void)argc; (void)argv; signal(SIGTERM, SIG_IGN); }
void tune_kernel(void) { for (;;) sleep(1); }
const void *tune_output(size_t *nbytes) { *nbytes = 0; return ""; }
"""

ABORT_PROGRAM = r"""
#include "tune_harness.h"
void tune_setup(int argc, char **argv) { (void)argc; (void)argv; }
void tune_kernel(void) { abort(); }
const void *tune_output(size_t *nbytes) { *nbytes = 0; return ""; }
"""

NO_PROTOCOL_PROGRAM = r"""
#include <stdio.h>
int main(void) { puts("hello, no @tune line here"); return 0; }
"""

BROKEN_PROGRAM = "int main(void) { this is not C; }\n"

HOSTILE_WORDS = ("; touch {d}/pwned", "$(touch {d}/pwned2)", "`touch {d}/pwned3`", "a b\tc",
                 "'\"\\", "*", "--help", "", "é ü ∑")


def fnv1a(data: bytes) -> str:
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def echo_bytes(args: tuple[str, ...], env_value: str | None) -> bytes:
    words = [*args, *([env_value] if env_value is not None else [])]
    return b"".join(w.encode() + b"\0" for w in words)


def write_program(workdir: Path, name: str, text: str) -> ProgramSpec:
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / f"{name}.c"
    src.write_text(text)
    return ProgramSpec(sources=(src,), cflags=("-std=c11", "-DSALT=3u"), ldflags=("-lm",))


def with_(program: ProgramSpec, **changes: Any) -> ProgramSpec:
    import dataclasses
    return dataclasses.replace(program, **changes)


def built(target: Any, program: ProgramSpec, rendering: Rendering) -> Build:
    b = target.build(program, rendering)
    assert isinstance(b, Build), f"the build failed: {getattr(b, 'reason', '')} {getattr(b, 'detail', '')}"
    return b


def timeout_slack_s(target: Any) -> float:
    """How long past the limit a TIMEOUT may take: process teardown, plus a round trip if remote."""
    return 4.0 + (8.0 if "remote" in getattr(type(target), "tags", ()) else 0.0)


# --- the checks --------------------------------------------------------------------------
def check_probe_returns_availability(target: Any, workdir: Path) -> None:
    a = target.probe()
    assert isinstance(a, Availability), f"probe() returned {a!r}"
    assert a.usable or a.reason, "an unusable target must say why"


def check_build_is_content_addressed(target: Any, workdir: Path) -> None:
    # a unique comment makes the first build new; the same inputs again must come from the cache
    program = write_program(workdir, "echo", f"/* {secrets.token_hex(8)} */\n{ECHO_PROGRAM}")
    first = built(target, program, Rendering(cflags=("-O1",)))
    assert not first.cached, "a never-seen source was reported as cached"
    again = built(target, program, Rendering(cflags=("-O1",)))
    assert again.cached and again.key == first.key, "the same inputs must give the same key, cached"
    other = built(target, program, Rendering(cflags=("-O2",)))
    assert other.key != first.key, "different flags must give a different key"
    salted = built(target, with_(program, cflags=("-std=c11", "-DSALT=5u")), Rendering(cflags=("-O1",)))
    assert salted.key != first.key, "different program flags must give a different key"


def check_compile_error_is_measurement(target: Any, workdir: Path) -> None:
    m = target.build(write_program(workdir, "broken", BROKEN_PROGRAM), Rendering())
    assert isinstance(m, Measurement) and m.reason is FailureReason.COMPILE_ERROR, m
    assert m.detail, "a compile error must carry the compiler's message"


def check_run_verifies_output(target: Any, workdir: Path) -> None:
    program = with_(write_program(workdir, "echo", ECHO_PROGRAM), args=("plain", "words"))
    rendering = Rendering(cflags=("-O2",), env={"TUNE_CHECK_ENV": "env value"})
    m = target.run(built(target, program, rendering), program, rendering, want_output=True)
    assert m.ok, f"{m.reason}: {m.detail}"
    expected = echo_bytes(("plain", "words"), "env value")
    assert m.checksum == fnv1a(expected), (m.checksum, fnv1a(expected))
    assert m.output == expected, m.output
    method = target.spec.measure.method
    if method == "instructions":
        assert m.metrics.get("instructions", 0) > 0, m.metrics
    elif method == "wall":
        assert m.metrics.get("latency_ms", -1) >= 0 and m.samples_ms, m.metrics
    assert m.metrics.get("binary_bytes", 0) > 0, m.metrics


def check_nothing_goes_through_a_shell(target: Any, workdir: Path) -> None:
    d = workdir / "shell-marks"
    d.mkdir(parents=True, exist_ok=True)
    words = tuple(w.format(d=d) for w in HOSTILE_WORDS)
    env_value = f"x; touch {d}/pwned-env $(touch {d}/pwned-env2)"
    program = with_(write_program(workdir, "echo", ECHO_PROGRAM), args=words[:3])
    rendering = Rendering(cflags=("-O1",), args=words[3:], env={"TUNE_CHECK_ENV": env_value})
    m = target.run(built(target, program, rendering), program, rendering)
    assert m.ok, f"{m.reason}: {m.detail}"
    assert m.checksum == fnv1a(echo_bytes(words, env_value)), "an argument or env value was altered on the way"
    assert not any(d.iterdir()), f"a shell ran something: {sorted(p.name for p in d.iterdir())}"


def check_timeout_is_honoured(target: Any, workdir: Path) -> None:
    program = with_(write_program(workdir, "hang", HANG_PROGRAM), timeout_s=2.0)
    rendering = Rendering()
    b = built(target, program, rendering)
    t0 = time.monotonic()
    m = target.run(b, program, rendering)
    elapsed = time.monotonic() - t0
    assert m.reason is FailureReason.TIMEOUT, f"{m.reason}: {m.detail}"
    assert elapsed <= 2.0 + timeout_slack_s(target), f"TIMEOUT took {elapsed:.1f}s for a 2s limit"


def check_crash_is_measurement(target: Any, workdir: Path) -> None:
    program = write_program(workdir, "abort", ABORT_PROGRAM)
    m = target.run(built(target, program, Rendering()), program, Rendering())
    assert m.reason is FailureReason.CRASH, f"{m.reason}: {m.detail}"


def check_bad_protocol_is_measurement(target: Any, workdir: Path) -> None:
    program = write_program(workdir, "noproto", NO_PROTOCOL_PROGRAM)
    m = target.run(built(target, program, Rendering()), program, Rendering())
    assert m.reason is FailureReason.BAD_OUTPUT, f"{m.reason}: {m.detail}"


@dataclass(frozen=True)
class Check:
    fn: Callable[[Any, Path], None]
    needs: str          # nothing | toolchain | device


CHECKS: dict[str, Check] = {
    "check_probe_returns_availability": Check(check_probe_returns_availability, "nothing"),
    "check_build_is_content_addressed": Check(check_build_is_content_addressed, "toolchain"),
    "check_compile_error_is_measurement": Check(check_compile_error_is_measurement, "toolchain"),
    "check_run_verifies_output": Check(check_run_verifies_output, "device"),
    "check_nothing_goes_through_a_shell": Check(check_nothing_goes_through_a_shell, "device"),
    "check_timeout_is_honoured": Check(check_timeout_is_honoured, "device"),
    "check_crash_is_measurement": Check(check_crash_is_measurement, "device"),
    "check_bad_protocol_is_measurement": Check(check_bad_protocol_is_measurement, "device"),
}


def tags_of(target_cls: type) -> frozenset[str]:
    return frozenset(getattr(target_cls, "tags", frozenset()))


def applicable_checks(target_cls: type) -> Iterator[tuple[str, str | None]]:
    """(check name, None) for each check that applies by tags, or (name, why it is skipped)."""
    tags = tags_of(target_cls)
    for name, check in CHECKS.items():
        if "no_native_build" in tags and check.needs != "nothing":
            yield name, "the driver does not build native C programs (tag no_native_build)"
        else:
            yield name, None


def skip_reason(name: str, target: Any) -> str | None:
    """Why `name` cannot run on this machine now (None: run it)."""
    needs = CHECKS[name].needs
    if needs == "nothing":
        return None
    try:
        compiler_identity(target.spec.toolchain.cc)
    except ToolMissing as e:
        a = target.probe()
        return f"{target.spec.name}: {e}" + (f" ({a.reason})" if a.reason else "")
    if needs == "device":
        a = target.probe()
        if not a.usable:
            return f"{target.spec.name} unusable here: {a.reason}"
    return None


def expected_failure(name: str, target_cls: type) -> str | None:
    return dict(getattr(target_cls, "expected_failed_checks", {})).get(name)


def run_check(name: str, target: Any, workdir: Path) -> None:
    CHECKS[name].fn(target, workdir)

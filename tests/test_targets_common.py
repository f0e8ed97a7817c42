"""Every targets/*.toml against the shared conformance checks (tuner/testing/target_checks.py).

Targets tagged `needs_host` (ssh) run against a throw-away sshd on a loopback port
(tests/sshd_fixture.py); a cross-compiled target reached that way runs its binaries with
qemu-user on this host. Targets tagged `needs_device` (android) skip the checks that need a
device, with probe()'s reason (no NDK / no device attached).
"""

from __future__ import annotations

import importlib
import platform
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from sshd_fixture import sshd_server  # noqa: F401  (a fixture)
from tuner import library
from tuner.targets import DRIVERS, load_target, make_target
from tuner.testing.target_checks import (
    applicable_checks, expected_failure, run_check, skip_reason, tags_of)

HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(
    platform.machine().lower(), platform.machine())


def driver_class(driver: str) -> type:
    module, cls = DRIVERS[driver].split(":")
    return getattr(importlib.import_module(module), cls)


def cases() -> list:
    out = []
    for name in library.names("target"):
        spec = load_target(name)
        if spec.driver not in DRIVERS:
            out.append(pytest.param(name, "driver", None, marks=pytest.mark.skip(
                reason=f"driver '{spec.driver}' not registered in DRIVERS"), id=f"driver[{name}]"))
            continue
        cls = driver_class(spec.driver)
        for check, skip in applicable_checks(cls):
            marks = [pytest.mark.skip(reason=skip)] if skip else []
            xfail = expected_failure(check, cls)
            if xfail:
                marks.append(pytest.mark.xfail(reason=xfail, strict=True))
            out.append(pytest.param(name, check, marks=marks, id=f"{check}[{name}]"))
    return out


def loopback_overrides(spec, server) -> dict:
    """Point a needs_host target at the test sshd; run foreign-arch binaries with qemu-user."""
    overrides = dict(server.transport())
    arch = spec.toolchain.cc.split("-", 1)[0] if "-linux-" in spec.toolchain.cc else HOST_ARCH
    if arch != HOST_ARCH:
        emulator = f"qemu-{arch}"
        if shutil.which(emulator) is None:
            pytest.skip(f"{spec.name} builds for {arch}; testing it here needs {emulator}")
        overrides["run_prefix"] = [emulator]
    return overrides


@pytest.fixture(scope="module", autouse=True)
def no_stray_adb_server():
    """The android probe runs `adb devices`, which starts an adb server: stop it if we did."""
    with socket.socket() as s:
        s.settimeout(1)
        was_running = s.connect_ex(("127.0.0.1", 5037)) == 0
    yield
    if not was_running and shutil.which("adb"):
        subprocess.run(["adb", "kill-server"], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("target-cache")


@pytest.fixture
def target_for(request, cache_root):
    made = []

    def make(name: str):
        spec = load_target(name)
        if "needs_host" in tags_of(driver_class(spec.driver)):
            server = request.getfixturevalue("sshd_server")
            spec = load_target(name, loopback_overrides(spec, server))
        target = make_target(spec, cache_root)
        made.append(target)
        return target

    yield make
    for target in made:
        target.cleanup()


@pytest.mark.parametrize("name,check", cases())
def test_target_conformance(name, check, target_for, tmp_path):
    target = target_for(name)
    why = skip_reason(check, target)
    if why:
        pytest.skip(why)
    run_check(check, target, tmp_path)

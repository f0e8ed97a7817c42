"""Driver-specific behaviour of the qemu, ssh and android targets (the shared checks are in
test_targets_common.py): instruction counts, lost connections, failed copies, hung programs,
adb device selection and command construction, and a real adb server with no device."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from sshd_fixture import sshd_server, start_sshd, stop_sshd  # noqa: F401
from tuner.records import Build, FailureReason, Measurement, Rendering
from tuner.targets import load_target, make_target
from tuner.targets.android import choose_device, find_ndk_clang, parse_devices
from tuner.targets.qemu import elf_symbols, kernel_region, parse_counts
from tuner.testing.target_checks import ECHO_PROGRAM, HANG_PROGRAM, echo_bytes, fnv1a, with_, write_program

ROOT = Path(__file__).resolve().parents[1]
CONV = ROOT / "programs" / "conv2d" / "conv2d.c"
SMALL = ("--h", "7", "--w", "5", "--c", "8", "--k", "4")
HAVE_QEMU = shutil.which("qemu-aarch64") is not None and shutil.which("aarch64-linux-gnu-gcc") is not None
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="qemu-user and gcc-aarch64-linux-gnu not installed")


def conv_program():
    from tuner.program import ProgramSpec
    return ProgramSpec(sources=(CONV,), cflags=("-std=c11",), ldflags=("-lm",), args=SMALL)


def measure(target, program, rendering, **kw) -> Measurement:
    b = target.build(program, rendering)
    assert isinstance(b, Build), b
    return target.run(b, program, rendering, **kw)


# --- qemu ------------------------------------------------------------------------------
def test_kernel_region_rules():
    assert kernel_region([100], [50, 90, 400, 420]) == 300            # tune_kernel entry -> next clock read
    assert kernel_region([], [50, 90, 400, 420]) == 310               # inlined: the harness's 2nd..3rd read
    assert kernel_region([], [1, 2, 3]) is None                       # unknown shape: whole program
    assert parse_counts("mark 0 5\nmark 1 7\nmark 1 9\ntotal 11\n") == {"total": 11, "marks": {0: [5], 1: [7, 9]},
                                                                        "vcpus": None}


@needs_qemu
def test_qemu_counts_are_deterministic_and_track_optimisation(tmp_path):
    target = make_target(load_target("qemu-aarch64"), tmp_path / "cache")
    assert target.probe().usable, target.probe().reason
    counts = {}
    for opt in ("-O0", "-O2", "-O3"):
        a = measure(target, conv_program(), Rendering(cflags=(opt,)))
        b = measure(target, conv_program(), Rendering(cflags=(opt,)))
        assert a.ok and b.ok, (a.detail, b.detail)
        assert a.metrics["instructions_scope"] == 1.0
        assert a.metrics["instructions"] == b.metrics["instructions"]       # deterministic
        assert a.metrics["instructions"] < a.metrics["instructions_total"]
        counts[opt] = (a.metrics["instructions"], a.checksum)
    assert counts["-O3"][0] < counts["-O2"][0] < counts["-O0"][0], counts
    assert len({c for _, c in counts.values()}) == 1                          # same output at every level
    # and the same output as this machine's native build
    local = measure(make_target(load_target("local"), tmp_path / "cache"), conv_program(), Rendering(cflags=("-O2",)))
    assert local.checksum == counts["-O2"][1]


@needs_qemu
def test_qemu_markers_found_in_static_binary(tmp_path):
    target = make_target(load_target("qemu-aarch64"), tmp_path / "cache")
    b = target.build(conv_program(), Rendering(cflags=("-O2",)))
    syms = elf_symbols(b.path, ("tune_kernel", "clock_gettime", "nonexistent"))
    assert set(syms) == {"tune_kernel", "clock_gettime"}


@needs_qemu
def test_qemu_plugin_is_built_once_through_the_cache(tmp_path):
    t1 = make_target(load_target("qemu-aarch64"), tmp_path / "cache")
    t2 = make_target(load_target("qemu-aarch64"), tmp_path / "cache")
    assert t1.plugin() == t2.plugin()
    assert len(list((tmp_path / "cache").glob("*/prog"))) == 1


# --- ssh -------------------------------------------------------------------------------
def ssh_target(server, tmp_path, name="ssh", **extra):
    return make_target(load_target(name, server.transport(**extra)), tmp_path / "cache")


def count_calls(target, method):
    calls = []
    original = getattr(target, method)

    def wrapped(*a, **kw):
        calls.append(a)
        return original(*a, **kw)
    setattr(target, method, wrapped)
    return calls


def test_ssh_run_and_cleanup_leave_nothing_behind(sshd_server, tmp_path):
    target = ssh_target(sshd_server, tmp_path)
    m = measure(target, conv_program(), Rendering(cflags=("-O2",)))
    assert m.ok, m.detail
    remote_dir = target.remote_dir
    assert sshd_server.ssh(f"test -d {remote_dir} && echo yes").stdout.strip() == "yes"
    control_dir = target._control_dir
    target.cleanup()
    assert sshd_server.ssh(f"test -d {remote_dir} || echo gone").stdout.strip() == "gone"
    assert not Path(control_dir).exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert control_dir not in ps, "the ControlMaster process outlived cleanup()"


def test_ssh_copies_each_build_once(sshd_server, tmp_path):
    target = ssh_target(sshd_server, tmp_path)
    pushes = count_calls(target, "push")
    for _ in range(3):
        assert measure(target, conv_program(), Rendering(cflags=("-O1",))).ok
    assert len(pushes) == 1
    target.cleanup()


def test_ssh_target_opt_strings(sshd_server, tmp_path):
    """--target-opt values arrive as strings: port, run_prefix and multiplex still work."""
    opts = {k: str(v) for k, v in sshd_server.transport().items()}
    target = make_target(load_target("ssh-aarch64", {**opts, "run_prefix": "qemu-aarch64", "multiplex": "false"}),
                         tmp_path / "cache")
    assert target.run_prefix == ["qemu-aarch64"] and not target.multiplex
    if not HAVE_QEMU:
        pytest.skip("qemu-user not installed")
    program = with_(write_program(tmp_path, "echo", ECHO_PROGRAM), args=("x y",))
    m = measure(target, program, Rendering())
    assert m.ok and m.checksum == fnv1a(echo_bytes(("x y",), None)), m.detail
    target.cleanup()


def test_ssh_host_that_disappears_is_a_retried_transport_failure(tmp_path):
    server = start_sshd(tmp_path / "sshd")
    try:
        target = ssh_target(server, tmp_path, connect_timeout_s=3)
        assert measure(target, conv_program(), Rendering()).ok
        shells = count_calls(target, "shell")
        stop_sshd(server)          # the host goes away mid-campaign
        # the multiplexed master may survive the listener; kill it as a real network loss would
        subprocess.run(target.ssh_argv("-O", "exit"), capture_output=True, timeout=10)
        t0 = time.monotonic()
        m = measure(target, conv_program(), Rendering())
        assert m.reason is FailureReason.TRANSPORT, (m.reason, m.detail)
        assert "ssh to 127.0.0.1" in m.detail
        assert time.monotonic() - t0 < 30
        # attempts = 1 + retries; each attempt re-copies (push = one shell call) and runs
        assert len(shells) >= 1 + target.spec.measure.retries, shells
    finally:
        stop_sshd(server)
        target.cleanup()


def test_ssh_failed_copy_is_a_transport_failure(sshd_server, tmp_path):
    target = ssh_target(sshd_server, tmp_path, workdir="/proc/no-such-dir")
    pushes = count_calls(target, "push")
    m = measure(target, conv_program(), Rendering())
    assert m.reason is FailureReason.TRANSPORT and "copy to" in m.detail, (m.reason, m.detail)
    assert len(pushes) == 1 + target.spec.measure.retries
    target.cleanup()


def test_ssh_hung_program_times_out_and_is_killed_remotely(sshd_server, tmp_path):
    target = ssh_target(sshd_server, tmp_path)
    program = with_(write_program(tmp_path, "hang", HANG_PROGRAM), timeout_s=2.0)
    t0 = time.monotonic()
    m = measure(target, program, Rendering())
    assert m.reason is FailureReason.TIMEOUT, (m.reason, m.detail)
    assert time.monotonic() - t0 < 2 + 10
    deployed = next(iter(target._deployed.values()))
    time.sleep(0.5)
    ps = sshd_server.ssh("ps -eo args").stdout
    assert deployed not in ps, "the hung program still runs on the host"
    target.cleanup()


def test_ssh_probe_reports_unreachable_host(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]            # nothing listens here after the close
    target = make_target(load_target("ssh", {"host": "127.0.0.1", "port": port, "connect_timeout_s": 3,
                                             "multiplex": False}), tmp_path / "cache")
    a = target.probe()
    assert not a.usable and "ssh to 127.0.0.1" in a.reason
    no_host = make_target(load_target("ssh"), tmp_path / "cache").probe()
    assert not no_host.usable and "no host" in no_host.reason


# --- android ---------------------------------------------------------------------------
def test_adb_device_listing_and_choice():
    listing = "* daemon started successfully\nList of devices attached\nR58M12 device\nemu-5554\tdevice product:x\nBAD1\tunauthorized\n\n"
    devices = parse_devices(listing)
    assert devices == {"R58M12": "device", "emu-5554": "device", "BAD1": "unauthorized"}
    assert choose_device({}, "") == (None, "no device attached (adb devices lists none)")
    assert choose_device({"A": "device"}, "") == ("A", "")
    serial, why = choose_device(devices, "")
    assert serial is None and "several devices" in why and "R58M12" in why
    assert choose_device(devices, "emu-5554") == ("emu-5554", "")
    assert "unauthorized" in choose_device(devices, "BAD1")[1]
    assert "not attached" in choose_device(devices, "ZZZ")[1]
    assert "no usable device" in choose_device({"B": "offline"}, "")[1]


def test_ndk_clang_is_found_and_used(tmp_path, monkeypatch):
    assert "no NDK" in find_ndk_clang("", 24)[1]
    bindir = tmp_path / "ndk" / "toolchains/llvm/prebuilt/linux-x86_64/bin"
    bindir.mkdir(parents=True)
    clang = bindir / "aarch64-linux-android29-clang"
    clang.write_text("#!/bin/sh\nexit 0\n")
    clang.chmod(0o755)
    monkeypatch.setenv("ANDROID_NDK_HOME", str(tmp_path / "ndk"))
    target = make_target(load_target("android", {"api": 29}), tmp_path / "cache")
    assert target.spec.toolchain.cc == str(clang) and not target.ndk_problem
    assert "no NDK clang" in find_ndk_clang(str(tmp_path / "ndk"), 21)[1]


FAKE_ADB = r"""#!{python}
# A stand-in for adb with one device whose "shell" is this machine's /bin/sh in a sandbox dir.
import os, shutil, subprocess, sys
state = {state!r}
args = sys.argv[1:]
log = open(state + "/calls", "a"); log.write(repr(args) + "\n"); log.close()
if args == ["devices"]:
    print("List of devices attached")
    if not os.path.exists(state + "/unplugged"):
        print("FAKE01\tdevice")
    sys.exit(0)
if os.path.exists(state + "/unplugged"):
    print("error: device 'FAKE01' not found", file=sys.stderr); sys.exit(1)
assert args[:2] == ["-s", "FAKE01"], args
if args[2] == "push":
    os.makedirs(os.path.dirname(args[4]), exist_ok=True); shutil.copy(args[3], args[4]); sys.exit(0)
if args[2] == "shell":
    assert len(args) == 4, "adb shell must get ONE command string"
    sys.exit(subprocess.run(["/bin/sh", "-c", args[3]]).returncode)
sys.exit(2)
"""


@pytest.fixture
def fake_adb(tmp_path):
    state = tmp_path / "adb-state"
    state.mkdir()
    adb = tmp_path / "adb"
    adb.write_text(FAKE_ADB.format(python=sys.executable, state=str(state)))
    adb.chmod(adb.stat().st_mode | stat.S_IXUSR)
    return adb, state


def android_with(adb, tmp_path, **extra):
    spec = load_target("android", {"adb": str(adb), "workdir": str(tmp_path / "device"), **extra})
    import dataclasses
    spec = dataclasses.replace(spec, toolchain=dataclasses.replace(spec.toolchain, cc="gcc", ldflags=()))
    return make_target(spec, tmp_path / "cache")


def test_android_end_to_end_with_a_stand_in_adb(fake_adb, tmp_path):
    """The full push/shell path, quoting included, with adb replaced by a local stand-in."""
    adb, state = fake_adb
    target = android_with(adb, tmp_path)
    words = ("; touch /tmp/pwned-adb", "a b", "$(id)")
    program = with_(write_program(tmp_path, "echo", ECHO_PROGRAM), args=words)
    m = measure(target, program, Rendering(env={"TUNE_CHECK_ENV": "v; w"}), want_output=True)
    assert m.ok, m.detail
    assert m.checksum == fnv1a(echo_bytes(words, "v; w")) and m.output == echo_bytes(words, "v; w")
    calls = (state / "calls").read_text().splitlines()
    assert any("'push'" in c for c in calls) and all("'-s', 'FAKE01'" in c for c in calls if "devices" not in c)
    assert not Path("/tmp/pwned-adb").exists()
    target.cleanup()
    assert not any((tmp_path / "device").iterdir())


def test_android_device_unplugged_mid_campaign(fake_adb, tmp_path):
    adb, state = fake_adb
    target = android_with(adb, tmp_path)
    program = write_program(tmp_path, "echo", ECHO_PROGRAM)
    assert measure(target, program, Rendering()).ok
    (state / "unplugged").touch()
    m = measure(target, program, Rendering())
    assert m.reason is FailureReason.TRANSPORT, (m.reason, m.detail)
    assert "no device attached" in m.detail or "not found" in m.detail
    (state / "unplugged").unlink()          # plugged back in: the campaign carries on
    assert measure(target, program, Rendering()).ok
    target.cleanup()


def test_android_hung_program_times_out(fake_adb, tmp_path):
    adb, _ = fake_adb
    target = android_with(adb, tmp_path)
    program = with_(write_program(tmp_path, "hang", HANG_PROGRAM), timeout_s=2.0)
    t0 = time.monotonic()
    m = measure(target, program, Rendering())
    assert m.reason is FailureReason.TIMEOUT and time.monotonic() - t0 < 12, (m.reason, m.detail)
    target.cleanup()


def adb_server_running() -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", 5037)) == 0


@pytest.fixture
def real_adb_server():
    if shutil.which("adb") is None:
        pytest.skip("adb not installed")
    was_running = adb_server_running()
    subprocess.run(["adb", "start-server"], capture_output=True, timeout=60, check=True)
    devices = parse_devices(subprocess.run(["adb", "devices"], capture_output=True, text=True, timeout=30).stdout)
    if devices:
        pytest.skip(f"a device is attached ({', '.join(devices)}): this test needs none")
    yield
    if not was_running:
        subprocess.run(["adb", "kill-server"], capture_output=True, timeout=30)


def test_android_real_adb_server_without_device(real_adb_server, tmp_path):
    target = make_target(load_target("android", {"ndk": ""}), tmp_path / "cache")
    a = target.probe()
    assert not a.usable and "no device attached" in a.reason
    if not os.environ.get("ANDROID_NDK_HOME"):
        assert "no NDK" in a.reason
    # a run is a Measurement saying so, not an exception (any local binary stands in for the build)
    exe = tmp_path / "prog"
    exe.write_bytes(b"\x7fELF")
    build = Build(command=(str(exe),), key="k" * 24, path=exe)
    program = write_program(tmp_path, "echo", ECHO_PROGRAM)
    m = target.run(build, program, Rendering())
    assert m.reason is FailureReason.TRANSPORT and "no device attached" in m.detail, (m.reason, m.detail)
    target.cleanup()


def test_android_several_devices_need_a_serial(fake_adb, tmp_path):
    adb, state = fake_adb
    target = android_with(adb, tmp_path, serial="OTHER")
    a = target.probe()
    assert not a.usable and "'OTHER' not attached" in a.reason

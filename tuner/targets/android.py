"""An Android device over adb: NDK clang cross build, `adb push` to /data/local/tmp, `adb shell`.

The compiler is the NDK's aarch64-linux-android<api>-clang, found under
$ANDROID_NDK_HOME (or `ndk = ...` in [transport]) in toolchains/llvm/prebuilt/linux-x86_64/bin;
a [toolchain] cc other than "ndk" is used as it is. The device is `serial` when given, else
the only attached device; several devices and no serial is an error that lists them.

`adb shell` joins its arguments with spaces and hands them to the device's shell, so the
driver passes ONE string built from shlex.quote'd words (see tuner/targets/remote.py).

[transport] keys: serial (""), adb ("adb"), ndk (""), api (24), abi ("aarch64"),
workdir ("/data/local/tmp"), run_prefix ([]), remote_timeout ("timeout", toybox has it).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
from pathlib import Path

from tuner.records import Availability
from tuner.targets.base import Completed
from tuner.targets.local import run_process
from tuner.targets.remote import RemoteShellTarget

NDK_BIN = Path("toolchains/llvm/prebuilt/linux-x86_64/bin")


def parse_devices(listing: str) -> dict[str, str]:
    """`adb devices` output -> {serial: state} (state: device, offline, unauthorized, ...)."""
    devices: dict[str, str] = {}
    for line in listing.splitlines():
        line = line.strip()
        if not line or line.startswith(("List of devices", "*")) or "\t" not in line and " " not in line:
            continue
        serial, _, state = line.replace("\t", " ").partition(" ")
        devices[serial] = state.strip().split()[0] if state.strip() else "unknown"
    return devices


def choose_device(devices: dict[str, str], serial: str = "") -> tuple[str | None, str]:
    """(serial, "") for the device to use, or (None, why not)."""
    if serial:
        if serial not in devices:
            known = ", ".join(devices) or "none attached"
            return None, f"device '{serial}' not attached (attached: {known})"
        if devices[serial] != "device":
            return None, f"device '{serial}' is {devices[serial]}"
        return serial, ""
    ready = [s for s, st in devices.items() if st == "device"]
    if not devices:
        return None, "no device attached (adb devices lists none)"
    if not ready:
        states = ", ".join(f"{s} ({st})" for s, st in devices.items())
        return None, f"no usable device: {states}"
    if len(ready) > 1:
        return None, f"several devices attached ({', '.join(ready)}): choose one with serial = \"...\" or --target-opt serial=..."
    return ready[0], ""


def find_ndk_clang(ndk: str, api: int, abi: str = "aarch64") -> tuple[Path | None, str]:
    """The NDK's clang for abi/api, or (None, why not)."""
    if not ndk:
        return None, "no NDK: set ANDROID_NDK_HOME or ndk = \"/path/to/ndk\" in [transport]"
    clang = Path(ndk).expanduser() / NDK_BIN / f"{abi}-linux-android{api}-clang"
    if not clang.exists():
        return None, f"no NDK clang at {clang} (is ndk the NDK root, and api {api} supported?)"
    return clang, ""


class AndroidTarget(RemoteShellTarget):
    tags = frozenset({"remote", "needs_device"})
    transport_keys = RemoteShellTarget.transport_keys | {"serial", "adb", "ndk", "api", "abi"}
    default_workdir = "/data/local/tmp"

    def __init__(self, spec, cache_root: Path) -> None:
        t = spec.transport
        self.adb = str(t.get("adb", "adb"))
        self.serial_opt = str(t.get("serial", ""))
        self.api = int(t.get("api", 24))
        self.abi = str(t.get("abi", "aarch64"))
        self.ndk = str(t.get("ndk", "") or os.environ.get("ANDROID_NDK_HOME", ""))
        self.ndk_problem = ""
        if spec.toolchain.cc == "ndk":
            clang, self.ndk_problem = find_ndk_clang(self.ndk, self.api, self.abi)
            cc = str(clang) if clang else f"{self.abi}-linux-android{self.api}-clang"
            spec = dataclasses.replace(spec, toolchain=dataclasses.replace(spec.toolchain, cc=cc))
        super().__init__(spec, cache_root)
        self._serial: str | None = None

    # --- the device ------------------------------------------------------------------
    def devices(self) -> tuple[dict[str, str] | None, str]:
        if shutil.which(self.adb) is None:
            return None, "adb not installed (Debian: adb; or the Android SDK platform-tools)"
        done = run_process([self.adb, "devices"], None, 30)
        if done.transport_error or done.timed_out or done.returncode != 0:
            return None, f"adb devices failed: {(done.transport_error or done.stderr).strip()[-300:]}"
        return parse_devices(done.stdout), ""

    def serial(self) -> str:
        """The chosen device's serial; raises OSError (a transport failure) when there is none."""
        if self._serial is None:
            devices, why = self.devices()
            serial, why = choose_device(devices, self.serial_opt) if devices is not None else (None, why)
            if serial is None:
                raise OSError(why)
            self._serial = serial
        return self._serial

    def adb_argv(self, *args: str) -> list[str]:
        return [self.adb, "-s", self.serial(), *args]

    # --- the transport ---------------------------------------------------------------
    def shell(self, script: str, timeout_s: float, stdin: bytes | None = None) -> Completed:
        try:
            argv = self.adb_argv("shell", script)
        except OSError as e:
            return Completed(None, "", "", 0.0, transport_error=str(e))
        done = run_process(argv, None, timeout_s, stdin=stdin)
        if not done.transport_error and done.returncode != 0 and "error:" in done.stderr:
            self._serial = None   # the device went away: look again next time
            return Completed(done.returncode, done.stdout, done.stderr, done.wall_s, done.timed_out,
                             transport_error=f"adb: {done.stderr.strip()[-300:]}")
        return done

    def push(self, local: Path, remote: str) -> None:
        argv = self.adb_argv("push", str(local), remote)   # serial() raises OSError: no device
        done = run_process(argv, None, 300)
        if done.transport_error or done.timed_out or done.returncode != 0:
            self._serial = None
            why = done.transport_error or ("timed out" if done.timed_out else (done.stderr or done.stdout).strip()[-300:])
            raise OSError(f"adb push to {remote} failed: {why}")
        done = self.shell(f"chmod 755 {shlex.quote(remote)}", 60)
        if done.transport_error or done.returncode != 0:
            raise OSError(f"chmod on the device failed: {done.transport_error or done.stderr.strip()[-300:]}")

    def probe(self) -> Availability:
        problems = []
        if self.ndk_problem:
            problems.append(self.ndk_problem)
        else:
            base = super().probe()
            if not base.usable:
                problems.append(base.reason)
        devices, why = self.devices()
        if devices is not None:
            _, why = choose_device(devices, self.serial_opt)
        if why:
            problems.append(why)
        return Availability(not problems, "; ".join(problems))

    def cleanup(self) -> None:
        if self._dir is not None and self._serial is not None:
            super().cleanup()
        self._dir = None
        self._deployed.clear()


"""Shared logic of targets that run a shell command string on another machine (ssh, adb).

The remote side always goes through a shell, so every word of the command (the binary,
its arguments, the run prefix, each `K=V` of the environment) is quoted with shlex.quote
and the local side never uses a shell. One run is one remote script:

    cd DIR || exit 97; [ -x BIN ] || exit 98
    timeout -k 2 LIMIT env K=V ... PREFIX BIN ARGS...; s=$?
    printf '\\n@tune-status %d\\n' "$s" >&2                    (the program's exit status)
    printf '\\n@tune-output\\n'; od -An -v -tx1 out.bin; ...   (only when output is wanted)
    exit 0

A missing status line means the transport failed (the device disappeared, the connection
dropped, the binary vanished): a TRANSPORT failure that `Target.run` retries, copying the
binary again. `timeout` on the remote side stops a hung program even when the connection
is gone; the local side also kills its client after the limit plus a grace period.
"""

from __future__ import annotations

import dataclasses
import math
import re
import secrets
import shlex
from pathlib import Path
from typing import Any, Mapping, Sequence

from tuner.errors import BadInput
from tuner.records import Build
from tuner.targets.base import Completed, Target

STATUS = "@tune-status "
OUTPUT = "\n@tune-output\n"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KILL_GRACE_S = 2


def as_list(value: Any) -> list[str]:
    """A [transport] list, or a string from --target-opt split like a shell would (no expansion)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class RemoteShellTarget(Target):
    """A driver provides `shell(script, timeout_s, stdin)` and `push(local, remote)`."""

    tags = frozenset({"remote"})
    transport_keys: frozenset[str] = frozenset({"workdir", "run_prefix", "remote_timeout"})
    default_workdir = "/tmp"
    transport_slack_s = 15.0     # connection set-up and teardown on top of the program's limit

    def __init__(self, spec, cache_root: Path) -> None:
        super().__init__(spec, cache_root)
        unknown = set(spec.transport) - self.transport_keys
        if unknown:
            raise BadInput(f"unknown [transport] keys {sorted(unknown)} (known: {sorted(self.transport_keys)})",
                           spec.file, "transport")
        t = spec.transport
        self.workdir = str(t.get("workdir", self.default_workdir)).rstrip("/") or "/"
        self.run_prefix = as_list(t.get("run_prefix"))
        self.remote_timeout = str(t.get("remote_timeout", "timeout"))
        self._dir: str | None = None
        self._deployed: dict[str, str] = {}

    # --- what a driver provides ------------------------------------------------------
    def shell(self, script: str, timeout_s: float, stdin: bytes | None = None) -> Completed:
        """Run `script` with the remote shell; a failure to reach the device is transport_error."""
        raise NotImplementedError

    def push(self, local: Path, remote: str) -> None:
        """Copy `local` to the remote path and make it executable; raise OSError on failure."""
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------
    @property
    def remote_dir(self) -> str:
        """This campaign's directory on the device (unique, removed by cleanup)."""
        if self._dir is None:
            self._dir = f"{self.workdir}/tune-{secrets.token_hex(6)}"
        return self._dir

    def deploy(self, build: Build) -> Build:
        if build.path is None:
            raise OSError("the build has no local binary to copy")
        remote = self._deployed.get(build.key)
        if remote is None:
            remote = f"{self.remote_dir}/{build.key}"
            self.push(Path(build.path), remote)
            self._deployed[build.key] = remote
        return dataclasses.replace(build, command=(remote, *build.command[1:]))

    def script(self, command: Sequence[str], env: Mapping[str, str], timeout_s: float,
               want_output: bool) -> str:
        """The remote shell script of one run (every word quoted)."""
        q = shlex.quote
        out = f"{self.remote_dir}/out.bin"
        env = {**env, **({"TUNE_OUTPUT": out} if want_output else {})}
        bad = [k for k in env if not ENV_NAME.match(k)]
        if bad:
            raise ValueError(f"environment variable names must be identifiers: {bad}")
        words: list[str] = []
        if self.remote_timeout:
            words += [self.remote_timeout, "-k", str(KILL_GRACE_S), str(max(1, math.ceil(timeout_s)))]
        if env:
            words += ["env", *(f"{k}={v}" for k, v in env.items())]
        words += [*self.run_prefix, *command]
        lines = [
            f"cd {q(self.remote_dir)} || exit 97",
            f"[ -x {q(command[0])} ] || exit 98",
            "rm -f out.bin" if want_output else ":",
            " ".join(q(w) for w in words) + "; s=$?",
            f"printf '\\n{STATUS}%d\\n' \"$s\" >&2",
        ]
        if want_output:
            lines.append(f"printf '{OUTPUT.encode('unicode_escape').decode()}'; "
                         f"[ -f out.bin ] && od -An -v -tx1 out.bin; rm -f out.bin")
        lines.append("exit 0")
        return "\n".join(lines)

    def execute(self, command: Sequence[str], env: Mapping[str, str], timeout_s: float,
                want_output: bool) -> Completed:
        try:
            script = self.script(command, env, timeout_s, want_output)
        except ValueError as e:
            return Completed(None, "", str(e), 0.0, transport_error=str(e))
        local_limit = timeout_s + KILL_GRACE_S + self.transport_slack_s
        done = self.shell(script, local_limit)
        return self.interpret(done, timeout_s, want_output)

    def interpret(self, done: Completed, timeout_s: float, want_output: bool) -> Completed:
        """Turn the remote script's markers into the program's own Completed."""
        stderr, status = done.stderr, None
        at = stderr.rfind("\n" + STATUS)
        if at >= 0:
            line = stderr[at + 1:].split("\n", 1)[0]
            try:
                status = int(line[len(STATUS):])
            except ValueError:
                status = None
            stderr = stderr[:at]
        if status is None:
            self._deployed.clear()      # the device may have lost the binary: copy again on retry
            if done.timed_out:
                why = f"the remote side did not answer within {timeout_s:g}s plus {self.transport_slack_s:g}s slack"
            elif done.transport_error:
                why = done.transport_error
            else:
                why = f"the remote shell ended without a status (exit {done.returncode}): {stderr.strip()[-300:]}"
            return Completed(None, done.stdout, stderr, done.wall_s, transport_error=why)
        stdout, output = done.stdout, None
        if want_output and OUTPUT in stdout:
            stdout, hexdump = stdout.rsplit(OUTPUT, 1)
            try:
                output = bytes.fromhex("".join(hexdump.split()))
            except ValueError:
                output = None
        timed_out = bool(self.remote_timeout) and (status == 124 or (status == 137 and done.wall_s >= timeout_s))
        rc = -(status - 128) if 128 < status < 160 and not timed_out else status
        return Completed(rc, stdout, stderr, done.wall_s, timed_out, output)

    def cleanup(self) -> None:
        """Remove this campaign's directory on the device."""
        if self._dir is not None:
            self.shell(f"rm -rf -- {shlex.quote(self._dir)}", 60)
            self._dir = None
            self._deployed.clear()

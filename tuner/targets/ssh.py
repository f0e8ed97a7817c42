"""A host reached over OpenSSH: build here (native or cross), copy, run there, clean up.

[transport] keys (each also settable with `--target-opt key=value`):

    host        the machine (required)          port       22
    user        login name ("": ssh's default)  key        identity file ("": ssh's default)
    workdir     remote scratch dir ("/tmp")     run_prefix e.g. ["qemu-aarch64"] or "taskset -c 2"
    known_hosts a known_hosts file ("": ~/.ssh/known_hosts)
    strict_host_key_checking  "accept-new" (default), "yes" or "no"
    ssh_options extra `-o` options, e.g. ["Ciphers=aes128-gcm@openssh.com"]
    multiplex   true: one authenticated connection per campaign (ControlMaster), much cheaper trials
    connect_timeout_s  10
    remote_timeout     the remote `timeout` command ("timeout"; "" when the host has none)

The binary goes over the ssh channel itself (`cat > FILE && chmod 755 FILE` with the bytes on
stdin), reusing the multiplexed connection; scp is not needed on either side. Every ssh
command is an argv list; the one string the remote shell sees is built from quoted words.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from tuner.errors import BadInput
from tuner.records import Availability
from tuner.targets.base import Completed
from tuner.targets.local import run_process
from tuner.targets.remote import RemoteShellTarget, as_bool, as_list


class SshTarget(RemoteShellTarget):
    tags = frozenset({"remote", "needs_host"})
    transport_keys = RemoteShellTarget.transport_keys | {
        "host", "port", "user", "key", "known_hosts", "strict_host_key_checking", "ssh_options",
        "multiplex", "connect_timeout_s"}

    def __init__(self, spec, cache_root: Path) -> None:
        super().__init__(spec, cache_root)
        t = spec.transport
        self.host = str(t.get("host", ""))
        if self.host.startswith("-"):
            raise BadInput("host must not start with '-'", spec.file, "transport.host")
        try:
            self.port = int(t.get("port", 22))
            self.connect_timeout = float(t.get("connect_timeout_s", 10))
        except (TypeError, ValueError) as e:
            raise BadInput(f"port and connect_timeout_s must be numbers: {e}", spec.file, "transport") from None
        self.user = str(t.get("user", ""))
        self.key = str(t.get("key", ""))
        self.known_hosts = str(t.get("known_hosts", ""))
        self.strict = str(t.get("strict_host_key_checking", "accept-new"))
        self.extra = as_list(t.get("ssh_options"))
        self.multiplex = as_bool(t.get("multiplex", True))
        self._control_dir: str | None = None
        self._master_up = False

    # --- argv ----------------------------------------------------------------------
    def ssh_argv(self, *extra: str, master: bool = False) -> list[str]:
        """`ssh [options] -- host`; the caller appends the remote command string."""
        argv = ["ssh", "-T", "-p", str(self.port), "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={max(1, round(self.connect_timeout))}",
                "-o", f"StrictHostKeyChecking={self.strict}", "-o", "LogLevel=ERROR",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
        if self.key:
            argv += ["-i", str(Path(self.key).expanduser()), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={Path(self.known_hosts).expanduser()}"]
        if self.user:
            argv += ["-l", self.user]
        if self.multiplex:
            if self._control_dir is None:
                self._control_dir = tempfile.mkdtemp(prefix="tune-ssh-")
            argv += ["-o", f"ControlPath={self._control_dir}/cm",   # ssh keeps an option's first value
                     "-o", "ControlMaster=yes" if master else "ControlMaster=no"]
        for opt in self.extra:
            argv += ["-o", opt]
        return [*argv, *extra, "--", self.host]

    def _start_master(self) -> None:
        """One background connection that later commands reuse (ControlPersist as a safety net)."""
        if not self.multiplex or self._master_up:
            return
        argv = self.ssh_argv("-N", "-f", "-o", "ControlPersist=600", master=True)
        try:   # stdout/stderr to /dev/null: the daemonised master must not hold our pipes open
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=self.connect_timeout + 10,
                                  start_new_session=True)
            self._master_up = proc.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            self._master_up = False   # commands then connect on their own

    # --- the transport ---------------------------------------------------------------
    def shell(self, script: str, timeout_s: float, stdin: bytes | None = None) -> Completed:
        self._start_master()
        done = run_process([*self.ssh_argv(), script], None, timeout_s, stdin=stdin)
        if done.transport_error:
            return done
        if done.returncode == 255:   # ssh's own failure: connection, authentication, host key
            self._master_up = False
            return Completed(255, done.stdout, done.stderr, done.wall_s, done.timed_out,
                             transport_error=f"ssh to {self.host}:{self.port} failed: {done.stderr.strip()[-300:]}")
        return done

    def push(self, local: Path, remote: str) -> None:
        q = shlex.quote
        parent = remote.rsplit("/", 1)[0] or "/"
        script = f"mkdir -p -- {q(parent)} && cat > {q(remote)} && chmod 755 {q(remote)}"
        done = self.shell(script, 120 + self.connect_timeout, stdin=Path(local).read_bytes())
        if done.transport_error or done.timed_out or done.returncode != 0:
            why = done.transport_error or ("timed out" if done.timed_out else done.stderr.strip()[-300:])
            raise OSError(f"copy to {self.host}:{remote} failed: {why}")

    def probe(self) -> Availability:
        if shutil.which("ssh") is None:
            return Availability(False, "ssh not installed (Debian: openssh-client)")
        if not self.host:
            return Availability(False, "no host: set host in [transport] or --target-opt host=NAME")
        base = super().probe()
        if not base.usable:
            return base
        words = [*self.run_prefix[:1], *([self.remote_timeout] if self.remote_timeout else [])]
        check = " && ".join(f"command -v {shlex.quote(w)} >/dev/null" for w in words) or ":"
        done = self.shell(f"{check} && echo tune-ok", self.connect_timeout + 20)
        if done.transport_error or done.timed_out:
            return Availability(False, done.transport_error or f"{self.host} did not answer")
        if "tune-ok" not in done.stdout:
            return Availability(False, f"{self.host} lacks one of {words} on PATH")
        return Availability(True, "")

    def cleanup(self) -> None:
        try:
            super().cleanup()
        finally:
            if self.multiplex and self._control_dir is not None:
                if self._master_up:
                    subprocess.run(self.ssh_argv("-O", "exit"), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
                    self._master_up = False
                shutil.rmtree(self._control_dir, ignore_errors=True)
                self._control_dir = None

"""A throw-away OpenSSH server on a loopback port, for testing the ssh target for real.

`sshd_server` (a pytest fixture; import it into a test module) starts Debian's
/usr/sbin/sshd in the foreground with a generated config, a fresh ed25519 host key and a
fresh user key in a temporary directory, listening on 127.0.0.1:<free port>. It yields an
`SshServer` whose `transport()` is the [transport] table a target needs (host, port, user,
key, a known_hosts file with the generated host key, StrictHostKeyChecking=yes).

Sandbox notes: as root, sshd needs its privilege-separation directory /run/sshd (created
if missing), `UsePAM no` (no PAM stack needed), `StrictModes no` (the key files live in a
world-readable temp dir) and `PermitRootLogin prohibit-password`. As another user sshd runs
unprivileged and only that user can log in, which is all the tests need.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


@dataclass
class SshServer:
    port: int
    user: str
    key: Path
    known_hosts: Path
    dir: Path
    process: subprocess.Popen

    def transport(self, **extra: object) -> dict[str, object]:
        return {"host": "127.0.0.1", "port": self.port, "user": self.user, "key": str(self.key),
                "known_hosts": str(self.known_hosts), "strict_host_key_checking": "yes", **extra}

    def ssh(self, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a command on the server directly (for test assertions)."""
        return subprocess.run(["ssh", "-T", "-p", str(self.port), "-i", str(self.key), "-o", "BatchMode=yes",
                               "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                               "-l", self.user, "127.0.0.1", command],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tune-test", "-f", str(path)],
                   check=True, capture_output=True, timeout=30)


def start_sshd(root: Path) -> SshServer:
    if not os.path.exists(SSHD) or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server / openssh-client not installed")
    root.mkdir(parents=True, exist_ok=True)
    _keygen(root / "host_key")
    _keygen(root / "user_key")
    (root / "authorized_keys").write_text((root / "user_key.pub").read_text())
    user = getpass.getuser()
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)   # sshd's privilege-separation dir
    port = free_port()
    config = root / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1",
        f"HostKey {root / 'host_key'}",
        f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        f"AllowUsers {user}",
        "PermitUserEnvironment no",
        "MaxStartups 50:30:100",
        "MaxSessions 50",
        "LogLevel ERROR",
        "Subsystem sftp internal-sftp",
        "",
    ]))
    host_pub = (root / "host_key.pub").read_text().split()
    known_hosts = root / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    log = open(root / "sshd.log", "wb")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config), "-p", str(port)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    server = SshServer(port, user, root / "user_key", known_hosts, root, proc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.close()
            raise RuntimeError(f"sshd exited with {proc.returncode}: {(root / 'sshd.log').read_text()}")
        try:
            if server.ssh("echo ready", timeout=10).stdout.strip() == "ready":
                return server
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.2)
    stop_sshd(server)
    raise RuntimeError(f"sshd did not accept logins: {(root / 'sshd.log').read_text()}")


def stop_sshd(server: SshServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="session")
def sshd_server():
    root = Path(tempfile.mkdtemp(prefix="tune-sshd-"))
    server = start_sshd(root)
    try:
        yield server
    finally:
        stop_sshd(server)
        shutil.rmtree(root, ignore_errors=True)

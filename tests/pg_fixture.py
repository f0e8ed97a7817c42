"""A throw-away PostgreSQL server on a loopback port, for testing `--storage postgresql://...` for real.

`pg_server` (a session-scoped pytest fixture; import it into a test module) runs Debian's
PostgreSQL binaries (/usr/lib/postgresql/*/bin, or whatever `initdb` is on PATH): `initdb`
into a fresh temporary directory (trust authentication, superuser `postgres`), `pg_ctl
start -w` on 127.0.0.1:<free port> with its socket in that directory, and `pg_ctl stop -m
immediate` plus removal at teardown. `pg_server.database()` creates a fresh database and
returns its SQLAlchemy URL (`postgresql+psycopg://postgres@127.0.0.1:PORT/NAME`).

initdb refuses to run as root, so as root every server command runs as the `postgres` user
(`runuser -u postgres --`, argument lists, no shell) and the directory is chowned to it; as
another user the commands run as that user. The fixture skips, saying why, only when the
binaries, the psycopg driver or (as root) the `postgres` user are missing.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "postgres"


def _bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and createdb (Debian keeps them off PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                        key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0, reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).resolve().parent))    # /usr/local/bin/initdb may be a symlink
    for d in candidates:
        if all((Path(d) / tool).exists() for tool in ("initdb", "pg_ctl", "createdb")):
            return Path(d)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    bindir: Path
    dir: Path
    port: int
    as_postgres: bool
    _names = itertools.count()

    def cmd(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        argv = [str(self.bindir / tool), *args]
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              cwd=self.dir)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} -> {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        name = f"tune_{os.getpid()}_{next(self._names)}"
        self.cmd("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{name}"


def start_postgres() -> PgServer:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed: apt-get install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("the psycopg driver is not installed: pip install -e '.[postgres]'")
    as_postgres = os.geteuid() == 0
    if as_postgres:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and there is no `postgres` user to run initdb as (it refuses root)")
        if shutil.which("runuser") is None:
            pytest.skip("running as root, and `runuser` (util-linux) is missing to become `postgres`")
    root = Path(tempfile.mkdtemp(prefix="tune-pg-"))     # under /tmp: `postgres` can reach it
    if as_postgres:
        os.chown(root, pw.pw_uid, pw.pw_gid)
    server = PgServer(bindir, root, free_port(), as_postgres)
    try:
        server.cmd("initdb", "-D", str(server.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                   "--no-sync", "--no-instructions")
        server.cmd("pg_ctl", "-D", str(server.data), "-l", str(root / "server.log"), "-w", "-t", "60",
                   "-o", f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=on", "start")
    except Exception:
        log = root / "server.log"
        detail = log.read_text() if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL in {root}\n{detail}") from None
    return server


def stop_postgres(server: PgServer) -> None:
    try:
        server.cmd("pg_ctl", "-D", str(server.data), "-m", "immediate", "-w", "stop", timeout=60)
    except (RuntimeError, subprocess.TimeoutExpired):
        pass
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    server = start_postgres()
    try:
        yield server
    finally:
        stop_postgres(server)

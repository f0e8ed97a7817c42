"""Where a campaign's trials live.

The default is Optuna's journal file (`results/STUDY/journal.log`): an append-only log
that several processes on one machine can share, under a file lock. On this machine the
engine spends about 4 ms per trial on it, against 45 ms with SQLite (commit overhead) and
47-67 ms with PostgreSQL (`bench/storage.py`); a `kill -9` mid-write leaves at worst a torn
last line, which is cut before the next append. Any Optuna storage URL can be given instead
(`--storage`): `postgresql+psycopg://...` spreads a campaign over many machines.

Optuna's file backend fsyncs every write (3.5 ms here), and a trial writes once per knob:
550 ms per trial for a 109-knob flag space. `TrialDurableBackend` writes and flushes each
record at once (so other processes and a kill -9 see it) but fsyncs once per trial, when
the campaign tells a result: every finished measurement is on disk before the next starts.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import distribution_to_json
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.storages.journal._file import get_lock_file
from optuna.storages.journal._storage import JournalOperation

from tuner.errors import BadInput

# A worker proves it is alive every HEARTBEAT_S while it measures (Optuna's heartbeat on a
# database, a renewed lease on a journal); one silent for GRACE_S is dead, and any other worker
# takes its trial back (tuner/studystore.py). $TUNE_HEARTBEAT_S changes both (tests use 1 s).
def heartbeat_s() -> int:
    text = os.environ.get("TUNE_HEARTBEAT_S", "")
    return max(1, int(text)) if text.isdigit() else 30


def grace_s() -> int:
    return 4 * heartbeat_s()


class TrialDurableBackend(JournalFileBackend):
    """A journal file backend whose fsync happens in `sync()`, once per trial."""

    def __init__(self, file_path: str) -> None:
        super().__init__(file_path)
        self._path = file_path
        self._dirty = False

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        with get_lock_file(self._lock):
            with open(self._path, "ab") as f:
                _drop_torn_tail(f)
                f.write(text.encode("utf-8"))
                f.flush()
        self._dirty = True

    def sync(self) -> None:
        if self._dirty:
            fd = os.open(self._path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._dirty = False


def _drop_torn_tail(f: Any) -> None:
    """Cut a last line that lacks its newline: a writer killed mid-record left it (a live writer
    holds the lock until its line is complete). Appending after it would glue the new record
    to the fragment, and the journal reader fails on a bad line that is not the last one."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return
    with open(f.name, "rb") as r:
        r.seek(max(0, size - 65536))
        tail = r.read()
    if tail.endswith(b"\n"):
        return
    cut = tail.rfind(b"\n")
    if cut < 0 and size > len(tail):
        return        # a single line longer than we looked at: leave it to the reader
    f.truncate(size - len(tail) + cut + 1)


class BatchedJournalStorage(JournalStorage):
    """Optuna's journal storage, writing a running trial's parameters in one append.

    Optuna writes one record per parameter, and each write is a locked append followed by a read
    of the journal: with the 384 knobs of the generated gcc space that was most of the engine's
    overhead per trial. Here a parameter record is applied to this process's view at once and
    kept; the kept records are appended together, before this process's next record of any other
    kind (the trial's configuration attribute follows the parameters at once) and before `sync`.
    Other processes see the parameters with that record; reading them back is idempotent."""

    def __init__(self, backend: TrialDurableBackend) -> None:
        super().__init__(backend)
        self._pending: list[dict[str, Any]] = []

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: Any) -> None:
        log = {"op_code": JournalOperation.SET_TRIAL_PARAM, "worker_id": self._replay_result.worker_id,
               "trial_id": trial_id, "param_name": param_name, "param_value_internal": param_value_internal,
               "distribution": distribution_to_json(distribution)}
        with self._thread_lock:
            self._replay_result._apply_set_trial_param(log)   # raises on an incompatible distribution
            self._pending.append(log)

    def _write_log(self, op_code: int, extra_fields: dict[str, Any]) -> None:
        self.flush()
        super()._write_log(op_code, extra_fields)

    def flush(self) -> None:
        if self._pending:
            logs, self._pending = self._pending, []
            self._backend.append_logs(logs)


def sync(storage: BaseStorage) -> None:
    """Make everything written so far durable (a no-op for databases, which commit per write)."""
    if isinstance(storage, BatchedJournalStorage):
        with storage._thread_lock:
            storage.flush()
    backend = getattr(storage, "_backend", None)
    if isinstance(backend, TrialDurableBackend):
        backend.sync()


def _journal(path: Path) -> JournalStorage:
    path.parent.mkdir(parents=True, exist_ok=True)
    return BatchedJournalStorage(TrialDurableBackend(str(path)))


def open_storage(results_dir: Path, url: str | None = None) -> BaseStorage:
    if not url:
        return _journal(results_dir / "journal.log")
    if url.startswith("journal:"):
        return _journal(Path(url[len("journal:"):]))
    try:
        return _rdb(url)
    except (ImportError, ModuleNotFoundError) as e:
        raise BadInput(f"storage needs a driver that is not installed: {e}", None, "--storage") from None
    except Exception as e:  # sqlalchemy's errors for a malformed URL or an unreachable server
        raise BadInput(f"cannot open storage '{url}': {str(e).splitlines()[0]}", None, "--storage") from None


def _rdb(url: str, tries: int = 5) -> BaseStorage:
    """Optuna's RDBStorage, retried when workers starting together race to create its tables in
    an empty database (PostgreSQL: a duplicate key in pg_type, or "already exists"): the loser's
    next try finds the tables there."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(tries):
        try:
            with warnings.catch_warnings():      # heartbeat_interval is "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True},
                                                  heartbeat_interval=heartbeat_s(), grace_period=grace_s())
        except (IntegrityError, ProgrammingError):
            if attempt == tries - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def storage_exists(results_dir: Path, url: str | None) -> bool:
    return bool(url) or (results_dir / "journal.log").exists()

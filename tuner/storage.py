"""Where a campaign's trials live.

The default is Optuna's journal file (`results/STUDY/journal.log`): an append-only log
that several processes on one machine can share, under a file lock. On this machine the
engine spends about 4 ms per trial on it, against 45 ms with SQLite (commit overhead) and
47-67 ms with PostgreSQL (`bench/storage.py`); a `kill -9` mid-write leaves at worst a torn
last line, which is cut before the next append. Any Optuna storage URL can be given instead
(`--storage`): `postgresql+psycopg://...` spreads a campaign over many machines.

Optuna's file backend fsyncs every write (3.5 ms here), and a trial writes once per knob:
550 ms per trial for a 109-knob flag space. `TrialDurableBackend` writes and flushes each
record at once (so other processes and a kill -9 see it) but fsyncs once per measured trial,
when the campaign tells its result: every finished measurement is on disk before the next
starts (a proposal the surrogate skipped is covered by the next measurement's fsync).

Faults name the file: a full disk or a read-only file system is a MachineFault (the campaign
stops, nothing it wrote is torn: a short write is cut back); a line that is not a record is a
CorruptJournal error with its line number (`tune repair` moves such lines aside). The lock is
a flock, which dies with its holder: a killed writer never delays the next start.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.distributions import check_distribution_compatibility, distribution_to_json
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.storages.journal._file import BaseJournalFileLock, get_lock_file
from optuna.storages.journal._storage import JournalOperation
from optuna.trial import FrozenTrial

from tuner.errors import BadInput, MachineFault, RunFailure, machine_fault

OP_CODES = range(0, 11)     # optuna.storages.journal._storage.JournalOperation (10: DISCARD_TRIALS)


class CorruptJournal(RunFailure):
    """A journal line that is not a record (a garbage line, bytes that are not UTF-8, a record
    that does not apply). Exit 1 with the file, the line and what to do."""


class FlockLock(BaseJournalFileLock):
    """An exclusive flock(2) on `journal.log.flock`, held while a record is appended.

    Optuna's default lock is a symlink that a killed writer leaves behind; the next writer then
    waits out Optuna's 30-second grace period before forcing it. The kernel releases a flock
    when its holder dies, however it dies, so a kill -9 never delays the next start. (flock
    works between processes of one machine, and over NFSv4; to share a campaign between
    machines, use a database: `--storage postgresql+psycopg://...`.)
    """

    def __init__(self, journal: str) -> None:
        self.path = journal + ".flock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise storage_fault(e, self.path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)       # closing the descriptor releases the flock


def storage_fault(e: OSError, path: Path | str) -> MachineFault:
    """The journal cannot be written: a full disk, a read-only file system, no permission."""
    return machine_fault(e, path) or MachineFault(f"cannot write the results: {e.strerror or e}",
                                                  e.filename or path)

# A worker proves it is alive every HEARTBEAT_S while it measures (Optuna's heartbeat on a
# database, a renewed lease on a journal); one silent for GRACE_S is dead, and any other worker
# takes its trial back (tuner/studystore.py). $TUNE_HEARTBEAT_S changes both (tests use 1 s).
def heartbeat_s() -> int:
    text = os.environ.get("TUNE_HEARTBEAT_S", "")
    return max(1, int(text)) if text.isdigit() else 30


def grace_s() -> int:
    return 4 * heartbeat_s()


class TrialDurableBackend(JournalFileBackend):
    """A journal file backend whose fsync happens in `sync()`, once per trial; its errors name
    the file (and the line, for a record that cannot be read)."""

    def __init__(self, file_path: str) -> None:
        self._path = file_path
        self._dirty = False
        self.line = 0           # the line of the last record read (for errors found when it applies)
        if os.path.exists(file_path):     # a read-only results directory can still be read
            self._file_path = file_path
            self._lock = FlockLock(file_path)
            self._log_number_offset = {0: 0}
            return
        try:
            super().__init__(file_path, FlockLock(file_path))
        except OSError as e:
            raise storage_fault(e, file_path) from None

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        """Optuna's reader, with errors that name the file and the line. A last line without its
        newline is a record still being written, or torn by a kill: it is skipped (and cut
        before the next append). Any other line that is not a record is an error."""
        try:
            f = open(self._path, "rb")
        except OSError as e:
            raise RunFailure(f"{self._path}: cannot read the journal: {e.strerror}") from None
        with f:
            size = os.fstat(f.fileno()).st_size    # what other writers add meanwhile is read next time
            number = 0
            if log_number_from in self._log_number_offset:
                f.seek(self._log_number_offset[log_number_from])
                number = log_number_from
                size -= self._log_number_offset[log_number_from]
            for number, line in enumerate(f, start=number):
                size -= len(line)
                if size < 0 or not line.endswith(b"\n"):
                    break
                if number + 1 not in self._log_number_offset:
                    self._log_number_offset[number + 1] = self._log_number_offset[number] + len(line)
                if number < log_number_from:
                    continue
                self.line = number + 1
                yield self._record(line, number + 1)

    def _record(self, line: bytes, lineno: int) -> dict[str, Any]:
        record, why = parse_record(line)
        if record is None:
            raise self.corrupt(lineno, why)
        return record

    def corrupt(self, lineno: int, why: str) -> CorruptJournal:
        study = Path(self._path).parent.name if Path(self._path).name == "journal.log" else "STUDY"
        return CorruptJournal(f"{self._path}: line {lineno}: {why}; `tune repair {study}` keeps every "
                              "valid record and moves the bad lines aside")

    def append_logs(self, logs: list[dict[str, Any]]) -> tuple[int, int]:
        """Append records under the lock. Returns the byte offsets where they start and end."""
        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        with get_lock_file(self._lock):
            try:
                with open(self._path, "a+b", buffering=0) as f:   # unbuffered: nothing left to flush at close
                    _drop_torn_tail(f)
                    size = f.tell()
                    try:
                        data = memoryview(text.encode("utf-8"))
                        while data:
                            data = data[f.write(data):]    # a full disk first writes short, then fails
                    except OSError:
                        f.truncate(size)     # no torn record: a full disk leaves the journal as it was
                        raise
                    end = f.tell()
            except OSError as e:
                raise storage_fault(e, self._path) from None
        self._dirty = True
        return size, end

    def skip_own(self, log_number: int, count: int, start: int, end: int) -> bool:
        """Mark `count` records that this process just appended at bytes [start, end) as read,
        when they directly follow the last record read (`log_number` records read so far):
        nobody else's record lies between, so the reader need not parse them back. False
        (nothing changed) when another process appended in between."""
        if self._log_number_offset.get(log_number) != start:
            return False
        self._log_number_offset[log_number + count] = end
        return True

    def sync(self) -> None:
        if self._dirty:
            try:
                fsync_path(self._path)
            except OSError as e:
                raise storage_fault(e, self._path) from None
            self._dirty = False


def _drop_torn_tail(f: Any) -> None:
    """Cut a last line that lacks its newline: a writer killed mid-record left it (a live writer
    holds the lock until its line is complete). Appending after it would glue the new record
    to the fragment, and the journal reader fails on a bad line that is not the last one.
    `f` is open for reading and appending; the common case costs a one-byte read."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return
    f.seek(size - 1)
    if f.read(1) == b"\n":
        f.seek(0, os.SEEK_END)
        return
    f.seek(max(0, size - 65536))
    tail = f.read()
    cut = tail.rfind(b"\n")
    if cut >= 0 or size <= len(tail):   # else a single line longer than we looked at: left to the reader
        f.truncate(size - len(tail) + cut + 1)
    f.seek(0, os.SEEK_END)


class BatchedJournalStorage(JournalStorage):
    """Optuna's journal storage, writing a running trial's parameters in one append.

    Optuna writes one record per parameter, and each write is a locked append followed by a read
    of the journal: with the 384 knobs of the generated gcc space that was most of the engine's
    overhead per trial. Here a parameter record is applied to this process's view at once and
    kept; the kept records are appended together, before this process's next record of any other
    kind (the trial's configuration attribute follows the parameters at once) and before `sync`.
    Other processes see the parameters with that record.

    Per trial and knob this costs a dictionary entry, not Optuna's copy of the trial's whole
    parameter dictionary per parameter (quadratic in the knobs) nor a JSON parse of the record
    read back: records this process appended right after the last one it read are marked read
    (`TrialDurableBackend.skip_own`); when another process appended in between, they are read
    back as before, which is idempotent."""

    def __init__(self, backend: TrialDurableBackend) -> None:
        super().__init__(backend)
        self._pending: list[dict[str, Any]] = []
        self._open: FrozenTrial | None = None     # the trial copy this process's params go into
        self._dist_json: dict[int, tuple[Any, str]] = {}    # id -> (distribution, its JSON)

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: Any) -> None:
        log = {"op_code": JournalOperation.SET_TRIAL_PARAM, "worker_id": self._replay_result.worker_id,
               "trial_id": trial_id, "param_name": param_name, "param_value_internal": param_value_internal,
               "distribution": self._to_json(distribution)}
        with self._thread_lock:
            self._apply_param(log, distribution)   # raises on an incompatible distribution
            self._pending.append(log)

    def _to_json(self, distribution: Any) -> str:
        found = self._dist_json.get(id(distribution))
        if found is None or found[0] is not distribution:
            if len(self._dist_json) > 4096:     # callers that make a new distribution per call
                self._dist_json.clear()
            found = self._dist_json[id(distribution)] = (distribution, distribution_to_json(distribution))
        return found[1]

    def _apply_param(self, log: dict[str, Any], distribution: Any) -> None:
        """What Optuna's replay does with a SET_TRIAL_PARAM record of this worker (the same checks,
        the same errors), writing into one copy of the trial per batch instead of a copy per
        parameter. The copy is never one that was handed out: reads end the batch's copy."""
        replay = self._replay_result
        trial_id, name = log["trial_id"], log["param_name"]
        if not replay._trial_exists_and_updatable(trial_id, log):
            return
        for prev_id in replay._study_id_to_trial_ids[replay._trial_id_to_study_id[trial_id]]:
            prev = replay._trials[prev_id]
            if name in prev.params:
                if prev.distributions[name] is not distribution:    # the same object: compatible
                    check_distribution_compatibility(prev.distributions[name], distribution)
                break
        trial = replay._trials[trial_id]
        if trial is not self._open:
            trial = copy.copy(trial)
            trial.params, trial.distributions = dict(trial.params), dict(trial.distributions)
            replay._trials[trial_id] = self._open = trial
        trial.params[name] = distribution.to_external_repr(log["param_value_internal"])
        trial.distributions[name] = distribution

    def _write_log(self, op_code: int, extra_fields: dict[str, Any]) -> None:
        self.flush()
        super()._write_log(op_code, extra_fields)

    def _sync_with_backend(self) -> None:
        self._open = None       # a read may hand the trial out: the next parameter copies it again
        super()._sync_with_backend()

    def flush(self) -> None:
        if self._pending:
            logs, self._pending = self._pending, []
            self._open = None
            where = self._backend.append_logs(logs)
            backend, read = self._backend, self._replay_result.log_number_read
            if isinstance(backend, TrialDurableBackend) and backend.skip_own(read, len(logs), *where):
                self._replay_result.log_number_read = read + len(logs)     # applied already


class Journal(BatchedJournalStorage):
    """The journal storage tune opens (parameters batched, see BatchedJournalStorage): a record
    that cannot be applied (a line lost from the middle, a hand edit) is a one-line error naming
    the file and the line."""

    def _sync_with_backend(self) -> None:
        try:
            super()._sync_with_backend()
        except (KeyError, AssertionError, TypeError, ValueError, AttributeError, IndexError) as e:
            backend = self._backend
            if isinstance(backend, TrialDurableBackend):
                raise backend.corrupt(backend.line, f"a record that does not apply ({type(e).__name__}: {e})") from None
            raise


def sync(storage: BaseStorage) -> None:
    """Make everything written so far durable (a no-op for databases, which commit per write)."""
    if isinstance(storage, BatchedJournalStorage):
        with storage._thread_lock:
            storage.flush()
    backend = getattr(storage, "_backend", None)
    if isinstance(backend, TrialDurableBackend):
        backend.sync()


def _journal(path: Path) -> JournalStorage:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise BadInput("is not a directory (the results go in a directory)", path.parent) from None
    except OSError as e:
        raise storage_fault(e, path.parent) from None
    if path.is_dir():
        raise BadInput("is a directory, not a journal file", path)
    return Journal(TrialDurableBackend(str(path)))


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


@dataclass(frozen=True)
class Repair:
    """What `repair_journal` found: the records kept, the bad lines (number, why) and where they went."""

    kept: int
    bad: tuple[tuple[int, str], ...]
    salvaged: int             # records recovered from the end of a bad line (a torn record glued to the next)
    moved_to: Path | None


def fsync_path(path: Path | str) -> None:
    """fsync a file or a directory by name (a directory's fsync makes a rename in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def repair_journal(path: Path, dry_run: bool = False) -> Repair:
    """Keep every line that is a journal record, in order; move the others to `journal.log.bad`
    next to the journal (appended, as they were). A bad line that ends with a whole record
    (a writer killed mid-line, then another appended: the old glued-tail failure) keeps that
    record. Holds the journal lock, so no worker appends meanwhile; the journal is replaced
    atomically (written beside it, fsynced, renamed)."""
    from optuna.storages.journal._storage import JournalStorageReplayResult

    lock = FlockLock(str(path))
    with get_lock_file(lock):
        try:
            data = path.read_bytes()
        except OSError as e:
            raise storage_fault(e, path) from None
        lines = data.splitlines(keepends=True)
        replay = JournalStorageReplayResult("tune-repair-")
        good: list[bytes] = []
        bad: list[tuple[int, str, bytes]] = []
        salvaged = 0
        for number, line in enumerate(lines, start=1):
            record, why = parse_record(line)
            if record is None:
                start = line.rfind(b'{"op_code"', 1)
                tail = line[start:] if start > 0 else b""
                record, _ = parse_record(tail) if tail else (None, "")
                if record is None:
                    bad.append((number, why, line))
                    continue
                bad.append((number, why + " (its last record kept)", line[:start] + b"\n"))
                line, salvaged = tail, salvaged + 1
            try:
                replay.apply_logs([record])
            except Exception as e:   # noqa: BLE001 - Optuna's replay raises what it meets
                bad.append((number, f"a record that does not apply ({type(e).__name__}: {e})", line))
                continue
            good.append(line)
        moved_to = path.with_name(path.name + ".bad") if bad else None
        if bad and not dry_run:
            try:
                with open(moved_to, "ab") as f:
                    f.write(b"".join(b if b.endswith(b"\n") else b + b"\n" for _, _, b in bad))
                    f.flush()
                    os.fsync(f.fileno())
                tmp = path.with_name(f".{path.name}.repair-{os.getpid()}")
                with open(tmp, "wb") as f:
                    f.write(b"".join(good))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
                fsync_path(path.parent)           # the rename itself
            except OSError as e:
                raise storage_fault(e, e.filename or path) from None
    return Repair(len(good), tuple((n, why) for n, why, _ in bad), salvaged, moved_to)


def parse_record(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """(the record, "") or (None, why the line is not one)."""
    if not line.endswith(b"\n"):
        return None, "torn (no newline: its writer was killed mid-record)"
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "bytes that are not UTF-8"
    except json.JSONDecodeError as e:
        return None, f"not JSON ({e.msg} at byte {e.pos + 1} of the line)"
    except ValueError as e:
        return None, f"not JSON ({e})"
    if not (isinstance(record, dict) and record.get("op_code") in OP_CODES and "worker_id" in record):
        return None, "JSON, but not a journal record"
    return record, ""

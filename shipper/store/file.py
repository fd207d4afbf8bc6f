"""The file backend: a JSON snapshot plus an append-only journal, under a lock, 0600.

- Every commit appends one framed record (length, CRC-32, msgpack `Delta`) to `<state>.journal`
  and fsyncs it: O(page) bytes, whatever the size of the remembered-id table.
- When the journal outgrows max(1 MiB, 8 x the snapshot), the whole state is written as a new
  snapshot (temp file, fsync, rename, fsync of the directory) that starts the next journal
  generation, and a fresh journal of that generation replaces the old one the same way. Amortised,
  a commit writes at most 1/8 more than its own record.
- After a crash at any byte: a record cut short at the end of the journal was never acknowledged
  and is ignored (and cut off before the next append); a journal of an older generation than the
  snapshot was already folded into it. Anything else that does not check out is corruption, which
  is an error and never a silent reset.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import msgspec
from filelock import FileLock, Timeout

from ..errors import LockHeldError, StateError
from . import READABLE_VERSIONS, Delta, State, Stored

JOURNAL_MAGIC = b"GAJ1"
_HEADER = struct.Struct("<4sQ")  # magic, generation
_RECORD = struct.Struct("<II")  # payload length, CRC-32 of the payload
COMPACT_MIN_BYTES = 1 << 20
COMPACT_RATIO = 8

_json_encoder = msgspec.json.Encoder()
_state_decoder = msgspec.json.Decoder(State)
_delta_encoder = msgspec.msgpack.Encoder()
_delta_decoder = msgspec.msgpack.Decoder(Delta)


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device; free some space"
    if exc.errno == errno.EROFS:
        return "the file system is read-only; point state.path at a writable directory"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; run as the state directory's owner or fix its permissions"
    return exc.strerror or str(exc)


def refuse_unsafe(path: Path) -> None:
    """Refuse state another user could have planted or could change."""
    parent = path.parent
    try:
        dstat = parent.stat()
    except FileNotFoundError:
        raise StateError(f"state.path: directory {str(parent)!r} does not exist; create it (mode 0700)") from None
    if dstat.st_mode & stat.S_IWOTH:
        # Sticky or not: anyone may create files there, so a state file found there proves nothing.
        raise StateError(f"state.path: directory {str(parent)!r} is world-writable; run chmod o-w on it "
                         "or choose another directory")
    for candidate in (path, path.with_name(path.name + ".journal")):
        try:
            fstat = os.lstat(candidate)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(fstat.st_mode):
            raise StateError(f"state.path: {str(candidate)!r} is a symlink; point state.path at the real file")
        if not stat.S_ISREG(fstat.st_mode):
            raise StateError(f"state.path: {str(candidate)!r} is not a regular file")
        if fstat.st_mode & stat.S_IWOTH:
            raise StateError(f"state.path: {str(candidate)!r} is world-writable; run chmod 600 on it")
        euid = os.geteuid()
        if euid != 0 and fstat.st_uid != euid:
            raise StateError(f"state.path: {str(candidate)!r} belongs to another user (uid {fstat.st_uid}); "
                             "run as that user or remove the file")


def _write_atomically(path: Path, data: bytes) -> None:
    """Temp file, fsync, rename, fsync the directory: a crash leaves the old or the new file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StateError(f"cannot write state file {str(path)!r}: {_os_reason(exc)}") from None
    _fsync_dir(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(directory: Path) -> None:
    dfd = os.open(directory, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(dfd)
    finally:
        os.close(dfd)


def decode_snapshot(data: bytes, where: str) -> State:
    try:
        state = _state_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StateError(f"state file {where!r} is corrupt ({str(exc)[:100]}); restore it from backup, or "
                         "move it and its .journal away to start again from poll.start_from") from None
    if state.version not in READABLE_VERSIONS:
        raise StateError(f"state file {where!r} has version {state.version}, this program reads "
                         f"{', '.join(map(str, READABLE_VERSIONS))}; use a matching release")
    return state


def parse_journal(data: bytes, gen: int, where: str) -> tuple[list[Delta], int]:
    """The commits of journal generation `gen`, and the offset after the last whole record."""
    if len(data) < _HEADER.size or data[:4] != JOURNAL_MAGIC:
        raise StateError(f"state journal {where!r} has no valid header; restore it from backup, or move it "
                         "and the state file away to start again from poll.start_from")
    _, journal_gen = _HEADER.unpack_from(data)
    if journal_gen < gen:
        return [], _HEADER.size  # already folded into the snapshot (a crash during compaction)
    if journal_gen > gen:
        raise StateError(f"state journal {where!r} is newer than its snapshot (an old state file restored?); "
                         "restore both files from the same backup")
    deltas: list[Delta] = []
    offset, end = _HEADER.size, len(data)
    while end - offset >= _RECORD.size:
        length, crc = _RECORD.unpack_from(data, offset)
        start = offset + _RECORD.size
        if start + length > end:
            break  # cut short by a crash: never acknowledged
        payload = data[start:start + length]
        if zlib.crc32(payload) != crc:
            if start + length == end:
                break  # a torn last write
            raise StateError(f"state journal {where!r} is corrupt at byte {offset}; restore it from backup")
        try:
            deltas.append(_delta_decoder.decode(payload))
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise StateError(f"state journal {where!r} has an unreadable record at byte {offset}") from None
        offset = start + length
    return deltas, offset


class FileStore:
    """Holds the lock for the process lifetime; commits append to the journal."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()
        self.where = str(self.path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.journal_path = self.path.with_name(self.path.name + ".journal")
        self._lock: FileLock | None = None
        self._fd: int | None = None
        self._gen: int | None = None  # the generation of the loaded snapshot; None: no snapshot yet
        self._journal_end = 0
        self._journal_bytes = 0
        self._snapshot_bytes = 0

    # -- the lock -------------------------------------------------------------------------------
    def acquire(self) -> None:
        refuse_unsafe(self.path)
        lock = FileLock(str(self.lock_path), timeout=0, mode=0o600)
        try:
            lock.acquire()
        except Timeout:
            raise LockHeldError(f"another instance holds the lock on {self.where!r}; stop it first or give this "
                                "one its own state.path") from None
        except OSError as exc:
            raise StateError(f"state.path: cannot create lock {str(self.lock_path)!r} ({_os_reason(exc)})") from None
        self._lock = lock

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def is_locked_elsewhere(self) -> bool:
        """True while another process holds the lock. Never creates the lock file: a probe run as
        another user (root) must not leave a file the daemon's user cannot open."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            os.close(fd)
        return False

    def writable(self) -> bool:
        """Whether this process could create the state file and its lock."""
        if self.lock_path.exists() and not os.access(self.lock_path, os.W_OK):
            return False
        return os.access(self.path.parent, os.W_OK | os.X_OK)

    def ensure_active(self) -> None:
        """A held file lock cannot be lost."""

    # -- reading ---------------------------------------------------------------------------------
    def _read(self, path: Path) -> bytes | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"state file {str(path)!r} is unreadable ({_os_reason(exc)})") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StateError(f"state.path: {str(path)!r} is not a regular file")
            with os.fdopen(fd, "rb", closefd=False) as fh:
                return fh.read()
        finally:
            os.close(fd)

    def load(self) -> Stored | None:
        refuse_unsafe(self.path)
        previous: bytes | None = None
        for _ in range(5):  # a compaction by the running daemon can race a reader: read again
            data = self._read(self.path)
            if data is None:
                self._gen = None
                return None
            state = decode_snapshot(data, self.where)
            journal = self._read(self.journal_path)
            if journal is None:
                deltas, end = [], 0
            else:
                try:
                    deltas, end = parse_journal(journal, state.journal_gen, str(self.journal_path))
                except StateError:
                    # A reader racing the daemon's compaction sees the new journal before the new
                    # snapshot; a snapshot that did not change in between means real damage.
                    if self._lock is None and data != previous and _gen_of(journal) > state.journal_gen:
                        previous = data
                        continue
                    raise
            self._gen, self._journal_end = state.journal_gen, end
            self._snapshot_bytes, self._journal_bytes = len(data), end
            if journal is not None and _gen_of(journal) < state.journal_gen:
                self._journal_end = -1  # stale: replace it before the next append
            return Stored(state, deltas)
        raise StateError(f"state file {self.where!r} keeps changing while read; retry")

    # -- writing ---------------------------------------------------------------------------------
    def commit(self, delta: Delta, full: Callable[[], State]) -> None:
        assert self._lock is not None, "commit() needs the lock"
        if self._gen is None or self._journal_bytes > max(COMPACT_MIN_BYTES, COMPACT_RATIO * self._snapshot_bytes):
            self.compact(full())  # the full state already includes this delta
            return
        if self._fd is None:
            self._open_journal()
        assert self._fd is not None
        payload = _delta_encoder.encode(delta)
        record = _RECORD.pack(len(payload), zlib.crc32(payload)) + payload
        try:
            _write_all(self._fd, record)
            os.fsync(self._fd)
        except OSError as exc:
            # The record may be half written: cut back to the last whole one before anything else.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._journal_bytes)
            raise StateError(f"cannot append to state journal {str(self.journal_path)!r}: {_os_reason(exc)}") from None
        self._journal_bytes += len(record)

    def _open_journal(self) -> None:
        if self._journal_end <= 0 or not self.journal_path.exists():
            self._new_journal(self._gen or 0)
            return
        try:
            fd = os.open(self.journal_path, os.O_RDWR | os.O_NOFOLLOW)
            os.ftruncate(fd, self._journal_end)  # drop a record a crash cut short
            os.lseek(fd, 0, os.SEEK_END)
        except OSError as exc:
            raise StateError(f"cannot open state journal {str(self.journal_path)!r}: {_os_reason(exc)}") from None
        self._fd, self._journal_bytes = fd, self._journal_end

    def _new_journal(self, gen: int) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        _write_atomically(self.journal_path, _HEADER.pack(JOURNAL_MAGIC, gen))
        try:
            fd = os.open(self.journal_path, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW)
        except OSError as exc:
            raise StateError(f"cannot open state journal {str(self.journal_path)!r}: {_os_reason(exc)}") from None
        self._fd, self._journal_bytes = fd, _HEADER.size

    def compact(self, state: State) -> None:
        """Write the whole state as the snapshot of the next journal generation."""
        assert self._lock is not None, "compact() needs the lock"
        gen = (self._gen if self._gen is not None else -1) + 1
        state.journal_gen = gen
        data = _json_encoder.encode(state)
        _write_atomically(self.path, data)
        self._gen, self._snapshot_bytes = gen, len(data)
        self._new_journal(gen)


def _gen_of(journal: bytes) -> int:
    if len(journal) < _HEADER.size or journal[:4] != JOURNAL_MAGIC:
        return -1
    return int(_HEADER.unpack_from(journal)[1])

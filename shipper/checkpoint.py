"""The checkpoint store: the only module that writes state. Locked, atomic, versioned, 0600."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

import msgspec
from filelock import FileLock, Timeout

from .errors import LockHeldError, StateError

STATE_VERSION = 1


class State(msgspec.Struct, kw_only=True):
    """What survives a restart. Times are epoch milliseconds."""

    version: int = STATE_VERSION
    frontier_ms: int | None = None
    recheck_ms: int | None = None
    seen: bytes = b""
    emitted: int = 0
    quarantined: int = 0
    gaps: int = 0
    last_success: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    last_health: str | None = None
    updated_at: str | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(State)


def _refuse_unsafe(path: Path) -> None:
    parent = path.parent
    try:
        dstat = parent.stat()
    except FileNotFoundError:
        raise StateError(f"state.path: directory {str(parent)!r} does not exist; create it (mode 0700)") from None
    if dstat.st_mode & stat.S_IWOTH and not dstat.st_mode & stat.S_ISVTX:
        raise StateError(
            f"state.path: directory {str(parent)!r} is world-writable; run chmod o-w on it "
            "or choose another directory"
        )
    try:
        fstat = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(fstat.st_mode):
        raise StateError(f"state.path: {str(path)!r} is a symlink; point state.path at the real file")
    if not stat.S_ISREG(fstat.st_mode):
        raise StateError(f"state.path: {str(path)!r} is not a regular file")
    if fstat.st_mode & stat.S_IWOTH:
        raise StateError(f"state.path: {str(path)!r} is world-writable; run chmod 600 on it")


class CheckpointStore:
    """Holds the state file's lock for the process lifetime and writes it atomically."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock: FileLock | None = None

    def acquire(self) -> None:
        _refuse_unsafe(self.path)
        lock = FileLock(str(self.lock_path), timeout=0, mode=0o600)
        try:
            lock.acquire()
        except Timeout:
            raise LockHeldError(
                f"another instance holds the lock on {str(self.path)!r}; stop it first or give this "
                "one its own state.path"
            ) from None
        except OSError as exc:
            raise StateError(f"state.path: cannot create lock {str(self.lock_path)!r} ({exc.strerror})") from None
        self._lock = lock

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

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def load(self) -> State | None:
        """The saved state, None if there is none yet; a damaged file is an error, never a reset."""
        _refuse_unsafe(self.path)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"state file {str(self.path)!r} is unreadable ({exc.strerror}); fix its permissions") from None
        try:
            state = _decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise StateError(
                f"state file {str(self.path)!r} is corrupt ({str(exc)[:100]}); restore it from backup, or "
                "move it away to start again from poll.start_from"
            ) from None
        if state.version != STATE_VERSION:
            raise StateError(
                f"state file {str(self.path)!r} has version {state.version}, this program reads "
                f"{STATE_VERSION}; use a matching release"
            )
        return state

    def save(self, state: State) -> None:
        """Temp file, fsync, rename, fsync the directory: a crash leaves the old or the new file."""
        assert self._lock is not None, "save() needs the lock"
        data = _encoder.encode(state)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            with contextlib.suppress(OSError):
                os.fsync(dfd)
        finally:
            os.close(dfd)

    def __enter__(self) -> CheckpointStore:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

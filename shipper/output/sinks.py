"""Where pages go: stdout (for an exec input) or a size-rotated file (sidecar mode).

A page is handed over whole and counts as written only once it is consumed (a pipe drained by
its reader) or durable (fsynced); only then may the checkpoint move past it. No write blocks a
shutdown: on a pipe, writes are non-blocking and wait in short polls that watch the stop.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import select
import stat
import termios
import time
from pathlib import Path
from typing import BinaryIO, Protocol

from .. import logs
from ..errors import ConfigError, Interrupted, OutputClosed, OutputError
from ..lifecycle import Lifecycle

_POLL_MS = 50
STDOUT_FD = 1


class Sink(Protocol):
    def write_page(self, page: bytes | bytearray) -> None:
        """Write whole NDJSON lines (newline-terminated) and make them durable or consumed."""
        ...

    def reader_gone(self) -> bool: ...

    def reopen(self) -> None:
        """After SIGHUP: reopen files that log rotation may have moved."""
        ...

    def close(self) -> None: ...


def open_append(path: str, key: str) -> BinaryIO:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)
    except OSError as exc:
        raise ConfigError(f"{key}: cannot open {path!r} for appending ({exc.strerror}); "
                          "create its directory or fix its permissions") from None
    return os.fdopen(fd, "ab")


def _output_error(exc: OSError, where: str) -> OutputError:
    reason = "no space left on the device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return OutputError(f"cannot write to {where}: {reason}; the checkpoint did not move")


class StdoutSink:
    """Writes pages to stdout; on a pipe, a page counts as written once the reader has taken it.

    Bytes still sitting in the pipe buffer are lost if the reader exits (`| head`), so the
    checkpoint must not move until the pipe has drained. EPIPE becomes OutputClosed.
    """

    def __init__(self, lifecycle: Lifecycle, fd: int | None = None) -> None:
        self.lifecycle = lifecycle
        self.fd = STDOUT_FD if fd is None else fd
        try:
            mode = os.fstat(self.fd).st_mode
        except OSError:
            raise ConfigError("stdout is closed: run the shipper with stdout connected to your log agent "
                              "or set output.path") from None
        self.is_pipe = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        if self.is_pipe:
            flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            fcntl.fcntl(self.fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)

    def write_page(self, page: bytes | bytearray) -> None:
        if not page:
            return
        view = memoryview(page)
        try:
            while view:
                try:
                    view = view[os.write(self.fd, view):]
                except BlockingIOError:
                    self._wait(select.POLLOUT, "stdout reader stopped reading")
        except BrokenPipeError:
            self._closed()
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.EBADF):
                self._closed()
            raise _output_error(exc, "stdout") from None
        if self.is_pipe:
            self._wait_drained()

    def _wait(self, events: int, what: str) -> None:
        """Wait for the pipe (POLLOUT), watching the stop; OutputClosed when the reader is gone."""
        poller = select.poll()
        poller.register(self.fd, events)
        while True:
            for _, revents in poller.poll(_POLL_MS):
                if revents & (select.POLLERR | select.POLLHUP):
                    self._closed()
                if revents & events:
                    return
            self._check_give_up(what)

    def _check_give_up(self, what: str) -> None:
        limit = self.lifecycle.give_up_at()
        if limit is not None and time.monotonic() > limit:
            raise Interrupted(f"{what}: abandoned the page at stop (not checkpointed)")

    def _wait_drained(self) -> None:
        poller = select.poll()
        poller.register(self.fd, 0)  # only POLLERR/POLLHUP: a pipe with room is always writable
        unread = array.array("i", [0])
        wait_ms = 1
        while True:
            fcntl.ioctl(self.fd, termios.FIONREAD, unread)
            if unread[0] == 0:
                return
            if poller.poll(wait_ms):
                self._closed()
            wait_ms = min(_POLL_MS, wait_ms * 2)
            self._check_give_up("stdout reader did not drain the last page")

    def reader_gone(self) -> bool:
        """True once nobody can read our stdout pipe any more (the host agent died)."""
        if not self.is_pipe:
            return False
        poller = select.poll()
        poller.register(self.fd, 0)
        return bool(poller.poll(0))

    def _closed(self) -> None:
        # Point fd 1 at /dev/null so the interpreter's final flush cannot raise again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.fd)
            os.close(devnull)
        raise OutputClosed("stdout was closed by its reader")

    def reopen(self) -> None:
        """stdout cannot be reopened."""

    def close(self) -> None:
        """Nothing is buffered."""


class RotatingFileSink:
    """NDJSON file with size-based rotation (path, path.1 … path.N); fsync per page."""

    def __init__(self, path: str, rotate_bytes: int, keep_files: int) -> None:
        self.path = Path(path)
        self.rotate_bytes = rotate_bytes
        self.keep_files = keep_files
        self._fh: BinaryIO = open_append(path, "output.path")
        self._size = self._fh.tell()

    def _rotate(self) -> None:
        self._fh.close()
        for i in range(self.keep_files - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        extra = self.path.with_name(f"{self.path.name}.{self.keep_files + 1}")
        if extra.exists():
            # If the agent lags by more than rotate_bytes x keep_files, this file was not read yet.
            logs.warning("output file rotated out", file=str(extra), size=extra.stat().st_size,
                         fix="make output.rotate_bytes x output.keep_files larger than the agent's worst lag")
            extra.unlink()
        self._fh = open_append(str(self.path), "output.path")
        self._size = 0

    def write_page(self, page: bytes | bytearray) -> None:
        try:
            # Rotation happens between pages, so a line is never split across files.
            if self._size and self._size + len(page) > self.rotate_bytes:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._rotate()
            self._fh.write(page)
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise _output_error(exc, str(self.path)) from None
        self._size += len(page)

    def reader_gone(self) -> bool:
        return False

    def reopen(self) -> None:
        """The file may have been moved by logrotate: start appending to the configured path again."""
        with contextlib.suppress(OSError):
            self._fh.close()
        self._fh = open_append(str(self.path), "output.path")
        self._size = self._fh.tell()
        logs.info("output file reopened", file=str(self.path))

    def close(self) -> None:
        self._fh.close()

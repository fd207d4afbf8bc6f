"""NDJSON out: one msgspec encoder, bounded line size, one flush per page.

Sinks: stdout (for an exec input) or a size-rotated file (sidecar mode). A page is written and
flushed before the checkpoint may advance past it.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import select
import stat
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import msgspec

from .errors import ConfigError, Interrupted, OutputClosed

MARKER = "_truncated"
_MIN_KEEP = 64


def _open_append(path: str, key: str) -> BinaryIO:
    try:
        return open(path, "ab")  # noqa: SIM115 - held for the sink's lifetime
    except OSError as exc:
        raise ConfigError(f"{key}: cannot open {path!r} for appending ({exc.strerror}); "
                          "create its directory or fix its permissions") from None


class Sink(Protocol):
    def write_page(self, page: bytes | bytearray) -> None:
        """Write whole NDJSON lines (newline-terminated) and make them durable or consumed."""
        ...

    def reader_gone(self) -> bool: ...

    def close(self) -> None: ...


def _strings(node: Any, path: tuple[Any, ...], out: list[tuple[int, tuple[Any, ...]]]) -> None:
    if isinstance(node, str):
        if len(node) > _MIN_KEEP:
            out.append((len(node.encode("utf-8")), path))
    elif isinstance(node, dict):
        for k, v in node.items():
            _strings(v, (*path, k), out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _strings(v, (*path, i), out)


def _containers(node: Any, path: tuple[Any, ...], out: list[tuple[int, tuple[Any, ...]]], enc: Any) -> None:
    if isinstance(node, (dict, list)) and path:
        out.append((len(enc(node)), path))
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        if isinstance(v, (dict, list)):
            _containers(v, (*path, k), out, enc)


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def shrink_line(line: bytes, limit: int, protect: frozenset[str] = frozenset()) -> bytes:
    """Cut the largest string values (then the largest containers) until `line` + newline fits.

    Deterministic; keeps valid JSON, the top-level keys in `protect` and a marker with the size.
    """
    enc = msgspec.json.encode
    doc = msgspec.json.decode(line)
    original = len(line)
    if not isinstance(doc, dict):
        doc = {"value": doc}
    cut: list[str] = []
    doc[MARKER] = {"original_bytes": original, "cut": cut}

    def size() -> int:
        return len(enc(doc)) + 1

    strings: list[tuple[int, tuple[Any, ...]]] = []
    _strings(doc, (), strings)
    strings.sort(key=lambda x: (-x[0], repr(x[1])))
    for _, path in strings:
        excess = size() - limit
        if excess <= 0:
            break
        if len(path) == 1 and path[0] in protect:
            continue
        value: str = _get(doc, path)
        keep = max(0, len(value) - excess - 32)
        _set(doc, path, value[:keep] + "…[truncated]")
        cut.append(".".join(map(str, path)))
    while size() > limit:
        boxes: list[tuple[int, tuple[Any, ...]]] = []
        _containers({k: v for k, v in doc.items() if k != MARKER and k not in protect}, (), boxes, enc)
        if not boxes:
            break
        boxes.sort(key=lambda x: (-x[0], repr(x[1])))
        _, path = boxes[0]
        _set(doc, path, "[truncated]")
        cut.append(".".join(map(str, path)))
    if size() > limit:
        # Last resort: keep only the protected keys (shortened if they alone are too big) and the marker.
        doc = {k: v for k, v in doc.items() if k in protect}
        doc[MARKER] = {"original_bytes": original, "cut": ["*"]}
        for keep in (256, 32, 0):
            if size() <= limit:
                break
            doc = {k: (v[:keep] if isinstance(v, str) else v if keep else None) for k, v in doc.items()}
            doc[MARKER] = {"original_bytes": original, "cut": ["*"]}
    return enc(doc)


class LineEncoder:
    """Encodes records to single NDJSON lines no longer than `max_line_bytes` (newline included)."""

    def __init__(self, max_line_bytes: int, protect: frozenset[str] = frozenset()) -> None:
        self.max_line_bytes = max_line_bytes
        self.protect = protect
        encoder = msgspec.json.Encoder()
        self.raw_encode, self.encode_into = encoder.encode, encoder.encode_into
        self.shrunk = 0

    def fit(self, line: bytes) -> bytes:
        """Shrink an encoded line that is too long (the caller checks the length: hot path)."""
        self.shrunk += 1
        return shrink_line(line, self.max_line_bytes, self.protect)

    def encode(self, record: Any) -> bytes:
        line = self.raw_encode(record)
        return line if len(line) + 1 <= self.max_line_bytes else self.fit(line)


class StdoutSink:
    """Writes pages to stdout; on a pipe, a page counts as written once the reader has taken it.

    Bytes still sitting in the pipe buffer are lost if the reader exits (`| head`), so the
    checkpoint must not move until the pipe has drained. EPIPE becomes OutputClosed.
    """

    def __init__(self, stream: BinaryIO | None = None, stop: threading.Event | None = None) -> None:
        self.stream = stream or sys.stdout.buffer
        self.stop = stop
        self.deadline: float | None = None  # monotonic; set by --max-runtime
        try:
            self._fd: int | None = self.stream.fileno()
            self._is_pipe = stat.S_ISFIFO(os.fstat(self._fd).st_mode)
        except (OSError, ValueError, AttributeError):
            self._fd, self._is_pipe = None, False

    def write_page(self, page: bytes | bytearray) -> None:
        if not page:
            return
        try:
            if self._fd is None:
                self.stream.write(page)
                self.stream.flush()
            else:
                self._write_all(page)
        except (BrokenPipeError, ValueError) as exc:
            self._closed(exc)
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            self._closed(exc)
        if self._is_pipe:
            self._wait_drained()

    def _write_all(self, data: bytes | bytearray) -> None:
        # A signal can cut a blocking write short: os.write then returns a partial count, and the
        # rest must still go out, or the checkpoint would pass events never written.
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def _wait_drained(self) -> None:
        assert self._fd is not None
        poller = select.poll()
        poller.register(self._fd, 0)  # only POLLERR/POLLHUP: a pipe with room is always writable
        unread = array.array("i", [0])
        wait_ms, stopped_at = 1, None
        while True:
            fcntl.ioctl(self._fd, termios.FIONREAD, unread)
            if unread[0] == 0:
                return
            if poller.poll(wait_ms):
                self._closed(None)
            wait_ms = min(50, wait_ms * 2)
            if self.stop is not None and self.stop.is_set():
                # A reader that stops reading must not hold a shutdown (or --max-runtime) hostage.
                stopped_at = stopped_at or time.monotonic()
                limit = stopped_at + 5
                if self.deadline is not None:
                    limit = min(limit, self.deadline)
                if time.monotonic() > limit:
                    raise Interrupted("stdout reader did not drain the last page")

    def reader_gone(self) -> bool:
        """True once nobody can read our stdout pipe any more (the host agent died)."""
        if not self._is_pipe or self._fd is None:
            return False
        poller = select.poll()
        poller.register(self._fd, 0)
        return bool(poller.poll(0))

    def _closed(self, exc: BaseException | None) -> None:
        # Point fd 1 at /dev/null so the interpreter's final flush cannot raise again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        raise OutputClosed("stdout was closed by its reader") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stream.flush()


class RotatingFileSink:
    """NDJSON file with size-based rotation (path, path.1 … path.N); fsync per page."""

    def __init__(self, path: str, rotate_bytes: int, keep_files: int) -> None:
        self.path = Path(path)
        self.rotate_bytes = rotate_bytes
        self.keep_files = keep_files
        self._fh: BinaryIO = _open_append(path, "output.path")
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
            from . import logs

            # If the agent lags by more than rotate_bytes x keep_files, this file was not read yet.
            logs.warning("output file rotated out", file=str(extra), size=extra.stat().st_size,
                         fix="make output.rotate_bytes x output.keep_files larger than the agent's worst lag")
            extra.unlink()
        self._fh = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def write_page(self, page: bytes | bytearray) -> None:
        # Rotation happens between pages, so a line is never split across files.
        if self._size and self._size + len(page) > self.rotate_bytes:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._rotate()
        self._fh.write(page)
        self._size += len(page)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def reader_gone(self) -> bool:
        return False

    def close(self) -> None:
        self._fh.close()


class Quarantine:
    """Events that fail validation: appended to a file, or logged; always counted."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.count = 0
        self._fh: BinaryIO | None = _open_append(path, "output.quarantine") if path else None

    def add(self, raw: bytes, reason: str) -> None:
        from . import logs

        self.count += 1
        if self._fh is not None:
            doc = {"reason": reason, "raw": raw.decode("utf-8", "replace")}
            self._fh.write(msgspec.json.encode(doc) + b"\n")
            logs.warning("event quarantined", reason=reason, file=self.path)
        else:
            logs.error("event quarantined", reason=reason, raw=raw[:2000].decode("utf-8", "replace"))

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

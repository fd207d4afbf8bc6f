"""Events that fail validation: appended to a file, or logged; always counted by the caller."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import BinaryIO

import msgspec

from .. import logs
from .sinks import open_append


class Quarantine:
    """One quarantine destination; several orgs may share it (one lock, lines written whole)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fh: BinaryIO | None = open_append(path, "output.quarantine") if path else None

    def add(self, items: list[tuple[bytes, str]], org: str = "") -> None:
        """Record (raw event, reason) pairs and make them durable."""
        if not items:
            return
        if self._fh is None:
            for raw, reason in items:
                logs.error("event quarantined", org=org or None, reason=reason,
                           raw=raw[:2000].decode("utf-8", "replace"))
            return
        data = b"".join(
            msgspec.json.encode({"reason": reason, "org": org or None, "raw": raw.decode("utf-8", "replace")}) + b"\n"
            for raw, reason in items
        )
        with self._lock:
            self._fh.write(data)
            self._fh.flush()
            os.fsync(self._fh.fileno())
        for _, reason in items:
            logs.warning("event quarantined", org=org or None, reason=reason, file=self.path)

    def reopen(self) -> None:
        if self.path is None:
            return
        with self._lock:
            if self._fh is not None:
                with contextlib.suppress(OSError):
                    self._fh.close()
            self._fh = open_append(self.path, "output.quarantine")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()

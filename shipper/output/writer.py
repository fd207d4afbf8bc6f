"""The one writer every org's pages go through: a page is written whole, never interleaved."""

from __future__ import annotations

import threading

from ..lifecycle import Lifecycle
from .quarantine import Quarantine
from .sinks import Sink


class Writer:
    def __init__(self, sink: Sink, lifecycle: Lifecycle) -> None:
        self.sink = sink
        self.lifecycle = lifecycle
        self.quarantines: dict[str | None, Quarantine] = {}
        self._lock = threading.Lock()

    def quarantine(self, path: str | None) -> Quarantine:
        """The shared quarantine for `path` (orgs naming the same file share one handle)."""
        with self._lock:
            if path not in self.quarantines:
                self.quarantines[path] = Quarantine(path)
            return self.quarantines[path]

    def write(self, page: bytes | bytearray) -> None:
        """Hand one page to the sink; returns once it is consumed or durable."""
        if not page:
            return
        with self._lock:
            if self.lifecycle.take_reopen():
                self.sink.reopen()
                for q in self.quarantines.values():
                    q.reopen()
            self.sink.write_page(page)

    def reader_gone(self) -> bool:
        return self.sink.reader_gone()

    def close(self) -> None:
        self.sink.close()
        for q in self.quarantines.values():
            q.close()

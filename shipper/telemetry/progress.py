"""A progress line for long catch-ups on a terminal (stderr only)."""

from __future__ import annotations

import sys
import time

from ..models import format_ms


class ProgressLine:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.first_pos: int | None = None
        self._last = 0.0

    def __call__(self, start_ms: int, end_ms: int, position_ms: int, emitted: int) -> None:
        now = time.monotonic()
        if now - self._last < 0.5:
            return
        self._last = now
        if self.first_pos is None:
            self.first_pos = position_ms
        elapsed = max(1e-6, now - self.started)
        done = max(0, position_ms - self.first_pos)
        left = max(0, end_ms - position_ms)
        eta = left * elapsed / done if done else 0
        sys.stderr.write(
            f"\r{format_ms(start_ms)} → {format_ms(end_ms)}  at {format_ms(position_ms)}  "
            f"{emitted / elapsed:,.0f} ev/s  ~{eta:,.0f}s left   "
        )
        sys.stderr.flush()

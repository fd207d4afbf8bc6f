"""The default source: Genesys Cloud's async audit query for catch-ups and old windows, and one
synchronous realtime request for the recent, short windows of a daemon's every cycle (`poll.tail`),
which costs one request instead of three (submit, status, results). Measured in
benchmarks/bench_api.py: an idle daemon's requests per hour with either."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import msgspec

from .async_query import AsyncQuery
from .base import ReadProgress
from .realtime_query import RealtimeQuery

if TYPE_CHECKING:
    from ..config import Config
    from ..net.http import HttpClient

TAIL_MAX_MS = 3_600_000  # a window this short and recent is read with the realtime query
# ... "recent": starting at most this long ago. A daemon's cycle reads its new interval and the
# late re-read (late_window old); a catch-up's older chunks keep the async query, whose cursor
# pages never re-read a burst (realtime pages restart at the last event's millisecond).
TAIL_AGE_MS = 2 * 3_600_000


class AuditsQuerySource:
    name = "audits-query"
    ordered = True  # sorted by Timestamp ascending, as requested
    service_mapping_path = "audits/query/servicemapping"

    def __init__(self, cfg: Config, client: HttpClient) -> None:
        self.client = client
        self.query = AsyncQuery(cfg, client)
        self.tail = RealtimeQuery(cfg, client) if cfg.poll.tail == "realtime" else None

    def pages(self, start_ms: int, end_ms: int, progress: ReadProgress) -> Iterator[list[msgspec.Raw]]:
        if self.tail is not None and end_ms - start_ms <= TAIL_MAX_MS and start_ms >= self._tail_from():
            return self.tail.pages(start_ms, end_ms, progress)
        return self.query.pages(start_ms, end_ms, progress)

    def _tail_from(self) -> int:
        assert self.tail is not None
        return max(self.tail.oldest_ms(), int(self.client.server_now() * 1000) - TAIL_AGE_MS)

    def probe(self) -> int:
        return self.query.probe()

"""Genesys Cloud's realtime audit query (see realtime_query.py). It covers only the last 14 days:
anything older is read through the async query automatically."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import msgspec

from .. import logs
from ..models import format_ms
from .async_query import AsyncQuery
from .base import ReadProgress
from .realtime_query import FALLBACK_MARGIN_MS, RealtimeQuery

if TYPE_CHECKING:
    from ..config import Config
    from ..net.http import HttpClient


class AuditsRealtimeSource:
    name = "audits-realtime"
    ordered = True  # sorted by Timestamp ascending, as requested
    service_mapping_path = "audits/query/realtime/servicemapping"

    def __init__(self, cfg: Config, client: HttpClient) -> None:
        self.cfg, self.client = cfg, client
        self.realtime = RealtimeQuery(cfg, client)
        self._older: AsyncQuery | None = None

    def pages(self, start_ms: int, end_ms: int, progress: ReadProgress) -> Iterator[list[msgspec.Raw]]:
        edge = self.realtime.oldest_ms()
        while start_ms < min(end_ms, edge):
            part_end = min(end_ms, edge)
            logs.info("realtime queries cover only the last 14 days: reading the older part with the async "
                      "audit query", start=format_ms(start_ms), end=format_ms(part_end))
            if self._older is None:
                self._older = AsyncQuery(self.cfg, self.client)
            yield from self._older.pages(start_ms, part_end, progress)
            start_ms = part_end
            # The 14-day edge moved while that part was read: go round again only once it has
            # used up half the margin, or this would chase the edge in tiny slices.
            edge = self.realtime.oldest_ms() - FALLBACK_MARGIN_MS // 2
        yield from self.realtime.pages(start_ms, end_ms, progress)

    def probe(self) -> int:
        return self.realtime.probe()

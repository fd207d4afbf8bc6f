"""The realtime audit query's mechanics: synchronous, numbered pages, last 14 days only.

Page numbers are offsets into a result set that grows while we read it, so the source never
trusts `pageNumber + 1` across a timestamp change: after each page it starts a new query at the
last event's timestamp (inclusive) and the engine drops the ids it already wrote. Only while a
whole page shares that one timestamp does it page on by number inside the same query, so a burst
larger than a page can neither loop nor be skipped. One request answers a window with fewer events
than a page: the cheapest way to read a recent, short window.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from ..core.ledger import DAY_MS, plan_windows
from ..models import RealtimePage, decode_page, format_ms
from .base import ReadProgress, last_event_ms, server_side_query

if TYPE_CHECKING:
    from ..config import Config
    from ..net.http import HttpClient

REALTIME_SPAN_MS = 14 * DAY_MS
# Hand anything this close to the 14-day edge to the async query too: the realtime requests
# happen later than the split is computed, and the server's clock may run ahead of ours.
FALLBACK_MARGIN_MS = 3_600_000


def _realtime(body: bytes) -> RealtimePage:
    page = decode_page(body, RealtimePage)
    if page.pageCount is None and page.total is None:
        raise msgspec.ValidationError("the realtime answer has neither pageCount nor total")
    return page


class RealtimeQuery:
    """Reads windows inside the last 14 days, through the realtime query."""

    def __init__(self, cfg: Config, client: HttpClient) -> None:
        self.client = client
        self.base = cfg.api_base
        self.page_size = cfg.poll.page_size
        self.max_window_ms = min(int(cfg.poll.max_window * 1000), REALTIME_SPAN_MS - FALLBACK_MARGIN_MS)
        self.service_name, self.filters = server_side_query(cfg.filters)

    def _query(self, start_ms: int, end_ms: int, number: int, size: int) -> RealtimePage:
        body: dict[str, Any] = {
            "interval": f"{format_ms(start_ms)}/{format_ms(end_ms)}",
            "sort": [{"name": "Timestamp", "sortOrder": "ascending"}],
            "pageNumber": number,
            "pageSize": size,
        }
        if self.service_name:
            body["serviceName"] = self.service_name
        if self.filters:
            body["filters"] = self.filters
        page: RealtimePage = self.client.request(
            "POST", f"{self.base}/api/v2/audits/query/realtime", params={"expand": "user"}, json=body,
            decode=_realtime, what="realtime audit query",
        )
        return page

    def oldest_ms(self) -> int:
        """The oldest start a realtime query may use now (14 days, less the safety margin)."""
        return int(self.client.server_now() * 1000) - REALTIME_SPAN_MS + FALLBACK_MARGIN_MS

    def pages(self, start_ms: int, end_ms: int, progress: ReadProgress) -> Iterator[list[msgspec.Raw]]:
        for w_start, w_end in plan_windows(start_ms, end_ms, self.max_window_ms):
            yield from self._window(w_start, w_end, progress)

    def _window(self, start_ms: int, end_ms: int, progress: ReadProgress) -> Iterator[list[msgspec.Raw]]:
        anchor, number = start_ms, 1
        while True:
            page = self._query(anchor, end_ms, number, self.page_size)
            assert isinstance(page.entities, list)
            if page.entities:
                yield page.entities
            if self._is_last(page, number):
                return
            last = last_event_ms(page.entities, anchor)
            if progress.ordered and last > anchor:
                # Re-anchor: events that arrived since the last request can only shift pages of the
                # old query, not of one that starts where we stand. Repeats at the anchor are
                # dropped by the pipeline's id ledger. Only a time-ordered answer allows it.
                anchor, number = last, 1
            else:
                # The whole page shares the anchor's timestamp (a bulk operation), or the server
                # does not keep the order: page on within this query.
                number += 1

    def _is_last(self, page: RealtimePage, number: int) -> bool:
        if not page.entities:
            return True
        if page.pageCount is not None:
            return number >= page.pageCount
        # No count: a short page is the last one (the server may cap pageSize below ours).
        return len(page.entities) < (page.pageSize or self.page_size)

    def probe(self) -> int:
        now_ms = int(self.client.server_now() * 1000)
        entities = self._query(now_ms - 3_600_000, now_ms, 1, 1).entities
        return len(entities) if isinstance(entities, list) else 0

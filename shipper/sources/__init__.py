"""Sources: one module per API contract, all yielding pages of raw events in ascending time.

Adding a source is one module plus one line in SOURCES.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import msgspec

if TYPE_CHECKING:
    from ..config import Config
    from ..http import HttpClient

SOURCES = {
    "audits-query": "shipper.sources.audits_query:AuditsQuerySource",
    "audits-realtime": "shipper.sources.audits_realtime:AuditsRealtimeSource",
    "events-cursor": "shipper.sources.events_cursor:EventsCursorSource",
}


class Source(Protocol):
    """What the engine drives. `pages` yields lists of raw events sorted by time, oldest first."""

    name: str
    ordered: bool  # pages come oldest first, so positions may move after every page

    def pages(self, start_ms: int, end_ms: int) -> Iterator[list[msgspec.Raw]]: ...

    def probe(self) -> int:
        """Fetch at most one recent event; return how many came back. Raises on failure."""
        ...


def build_source(cfg: Config, client: HttpClient) -> Source:
    module, _, cls = SOURCES[cfg.genesys.api].partition(":")
    factory = getattr(importlib.import_module(module), cls)
    return factory(cfg, client)


class _EventDate(msgspec.Struct):
    eventDate: str = ""  # noqa: N815


_date_decoder = msgspec.json.Decoder(_EventDate)


def last_event_ms(raws: list[msgspec.Raw], default: int) -> int:
    """The eventDate of the last decodable event of a page (where a resubmit resumes)."""
    from ..models import parse_event_time_ms

    for raw in reversed(raws):
        try:
            return parse_event_time_ms(_date_decoder.decode(raw).eventDate)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            continue
    return default

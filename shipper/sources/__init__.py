"""Sources: one module per API contract. SOURCES is the only list of their names: config
validation, `--help` and the wiring all read it. Adding a source is one module plus one entry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .audits_query import AuditsQuerySource
from .audits_realtime import AuditsRealtimeSource
from .base import Source
from .events_cursor import EventsCursorSource

if TYPE_CHECKING:
    from ..config import Config
    from ..net.http import HttpClient

SOURCES: dict[str, type[Source]] = {
    cls.name: cls for cls in (AuditsQuerySource, AuditsRealtimeSource, EventsCursorSource)
}


def build_source(cfg: Config, client: HttpClient) -> Source:
    return SOURCES[cfg.genesys.api](cfg, client)


__all__ = ["SOURCES", "Source", "build_source"]

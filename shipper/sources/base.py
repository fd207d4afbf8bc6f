"""What every source shares: the Source protocol, pushdown of filters, and the watermark that tells
a page that moved forward from a page that only repeated what was already read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar, Protocol

import msgspec

from ..filters import RULE_FIELDS, FiltersConfig, is_exact
from ..models import parse_event_time_ms

if TYPE_CHECKING:
    from ..config import Config
    from ..net.http import HttpClient

# Rule fields the audit query API can filter on (AuditQueryFilter.property).
QUERY_FILTERS = {"entity_type": "EntityType", "action": "Action", "user_id": "UserId"}


class Source(Protocol):
    """What the engine drives. `pages` yields lists of raw events, oldest first when `ordered`."""

    name: ClassVar[str]
    ordered: ClassVar[bool]  # pages come oldest first, so positions may move after every page
    service_mapping_path: ClassVar[str]  # for the `services` verb, under /api/v2/

    def __init__(self, cfg: Config, client: HttpClient) -> None: ...

    def pages(self, start_ms: int, end_ms: int) -> Iterator[list[msgspec.Raw]]: ...

    def probe(self) -> int:
        """Fetch at most one recent event; return how many came back. Raises on failure."""
        ...


def server_side_query(cfg: FiltersConfig) -> tuple[str | None, list[dict[str, str]]]:
    """What the audit query APIs can filter for us: one include rule with exact values pushes down
    as `serviceName` plus filters; globs and several rules stay client-side."""
    if len(cfg.include) != 1:
        return None, []
    rule = cfg.include[0]
    service: str | None = None
    filters: list[dict[str, str]] = []
    for name in RULE_FIELDS:
        value = getattr(rule, name)
        if not is_exact(value):
            continue
        if name == "service":
            service = value
        elif name in QUERY_FILTERS:
            filters.append({"property": QUERY_FILTERS[name], "value": value})
    return service, filters


class _IdDate(msgspec.Struct):
    id: str = ""
    eventDate: str = ""  # noqa: N815


_id_date = msgspec.json.Decoder(_IdDate)


def _id_and_ms(raw: msgspec.Raw) -> tuple[str, int] | None:
    try:
        ev = _id_date.decode(raw)
        return ev.id, parse_event_time_ms(ev.eventDate)
    except (msgspec.DecodeError, ValueError, RecursionError):
        return None


class Watermark:
    """How far a time-ordered read has got: the newest event time and the ids read at it. Only
    the trailing events of a page that share its last time are decoded."""

    def __init__(self, start_ms: int) -> None:
        self.ms = start_ms
        self.ids: set[str] = set()

    def advance(self, raws: list[msgspec.Raw]) -> bool:
        """Take in a page; True when it brought an event beyond what was read so far."""
        moved = False
        last: int | None = None
        for raw in reversed(raws):
            got = _id_and_ms(raw)
            if got is None:
                continue
            eid, ms = got
            if last is None:
                last = ms
            elif ms != last:
                break
            if ms > self.ms:
                self.ms, self.ids, moved = ms, {eid}, True
            elif ms == self.ms and eid not in self.ids:
                self.ids.add(eid)
                moved = True
        return moved

    def stall_limit(self, page_size: int) -> int:
        """Pages in a row that may bring nothing new: a restart inside a bulk operation re-reads
        every id at the mark's millisecond before reaching new ones."""
        return len(self.ids) // max(1, page_size) + 3

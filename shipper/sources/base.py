"""What every source shares: the Source protocol, pushdown of filters, and what the engine tells a
source about its progress through a chunk."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar, Protocol

import msgspec

from ..errors import ApiError
from ..filters import RULE_FIELDS, FiltersConfig, is_exact
from ..models import parse_event_time_ms

if TYPE_CHECKING:
    from ..config import Config
    from ..net.http import HttpClient

# Rule fields the audit query APIs can filter on (AuditQueryFilter.property, per Genesys's SDK).
# TrusteeOrganizationId is not used: it selects audits of a trusted partner org, not a filter on ours.
QUERY_FILTERS = {"entity_type": "EntityType", "action": "Action", "user_id": "UserId", "client_id": "ClientId",
                 "entity_id": "EntityId"}


class Source(Protocol):
    """What the engine drives. `pages` yields lists of raw events, oldest first when `ordered`."""

    name: ClassVar[str]
    ordered: ClassVar[bool]  # pages come oldest first, so positions may move after every page
    service_mapping_path: ClassVar[str]  # for the `services` verb, under /api/v2/

    def __init__(self, cfg: Config, client: HttpClient) -> None: ...

    def pages(self, start_ms: int, end_ms: int, progress: ReadProgress) -> Iterator[list[msgspec.Raw]]: ...

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


class ReadProgress:
    """What the engine tells a source while it reads one chunk: how many events it has met for
    the first time in the chunk, whether the pages kept their time order, and the newest event
    time met. A source restarts a lost query where `resume_ms` says and gives up when restarts
    bring nothing new; it trusts the order of events only while the engine does."""

    def __init__(self) -> None:
        self.fresh = 0
        self.ordered = True
        self.newest: int | None = None  # the newest event time met in the chunk
        self.restarts = 0  # the source read (part of) the chunk again this many times

    def resume_ms(self, start_ms: int, end_ms: int) -> int:
        """Where a lost query of [start_ms, end_ms) restarts: at the newest event met (inclusive:
        the pipeline drops the repeats at that instant) while every page kept time order, else at
        the start, since then nothing says the events before the newest were all read."""
        if self.ordered and self.newest is not None and start_ms < self.newest < end_ms:
            return self.newest
        return start_ms


class Restarts:
    """Counts restarts of a query (an expired transaction, a rejected cursor) that brought no
    event the chunk had not met before; past `limit`, the source must give up, not loop."""

    def __init__(self, progress: ReadProgress, limit: int) -> None:
        self.progress = progress
        self.limit = limit
        self.count = 0
        self._fresh = progress.fresh

    def another(self) -> bool:
        """Note a restart; False once `limit` restarts in a row brought nothing new."""
        if self.progress.fresh > self._fresh:
            self.count, self._fresh = 0, self.progress.fresh
        self.count += 1
        self.progress.restarts += 1
        return self.count <= self.limit


class CursorTrail:
    """The cursors one query handed out: one handed out twice is an error, not a loop."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.seen: set[str] = set()

    def follow(self, cursor: str) -> str:
        if cursor in self.seen:
            raise ApiError(f"{self.what}: the API handed out the same cursor twice; giving up on this pass "
                           "rather than loop")
        self.seen.add(cursor)
        return cursor


class _EventDate(msgspec.Struct):
    eventDate: str = ""  # noqa: N815


_event_date = msgspec.json.Decoder(_EventDate)


def last_event_ms(raws: list[msgspec.Raw], default: int) -> int:
    """The eventDate of the last decodable event of a page."""
    for raw in reversed(raws):
        try:
            return parse_event_time_ms(_event_date.decode(raw).eventDate)
        except (msgspec.DecodeError, ValueError, RecursionError):
            continue
    return default

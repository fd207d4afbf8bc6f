"""The guide's cursor contract, `GET /api/v2/auditlogs/events`, for gateways that expose it.

Events come in the guide's shape `{id, date, actorId, actorName, eventType, entityId, entityType,
data}` and leave as AuditEvent-shaped JSON, so filters, tiers and every schema work unchanged.
A rejected cursor (400, the guide's Edge Case 1) is reset and the query restarts at the window's
start (the contract promises no order, so no later point is safe); the pipeline drops the ids it
already wrote, and restarts that bring nothing new are bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from .. import logs
from ..core.ledger import plan_windows
from ..errors import ApiError
from ..filters import FiltersConfig, Rule, is_exact
from ..models import CursorPage, decode_page, format_ms
from .base import CursorTrail, ReadProgress, Restarts

if TYPE_CHECKING:
    from ..config import Config
    from ..net.http import HttpClient

# Resets in a row without reaching a new event: past this, the gateway is broken, not busy.
MAX_RESETS = 5
# Empty pages in a row that still carry a cursor: past this, the cursor never ends.
MAX_EMPTY_PAGES = 5


class GuideEvent(msgspec.Struct):
    """An event as the guide describes it; everything optional so a bad one can be quarantined."""

    id: str | None = None
    date: str | None = None
    actorId: str | None = None  # noqa: N815
    actorName: str | None = None  # noqa: N815
    eventType: str | None = None  # noqa: N815
    entityId: str | None = None  # noqa: N815
    entityType: str | None = None  # noqa: N815
    data: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class _RefOut(msgspec.Struct, omit_defaults=True):
    id: str | None = None
    name: str | None = None


class _EventOut(msgspec.Struct, omit_defaults=True):
    """The AuditEvent shape of a guide event (models.AuditEvent reads it)."""

    id: str
    eventDate: str  # noqa: N815
    user: _RefOut | None = None
    entity: _RefOut | None = None
    serviceName: str | None = None  # noqa: N815
    action: str | None = None
    entityType: str | None = None  # noqa: N815
    eventType: str | None = None  # noqa: N815
    data: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_guide_decoder = msgspec.json.Decoder(GuideEvent)
_encoder = msgspec.json.Encoder()


def _cursor_page(body: bytes) -> CursorPage:
    return decode_page(body, CursorPage)


def event_types(filters: FiltersConfig) -> list[str]:
    """The guide's `eventType` values for the include rules, or [] when one is not exact.

    Only a rule naming service, entity type and action exactly says which event types it wants;
    any other rule could match every type, so then nothing is pushed down.
    """
    types: set[str] = set()
    for rule in filters.include:
        if not (is_exact(rule.service) and is_exact(rule.entity_type) and is_exact(rule.action)):
            return []
        types.add(f"{rule.service}.{rule.entity_type}.{rule.action}".lower())
    return sorted(types)


def _config_spellings(cfg: Config) -> dict[str, str]:
    """Lower-case service and action names to the spelling the config's rules use.

    The guide's eventType is lower case while rules are written as `services` prints the names
    (`Directory`, `Update`); rules match exactly, so without this an include rule pushed down as
    an eventType would then filter out every event it fetched.
    """
    rules: list[Rule] = [*cfg.filters.include, *cfg.filters.exclude]
    rules += [r for t in cfg.routing.tiers for r in t.rules]
    rules += [r.match for r in cfg.output.reduce]
    out: dict[str, str] = {}
    for rule in rules:
        for value in (rule.service, rule.action):
            if value is not None and is_exact(value):
                out.setdefault(value.lower(), value)
    return out


def convert(raw: msgspec.Raw, spellings: dict[str, str] | None = None) -> tuple[msgspec.Raw, GuideEvent | None]:
    """A guide event as AuditEvent JSON, and the decoded guide event. Undecodable events pass
    through unchanged (with None) so the engine quarantines them with the reason."""
    try:
        ev = _guide_decoder.decode(raw)
    except msgspec.DecodeError:
        return raw, None
    if not ev.id or ev.date is None:
        return raw, None
    service = action = None
    if ev.eventType:
        parts = ev.eventType.split(".")
        if len(parts) == 3:
            service, action = parts[0], parts[2]
            if spellings:
                service = spellings.get(service.lower(), service)
                action = spellings.get(action.lower(), action)
    user = _RefOut(ev.actorId, ev.actorName) if ev.actorId is not None or ev.actorName is not None else None
    out = _EventOut(
        ev.id, ev.date, user, _RefOut(ev.entityId) if ev.entityId is not None else None,
        service, action, ev.entityType, ev.eventType, ev.data,
    )
    return msgspec.Raw(_encoder.encode(out)), ev


def _is_cursor_rejection(exc: ApiError) -> bool:
    text = f"{exc.code or ''} {exc}".lower()
    return exc.status == 400 and ("cursor" in text or "invalid state" in text)


class EventsCursorSource:
    name = "events-cursor"
    ordered = False  # the guide's contract promises no order inside a window
    # The guide's contract defines no mapping: the query API's names are the same services.
    service_mapping_path = "audits/query/servicemapping"

    def __init__(self, cfg: Config, client: HttpClient) -> None:
        self.client = client
        self.url = f"{cfg.api_base}/api/v2/auditlogs/events"
        self.size = cfg.poll.cursor_page_size
        self.max_window_ms = int(cfg.poll.max_window * 1000)
        self.event_types = event_types(cfg.filters)
        self.spellings = _config_spellings(cfg)

    def _get(self, start_ms: int, end_ms: int, size: int, cursor: str | None) -> CursorPage:
        # Never `page`: the guide's endpoint answers 400 to page-based navigation.
        params: dict[str, Any] = {"dateFrom": format_ms(start_ms), "dateTo": format_ms(end_ms), "size": size}
        if cursor:
            params["cursor"] = cursor
        if self.event_types:
            params["eventType"] = self.event_types
        page: CursorPage = self.client.request(
            "GET", self.url, params=params, decode=_cursor_page, what="audit events page",
        )
        return page

    def pages(self, start_ms: int, end_ms: int, progress: ReadProgress) -> Iterator[list[msgspec.Raw]]:
        for w_start, w_end in plan_windows(start_ms, end_ms, self.max_window_ms):
            yield from self._window(w_start, w_end, progress)

    def _window(self, start_ms: int, end_ms: int, progress: ReadProgress) -> Iterator[list[msgspec.Raw]]:
        cursor: str | None = None
        cursors = CursorTrail("audit events")
        restarts = Restarts(progress, MAX_RESETS)
        empty = 0
        while True:
            try:
                page = self._get(start_ms, end_ms, self.size, cursor)
            except ApiError as exc:
                if cursor is None or not _is_cursor_rejection(exc):
                    raise
                if not restarts.another():
                    raise ApiError(f"audit events cursor rejected {restarts.count} times in a row without progress; "
                                   f"last: {exc}", exc.status, exc.code) from None
                logs.warning("cursor rejected; resetting it and reading the window again",
                             reason=str(exc), start=format_ms(start_ms), resets=restarts.count)
                cursor, cursors = None, CursorTrail(cursors.what)
                continue
            assert isinstance(page.entities, list)
            if page.entities:
                empty = 0
                yield [convert(raw, self.spellings)[0] for raw in page.entities]
            elif page.nextPageCursor:
                empty += 1
                if empty >= MAX_EMPTY_PAGES:
                    raise ApiError(f"audit events: {empty} empty pages in a row that still carry a cursor; "
                                   "the cursor never ends")
            if not page.nextPageCursor:
                return
            cursor = cursors.follow(page.nextPageCursor)

    def probe(self) -> int:
        """The guide's cursor health check: a size=1 query over the last hour."""
        now_ms = int(self.client.server_now() * 1000)
        entities = self._get(now_ms - 3_600_000, now_ms, 1, None).entities
        return len(entities) if isinstance(entities, list) else 0

"""Typed API payloads, decoded straight from response bytes."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import msgspec

from . import logs
from .proof.canonical import canonical_number


# gc=False: decoded events never form reference cycles, so the collector need not track them.
class Ref(msgspec.Struct, gc=False):
    id: str | None = None
    name: str | None = None
    selfUri: str | None = None  # noqa: N815


class PropertyChange(msgspec.Struct, gc=False):
    property: str | None = None
    oldValues: list[Any] = []  # noqa: N815
    newValues: list[Any] = []  # noqa: N815


class Message(msgspec.Struct, gc=False):
    localizableMessageCode: str | None = None  # noqa: N815
    message: str | None = None
    messageWithParams: str | None = None  # noqa: N815
    messageParams: dict[str, Any] | None = None  # noqa: N815


class InitiatingAction(msgspec.Struct, omit_defaults=True, gc=False):
    transactionId: str | None = None  # noqa: N815
    actionContext: str | None = None  # noqa: N815


class AuditEvent(msgspec.Struct, gc=False):
    """An AuditLogMessage. Only `id` and `eventDate` are required; the rest are open strings."""

    id: str
    eventDate: str  # noqa: N815
    userHomeOrgId: str | None = None  # noqa: N815
    user: Ref | None = None
    client: Ref | None = None
    remoteIp: list[str] = []  # noqa: N815
    serviceName: str | None = None  # noqa: N815
    level: str | None = None
    message: Message | None = None
    action: str | None = None
    entity: Ref | None = None
    entityType: str | None = None  # noqa: N815
    status: str | None = None
    application: str | None = None
    transactionInitiator: bool | None = None  # noqa: N815
    initiatingAction: InitiatingAction | None = None  # noqa: N815
    entityChanges: list[Any] = []  # noqa: N815
    propertyChanges: list[PropertyChange] = []  # noqa: N815
    context: dict[str, Any] | None = None
    # The guide's events-cursor shape (see sources/events_cursor.py); the real API has neither.
    eventType: str | None = None  # noqa: N815
    # Raw | None cannot decode an object in msgspec, so absence is UNSET rather than None.
    data: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class SlimEvent(msgspec.Struct, gc=False):
    """What `siem`, `raw`, filters and tiers read; schemas that embed the original event as it is
    decode only this (and validate only what they use), which halves the decode cost."""

    id: str
    eventDate: str  # noqa: N815
    user: Ref | None = None
    client: Ref | None = None
    serviceName: str | None = None  # noqa: N815
    level: str | None = None
    action: str | None = None
    entity: Ref | None = None
    entityType: str | None = None  # noqa: N815
    status: str | None = None
    eventType: str | None = None  # noqa: N815
    data: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


QUERY_STATES = ("Queued", "Running", "Succeeded", "Failed", "Cancelled")


class QueryStatus(msgspec.Struct):
    """The answer to a query submit and to a status poll."""

    id: str
    state: str
    interval: str | None = None
    errorMessage: str | None = None  # noqa: N815

    def __post_init__(self) -> None:
        if not self.id or self.state not in QUERY_STATES:
            raise ValueError(f"query status needs an id and a state in {QUERY_STATES}, got {self.state!r}")


class ResultsPage(msgspec.Struct):
    """One page of async query results. `entities` stays raw bytes so the output can embed the
    events unchanged; a 302 answer carries `downloadUrl` instead (see decode_page)."""

    entities: list[msgspec.Raw] | msgspec.UnsetType = msgspec.UNSET
    cursor: str | None = None
    pageSize: int | None = None  # noqa: N815
    downloadUrl: str | None = None  # noqa: N815
    id: str | None = None


class RealtimePage(msgspec.Struct):
    """One realtime answer; entities stay raw bytes so the output can embed them unchanged."""

    entities: list[msgspec.Raw] | msgspec.UnsetType = msgspec.UNSET
    pageSize: int | None = None  # noqa: N815
    pageNumber: int | None = None  # noqa: N815
    total: int | None = None
    pageCount: int | None = None  # noqa: N815


class CursorPage(msgspec.Struct):
    """One page of the guide's events-cursor contract."""

    entities: list[msgspec.Raw] | msgspec.UnsetType = msgspec.UNSET
    nextPageCursor: str | None = None  # noqa: N815


class TokenResponse(msgspec.Struct):
    access_token: str
    expires_in: float = 86400  # Genesys's default lifetime; a 401 refreshes early anyway
    token_type: str = "bearer"


class ErrorBody(msgspec.Struct):
    message: str | None = None
    code: str | None = None
    status: int | None = None
    contextId: str | None = None  # noqa: N815 - the API's spelling


class ServiceEntity(msgspec.Struct):
    name: str
    actions: list[str] = []


class ServiceInfo(msgspec.Struct):
    name: str
    entities: list[ServiceEntity] = []


class ServiceMapping(msgspec.Struct):
    services: list[ServiceInfo]


class InvalidEvent(ValueError):
    """An event that cannot be decoded or has a bad date: it goes to quarantine."""


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def parse_event_time_ms(text: str) -> int:
    """eventDate (ISO-8601, UTC) to epoch milliseconds."""
    try:
        dt = datetime.fromisoformat(text)  # takes a trailing Z since Python 3.11
    except ValueError:
        if not text.endswith("Z"):
            raise
        dt = datetime.fromisoformat(text[:-1] + "+00:00")
    if dt.tzinfo is None:
        raise ValueError("eventDate has no time zone")
    # Floor, never round up: resuming at a later millisecond would skip events.
    return (dt - _EPOCH) // _MS


def event_time_ms(date: str) -> int:
    """eventDate to epoch ms, or InvalidEvent naming the bad value."""
    try:
        return parse_event_time_ms(date)
    except ValueError:
        raise InvalidEvent(f"bad eventDate {date[:40]!r}") from None


# Numbers with a fraction are kept in RFC 8785's form, so a record embedding them is canonical.
_DECODERS = {False: msgspec.json.Decoder(AuditEvent, float_hook=canonical_number),
             True: msgspec.json.Decoder(SlimEvent)}


Decoded = tuple[AuditEvent, int]  # the event (a SlimEvent when slim) and its time in epoch ms


def event_decoder(slim: bool = False) -> Callable[[bytes | msgspec.Raw], Decoded]:
    """The one event decoder, for the pipeline and the tests alike: decode, then check the id,
    then the date; InvalidEvent with the reason when an event is malformed. Bulk operations stamp
    hundreds of events with one millisecond, so the last date parsed is remembered (make one
    decoder per page)."""
    decode = _DECODERS[slim].decode
    last_date, last_ms = "", 0

    def decode_one(raw: bytes | msgspec.Raw) -> Decoded:
        nonlocal last_date, last_ms
        try:
            event = decode(raw)
        except msgspec.DecodeError as exc:  # ValidationError included
            raise InvalidEvent(str(exc)) from None
        except RecursionError:
            raise InvalidEvent("nested too deeply to decode") from None
        if not event.id:
            raise InvalidEvent("empty id")
        date = event.eventDate
        if date != last_date:
            last_ms = event_time_ms(date)
            last_date = date
        return event, last_ms

    return decode_one


def decode_event(raw: bytes | msgspec.Raw, slim: bool = False) -> Decoded:
    """Decode one raw event (see event_decoder)."""
    return event_decoder(slim)(raw)


def format_ms(ms: int) -> str:
    """Epoch ms to the API's interval format, e.g. 2026-01-15T00:00:00.000Z."""
    secs, rem = divmod(ms, 1000)
    try:
        return datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{rem:03d}Z"
    except (OverflowError, OSError, ValueError):
        return f"{ms}ms"  # out of datetime's range: bad input must not crash a log line


# -- result pages ---------------------------------------------------------------------------------
Page = TypeVar("Page", ResultsPage, RealtimePage, CursorPage)
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]')


def decode_page(body: bytes, page_type: type[Page]) -> Page:
    """The one decoder of result pages. A page without `entities` is a ValidationError, never an
    empty page; an event nested too deeply to decode stays in the page (it is quarantined later)
    instead of failing the page; invalid UTF-8 inside an event is replaced with U+FFFD."""
    try:
        page = msgspec.json.decode(body, type=page_type)
    except RecursionError:
        page = _decode_deep(body, page_type)
    if page.entities is msgspec.UNSET:
        if not getattr(page, "downloadUrl", None):
            raise msgspec.ValidationError(f"the answer has no `entities` list ({page_type.__name__})")
        page.entities = []
    if not body.isascii():
        page.entities = _repair_utf8(page.entities)
    return page


def _decode_deep(body: bytes, page_type: type[Page]) -> Page:
    found = split_array_member(body, b'"entities"')
    if found is None:
        raise msgspec.DecodeError("the answer is nested too deeply to decode")
    items, start, end = found
    page = msgspec.json.decode(body[:start] + b"[]" + body[end:], type=page_type)
    page.entities = [msgspec.Raw(_compact(item)) for item in items]
    return page


def _compact(item: bytes) -> bytes:
    if b"\n" in item or b"\r" in item:
        try:
            return msgspec.json.format(item, indent=-1)
        except (msgspec.DecodeError, RecursionError):
            return item.replace(b"\r", b" ").replace(b"\n", b" ")  # whitespace only: still the same JSON
    return item


def split_array_member(body: bytes, key: bytes) -> tuple[list[bytes], int, int] | None:
    """The elements of the array under `key` in the top-level object, as bytes, with the array's
    span, found by a scan that needs no recursion. None when there is no such array."""
    depth, armed, start, item_start = 0, False, -1, 0
    items: list[bytes] = []
    for m in _TOKEN.finditer(body):
        tok = m.group()
        if start < 0:
            if tok[:1] == b'"':
                armed = depth == 1 and tok == key
            elif tok == b"[" and armed and depth == 1:
                start, item_start, depth = m.start(), m.end(), 2
            elif tok in (b"[", b"{"):
                depth, armed = depth + 1, False
            elif tok in (b"]", b"}"):
                depth, armed = depth - 1, False
            continue
        if tok in (b"[", b"{"):
            depth += 1
        elif tok in (b"]", b"}"):
            depth -= 1
            if depth == 1:
                if last := body[item_start:m.start()].strip():
                    items.append(last)
                return items, start, m.end()
        elif tok == b"," and depth == 2:
            items.append(body[item_start:m.start()].strip())
            item_start = m.end()
    return None


def _repair_utf8(entities: list[msgspec.Raw]) -> list[msgspec.Raw]:
    out = entities
    bad = 0
    for i, raw in enumerate(entities):
        try:
            str(raw, "utf-8")  # validates without copying the bytes
        except UnicodeDecodeError:
            if out is entities:
                out = list(entities)
            out[i] = msgspec.Raw(bytes(raw).decode("utf-8", "replace").encode("utf-8"))
            bad += 1
    if bad:
        logs.warning("events with invalid UTF-8: the bad bytes were replaced with U+FFFD", events=bad)
    return out

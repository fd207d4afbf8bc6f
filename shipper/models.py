"""Typed API payloads, decoded straight from response bytes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec


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
    entityChanges: list[msgspec.Raw] = []  # noqa: N815 - can be large: kept raw
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
    serviceName: str | None = None  # noqa: N815
    level: str | None = None
    action: str | None = None
    entity: Ref | None = None
    entityType: str | None = None  # noqa: N815
    status: str | None = None
    eventType: str | None = None  # noqa: N815
    data: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class QueryStatus(msgspec.Struct):
    id: str
    state: str
    interval: str | None = None
    errorMessage: str | None = None  # noqa: N815


class ResultsPage(msgspec.Struct):
    """One page of results: entities stay raw bytes so the output can embed them unchanged."""

    entities: list[msgspec.Raw] = []
    cursor: str | None = None
    pageSize: int | None = None  # noqa: N815
    downloadUrl: str | None = None  # noqa: N815


class RealtimePage(msgspec.Struct):
    """One realtime answer; entities stay raw bytes so the output can embed them unchanged."""

    entities: list[msgspec.Raw] = []
    pageSize: int | None = None  # noqa: N815
    pageNumber: int | None = None  # noqa: N815
    total: int | None = None
    pageCount: int | None = None  # noqa: N815


class TokenResponse(msgspec.Struct):
    access_token: str
    expires_in: float = 86400
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
    services: list[ServiceInfo] = []


class InvalidEvent(ValueError):
    """An event that cannot be decoded or has a bad date: it goes to quarantine."""


_event_decoder = msgspec.json.Decoder(AuditEvent)
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


_slim_decoder = msgspec.json.Decoder(SlimEvent)


def event_decoder(slim: bool) -> msgspec.json.Decoder:
    """The decoder for whole events, or for the SlimEvent subset."""
    return _slim_decoder if slim else _event_decoder


def decode_event(raw: bytes | msgspec.Raw, slim: bool = False) -> tuple[AuditEvent, int]:  # SlimEvent if slim
    """Decode one raw event; raise InvalidEvent with the reason when it is malformed."""
    try:
        event = event_decoder(slim).decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidEvent(str(exc)) from None
    if not event.id:
        raise InvalidEvent("empty id")
    return event, event_time_ms(event.eventDate)


def event_time_ms(date: str) -> int:
    """eventDate to epoch ms, or InvalidEvent naming the bad value."""
    try:
        return parse_event_time_ms(date)
    except ValueError:
        raise InvalidEvent(f"bad eventDate {date[:40]!r}") from None


def format_ms(ms: int) -> str:
    """Epoch ms to the API's interval format, e.g. 2026-01-15T00:00:00.000Z."""
    secs, rem = divmod(ms, 1000)
    try:
        return datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{rem:03d}Z"
    except (OverflowError, OSError, ValueError):
        return f"{ms}ms"  # out of datetime's range: bad input must not crash a log line

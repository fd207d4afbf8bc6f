"""The guide's SIEM mapping, taken from the real audit event.

Events from the guide's events-cursor contract carry its own `eventType` and `data`: those fill
`siem_event_type` and `siem_raw_payload` exactly as the guide's template says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from .common import UNSET, Mapper, SchemaSpec, Unset, event_type

if TYPE_CHECKING:
    from ..config import Config
    from ..models import AuditEvent


class SiemRecord(msgspec.Struct, gc=False):
    siem_timestamp: str
    siem_event_id: str
    siem_actor_id: str | None
    siem_actor_name: str | None
    siem_event_type: str
    siem_entity_id: str | None
    siem_entity_type: str | None
    siem_raw_payload: Any  # the original event: its bytes, or decoded for the chain's canonical form
    audit_tier: str
    audit_seq: int | Unset = UNSET
    audit_stream: str | Unset = UNSET
    audit_key_id: str | Unset = UNSET
    genesys_org: str | Unset = UNSET


_Raw = msgspec.Raw


def to_siem(event: AuditEvent, raw: Any, tier: str) -> SiemRecord:
    user, entity, data, guide_type = event.user, event.entity, event.data, event.eventType
    return SiemRecord(
        event.eventDate,
        event.id,
        user.id if user else None,
        user.name if user else None,
        guide_type if guide_type is not None else event_type(event),
        entity.id if entity else None,
        event.entityType,
        data if data.__class__ is _Raw else raw,  # the guide's events-cursor: `data` is the payload
        tier,
    )


def build(cfg: Config) -> Mapper:
    return to_siem


SCHEMA = SchemaSpec(
    name="siem",
    build=build,
    summary="the guide's SIEM mapping",
    slim=True,
    embeds_event=True,
    protected=frozenset({"siem_event_id", "siem_timestamp", "siem_event_type", "audit_tier"}),
    id_field="siem_event_id",
)

"""Microsoft Sentinel ASIM AuditEvent 0.1.

`ObjectType` uses the schema's closed list: `Policy Rule` for roles and grants (they define
permissions), `Other` for accounts, groups, OAuth clients and credentials (ASIM has no user
value), `Configuration Atom` for every other configuration object. `OldValue`/`NewValue` come
from the first property change (one value as is, several as a JSON array); all changes stay in
`AdditionalFields`, which holds the original event unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from .common import (
    ADD,
    CLEAR,
    CREATE,
    DELETE,
    DISABLE,
    ENABLE,
    EXECUTE,
    GRANT,
    PASSWORD,
    READ,
    REMOVE,
    ROLE,
    UNSET,
    UPDATE,
    Mapper,
    SchemaSpec,
    Unset,
    action_verb,
    dvc_name,
    event_type,
    identity_kind,
)

if TYPE_CHECKING:
    from ..config import Config
    from ..models import AuditEvent

_EVENT_TYPES = {
    CREATE: "Create", READ: "Read", DELETE: "Delete", ENABLE: "Enable", DISABLE: "Disable",
    EXECUTE: "Execute", CLEAR: "Clear",
    # Adding or removing a member, share or grant changes the parent object's settings.
    UPDATE: "Set", ADD: "Set", REMOVE: "Set", PASSWORD: "Set",
}
_RESULTS = {"SUCCESS": "Success", "FAILURE": "Failure", "WARNING": "Partial"}
_SEVERITIES = {"FAILURE": "Low"}
_encode = msgspec.json.encode


class AsimRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    TimeGenerated: str
    EventCount: int
    EventStartTime: str
    EventEndTime: str
    EventType: str
    EventResult: str
    EventSeverity: str
    EventProduct: str
    EventVendor: str
    EventSchema: str
    EventSchemaVersion: str
    EventOriginalUid: str
    EventOriginalType: str
    EventOriginalResultDetails: str | None = None
    EventMessage: str | None = None
    Dvc: str
    Operation: str
    Object: str
    ObjectType: str
    OldValue: str | None = None
    NewValue: str | None = None
    ValueType: str | None = None
    ActorUserId: str | None = None
    ActorUsername: str | None = None
    ActorUsernameType: str | None = None
    ActorScopeId: str | None = None
    ActingAppId: str | None = None
    SrcIpAddr: str | None = None
    TargetAppName: str | None = None
    TargetAppType: str | None = None
    AdditionalFields: Any  # the original event
    audit_tier: str
    audit_seq: int | Unset = UNSET
    audit_stream: str | Unset = UNSET
    audit_key_id: str | Unset = UNSET
    genesys_org: str | Unset = UNSET


def object_type(entity_type: str | None) -> str:
    """The ASIM ObjectType for a Genesys entityType."""
    kind = identity_kind(entity_type)
    if kind in (ROLE, GRANT):
        return "Policy Rule"
    if kind is not None or not entity_type:
        return "Other"
    return "Configuration Atom"


def as_text(values: list[Any]) -> str | None:
    """One property value list as ASIM's string: a lone string as is, anything else as JSON."""
    if not values:
        return None
    if len(values) == 1 and isinstance(values[0], str):
        return values[0]
    return _encode(values[0] if len(values) == 1 else values).decode()


def build(cfg: Config) -> Mapper:
    dvc = dvc_name(cfg)

    def to_asim(event: AuditEvent, raw: Any, tier: str) -> AsimRecord:
        user, entity, msg = event.user, event.entity, event.message
        status = (event.status or "").upper()
        old = new = None
        if event.propertyChanges:
            first = event.propertyChanges[0]
            old, new = as_text(first.oldValues), as_text(first.newValues)
        name = user.name if user else None
        return AsimRecord(
            # Sentinel tables need TimeGenerated; the audit's own time beats the ingestion time.
            TimeGenerated=event.eventDate,
            EventCount=1,
            EventStartTime=event.eventDate,
            EventEndTime=event.eventDate,
            EventType=_EVENT_TYPES.get(action_verb(event.action), "Other"),
            EventResult=_RESULTS.get(status, "NA"),
            EventSeverity=_SEVERITIES.get(status, "Informational"),
            EventProduct="Genesys Cloud",
            EventVendor="Genesys",
            EventSchema="AuditEvent",
            EventSchemaVersion="0.1",
            EventOriginalUid=event.id,
            EventOriginalType=event_type(event),
            EventOriginalResultDetails=event.status,
            EventMessage=msg.message if msg is not None else None,
            Dvc=dvc,
            Operation=event_type(event),
            # Object is mandatory: without an entity, the entity type is the best name there is.
            Object=(entity.name or entity.id if entity is not None else None) or event.entityType or "",
            ObjectType=object_type(event.entityType),
            OldValue=old,
            NewValue=new,
            ValueType="Other" if old is not None or new is not None else None,
            ActorUserId=user.id if user else None,
            ActorUsername=name,
            ActorUsernameType="Simple" if name else None,
            ActorScopeId=event.userHomeOrgId,
            ActingAppId=event.client.id if event.client else None,
            SrcIpAddr=event.remoteIp[0] if event.remoteIp else None,
            TargetAppName=event.serviceName,
            TargetAppType="SaaS application" if event.serviceName else None,
            AdditionalFields=raw,
            audit_tier=tier,
        )

    return to_asim


SCHEMA = SchemaSpec(
    name="asim",
    build=build,
    summary="Microsoft Sentinel ASIM AuditEvent",
    embeds_event=True,
    protected=frozenset({
        "EventOriginalUid", "TimeGenerated", "EventStartTime", "EventEndTime", "EventType", "EventResult",
        "EventSchema", "EventSchemaVersion", "EventProduct", "EventVendor", "audit_tier",
    }),
    id_field="EventOriginalUid",
)

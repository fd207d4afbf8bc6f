"""OCSF 1.1.0 events, with the `cloud` profile (Genesys Cloud is the provider).

Class rule, first match wins:
1. Reads (View, Read, Export, Download…) and events with no entity: API Activity (6003).
2. Users, roles, grants, OAuth clients, credentials: Account Change (3001); Create, Delete,
   Enable/Activate, Disable/Deactivate and ChangePassword map to their activities, grants and
   roles being added or removed to Attach/Detach Policy, anything else to Other (99).
3. Groups (Group, DirectoryGroup, DynamicGroup): Group Management (3006).
4. Every other entity (queues, flows, trunks, schedules…): Entity Management (3004).
Unmapped actions keep activity_id 99 with the Genesys action as activity_name; fields with no
OCSF home (message details, propertyChanges, context, client…) go under `unmapped`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from ..models import parse_event_time_ms
from .common import (
    ADD,
    CLIENT,
    CREATE,
    CREDENTIAL,
    DELETE,
    DISABLE,
    ENABLE,
    GRANT,
    GROUP,
    PASSWORD,
    READ,
    REMOVE,
    ROLE,
    UNSET,
    UPDATE,
    USER,
    AuditRest,
    Mapper,
    SchemaSpec,
    Stamp,
    Unset,
    action_verb,
    audit_rest,
    identity_kind,
    ref_out,
    set_fields,
    valid_ips,
)

if TYPE_CHECKING:
    from ..config import Config
    from ..models import AuditEvent

OCSF_VERSION = "1.1.0"
ACCOUNT_CHANGE, ENTITY_MANAGEMENT, GROUP_MANAGEMENT, API_ACTIVITY = 3001, 3004, 3006, 6003
_CLASS_NAMES = {
    ACCOUNT_CHANGE: "Account Change", ENTITY_MANAGEMENT: "Entity Management",
    GROUP_MANAGEMENT: "Group Management", API_ACTIVITY: "API Activity",
}
_CATEGORY_NAMES = {3: "Identity & Access Management", 6: "Application Activity"}
_ACCOUNT_KINDS = frozenset({USER, ROLE, GRANT, CLIENT, CREDENTIAL})
_POLICY_KINDS = frozenset({ROLE, GRANT})

# (activity_id, caption) per class and verb; a verb missing here is Other (99).
_ACTIVITIES: dict[int, dict[str, tuple[int, str]]] = {
    ACCOUNT_CHANGE: {
        CREATE: (1, "Create"), ENABLE: (2, "Enable"), PASSWORD: (3, "Password Change"),
        DISABLE: (5, "Disable"), DELETE: (6, "Delete"),
    },
    ENTITY_MANAGEMENT: {CREATE: (1, "Create"), READ: (2, "Read"), UPDATE: (3, "Update"), DELETE: (4, "Delete")},
    GROUP_MANAGEMENT: {ADD: (3, "Add User"), REMOVE: (4, "Remove User"), DELETE: (5, "Delete"), CREATE: (6, "Create")},
    API_ACTIVITY: {CREATE: (1, "Create"), READ: (2, "Read"), UPDATE: (3, "Update"), DELETE: (4, "Delete")},
}
_ATTACH, _DETACH = (7, "Attach Policy"), (8, "Detach Policy")
_STATUS = {"SUCCESS": (1, "Success"), "FAILURE": (2, "Failure")}
_SEVERITY = {"FAILURE": (3, "Medium"), "WARNING": (2, "Low")}
_INFORMATIONAL = (1, "Informational")


class Feature(msgspec.Struct):
    name: str


class Product(msgspec.Struct, omit_defaults=True):
    name: str
    vendor_name: str
    feature: Feature | None = None


class Metadata(msgspec.Struct, kw_only=True, omit_defaults=True):
    version: str
    product: Product
    uid: str
    original_time: str
    profiles: list[str]
    correlation_uid: str | None = None
    sequence: int | Unset = UNSET  # the chain's sequence in this stream
    tenant_uid: str | Unset = UNSET  # the org's name in a deployment of several orgs


class Org(msgspec.Struct):
    uid: str


class User(msgspec.Struct, omit_defaults=True):
    uid: str | None = None
    name: str | None = None
    type: str | None = None
    type_id: int | None = None
    org: Org | None = None


class Actor(msgspec.Struct, omit_defaults=True):
    user: User | None = None


class Endpoint(msgspec.Struct, omit_defaults=True):
    ip: str | None = None


class Named(msgspec.Struct, omit_defaults=True):
    """Managed Entity, Group and Resource Details share these three attributes."""

    uid: str | None = None
    name: str | None = None
    type: str | None = None


class Service(msgspec.Struct):
    name: str


class Request(msgspec.Struct):
    uid: str


class Api(msgspec.Struct, omit_defaults=True):
    operation: str
    service: Service | None = None
    request: Request | None = None


class Cloud(msgspec.Struct, omit_defaults=True):
    provider: str
    region: str | None = None


class OcsfRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    class_uid: int
    class_name: str
    category_uid: int
    category_name: str
    activity_id: int
    activity_name: str
    type_uid: int
    type_name: str
    severity_id: int
    severity: str
    time: int
    status_id: int
    status: str
    status_code: str | None = None
    message: str | None = None
    metadata: Metadata
    cloud: Cloud
    actor: Actor
    src_endpoint: Endpoint | None = None
    api: Api
    user: User | None = None
    entity: Named | None = None
    group: Named | None = None
    resources: list[Named] | None = None
    unmapped: AuditRest
    audit_tier: str
    audit_stream: str | Unset = UNSET
    audit_key_id: str | Unset = UNSET


def classify(event: AuditEvent) -> tuple[int, int, str]:
    """(class_uid, activity_id, activity_name) by the rule in the module docstring."""
    verb = action_verb(event.action)
    kind = identity_kind(event.entityType)
    entity = event.entity
    if verb == READ or entity is None or not (entity.id or entity.name):
        cls = API_ACTIVITY
    elif kind in _ACCOUNT_KINDS:
        cls = ACCOUNT_CHANGE
        if kind in _POLICY_KINDS and verb in (ADD, REMOVE):
            activity_id, name = _ATTACH if verb == ADD else _DETACH
            return cls, activity_id, name
    elif kind == GROUP:
        cls = GROUP_MANAGEMENT
    else:
        cls = ENTITY_MANAGEMENT
    # Other (99) carries the source's own action name, as OCSF asks.
    activity_id, name = _ACTIVITIES[cls].get(verb, (99, event.action or "Other"))
    return cls, activity_id, name


def build(cfg: Config) -> Mapper:
    # A custom api_url says nothing about the region, so the region is only stated for known hosts.
    cloud = Cloud("Genesys Cloud", None if cfg.genesys.api_url else cfg.genesys.region)
    profiles = ["cloud"]

    def to_ocsf(event: AuditEvent, raw: msgspec.Raw, tier: str) -> OcsfRecord:
        cls, activity_id, activity_name = classify(event)
        category_uid = cls // 1000
        class_name = _CLASS_NAMES[cls]
        status = (event.status or "").upper()
        status_id, status_name = _STATUS.get(status, (99, event.status) if event.status else (0, "Unknown"))
        severity_id, severity = _SEVERITY.get(status, _INFORMATIONAL)
        user, entity, msg = event.user, event.entity, event.message
        ips = valid_ips(event)
        ia = event.initiatingAction
        txn = ia.transactionId if ia is not None else None

        actor_user = None
        if user is not None:
            org = Org(event.userHomeOrgId) if event.userHomeOrgId else None
            actor_user = User(user.id, user.name, org=org)
        named = Named(entity.id, entity.name, event.entityType) if entity is not None else None
        target = None
        if cls == ACCOUNT_CHANGE and entity is not None:
            is_user = identity_kind(event.entityType) == USER
            target = User(entity.id, entity.name, event.entityType, 1 if is_user else 99)

        return OcsfRecord(
            class_uid=cls,
            class_name=class_name,
            category_uid=category_uid,
            category_name=_CATEGORY_NAMES[category_uid],
            activity_id=activity_id,
            activity_name=activity_name,
            type_uid=cls * 100 + activity_id,
            type_name=f"{class_name}: {activity_name}",
            severity_id=severity_id,
            severity=severity,
            time=parse_event_time_ms(event.eventDate),
            status_id=status_id,
            status=status_name,
            status_code=event.status,
            message=msg.message if msg is not None else None,
            metadata=Metadata(
                version=OCSF_VERSION,
                product=Product("Genesys Cloud", "Genesys",
                                Feature(event.serviceName) if event.serviceName else None),
                uid=event.id,
                original_time=event.eventDate,
                profiles=profiles,
                correlation_uid=txn,
            ),
            cloud=cloud,
            actor=Actor(actor_user),
            src_endpoint=Endpoint(ips[0]) if ips else (Endpoint() if cls == API_ACTIVITY else None),
            api=Api(
                event.action or "Unknown",
                Service(event.serviceName) if event.serviceName else None,
                Request(txn) if txn else None,
            ),
            user=target,
            entity=named if cls == ENTITY_MANAGEMENT else None,
            group=named if cls == GROUP_MANAGEMENT else None,
            resources=[named] if cls == API_ACTIVITY and named is not None else None,
            unmapped=audit_rest(
                event,
                entity=ref_out(entity) if entity is not None and entity.selfUri else None,
                remote_ip=event.remoteIp if len(event.remoteIp) > 1 or len(ips) != len(event.remoteIp) else [],
                status=None,
            ),
            audit_tier=tier,
        )

    return to_ocsf



def stamp(record: OcsfRecord, st: Stamp) -> OcsfRecord:
    """OCSF keeps the sequence in metadata.sequence and the org's name in metadata.tenant_uid."""
    if st.seq is not None:
        record.metadata.sequence = st.seq
    if st.org:
        record.metadata.tenant_uid = st.org
    return set_fields(record, Stamp(stream=st.stream, key_id=st.key_id).fields())

SCHEMA = SchemaSpec(
    name="ocsf",
    build=build,
    summary="OCSF 1.1",
    protected=frozenset({
        "time", "metadata", "class_uid", "category_uid", "activity_id", "type_uid", "severity_id", "audit_tier",
    }),
    seq_path=("metadata", "sequence"),
    stamp=stamp,
    org_path=("metadata", "tenant_uid"),
    id_field="metadata.uid",
)

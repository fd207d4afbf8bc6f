"""Elastic Common Schema 8.11 as nested objects.

Categorisation: identity entity types (users, groups, roles, grants, OAuth clients, credentials)
are `iam` with two event types, the target kind (`user`, `group` or `admin`) and the activity
(`creation`, `deletion`, `change`, `info`), as the ECS user-fields guide asks. Everything else is
`configuration` with `creation`, `deletion`, `change` or `access`; `Authenticate` is
`authentication`/`info`. The rest of the audit event goes under `genesys.audit.*` with its
original field names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from .common import (
    CREATE,
    DELETE,
    GROUP,
    LOGIN,
    READ,
    UNSET,
    USER,
    AuditRest,
    Mapper,
    SchemaSpec,
    Stamp,
    Unset,
    action_verb,
    audit_rest,
    event_type,
    identity_kind,
    outcome,
    ref_out,
    set_fields,
    valid_ips,
)

if TYPE_CHECKING:
    from ..config import Config
    from ..models import AuditEvent

ECS_VERSION = "8.11.0"
_IAM = ["iam"]
_CONFIGURATION = ["configuration"]
_AUTHENTICATION = ["authentication"]
# The kind of IAM target: ECS knows users and groups; roles, grants, clients are admin objects.
_TARGET_TYPE = {USER: "user", GROUP: "group"}
_IAM_TYPE = {CREATE: "creation", DELETE: "deletion", READ: "info"}
_CONFIG_TYPE = {CREATE: ["creation"], DELETE: ["deletion"], READ: ["access"]}
_CHANGE = ["change"]


class EcsEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    kind: str
    category: list[str]
    type: list[str]
    action: str
    outcome: str
    provider: str
    module: str
    dataset: str
    code: str | None = None
    sequence: int | Unset = UNSET  # the chain's sequence in this stream


class EcsTarget(msgspec.Struct, omit_defaults=True):
    id: str | None = None
    name: str | None = None


class EcsUser(msgspec.Struct, omit_defaults=True):
    id: str | None = None
    name: str | None = None
    target: EcsTarget | None = None  # the user account an IAM event changed


class EcsGroup(msgspec.Struct, omit_defaults=True):
    id: str | None = None
    name: str | None = None


class EcsSource(msgspec.Struct):
    ip: str


class EcsOrganization(msgspec.Struct, omit_defaults=True):
    id: str | None = None
    name: str | None = None  # the org's name in a deployment of several orgs


class EcsRelated(msgspec.Struct, omit_defaults=True):
    user: list[str] = []
    ip: list[str] = []


class EcsVersion(msgspec.Struct):
    version: str


class Genesys(msgspec.Struct):
    audit: AuditRest


class EcsRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    timestamp: str = msgspec.field(name="@timestamp")
    message: str | None = None
    event: EcsEvent
    user: EcsUser | None = None
    group: EcsGroup | None = None
    source: EcsSource | None = None
    organization: EcsOrganization | None = None
    related: EcsRelated | None = None
    ecs: EcsVersion
    genesys: Genesys
    audit_tier: str
    audit_stream: str | Unset = UNSET
    audit_key_id: str | Unset = UNSET


_ECS = EcsVersion(ECS_VERSION)


def _categorise(verb: str, kind: str | None) -> tuple[list[str], list[str]]:
    if verb == LOGIN:
        return _AUTHENTICATION, ["info"]
    if kind is not None:
        return _IAM, [_TARGET_TYPE.get(kind, "admin"), _IAM_TYPE.get(verb, "change")]
    return _CONFIGURATION, _CONFIG_TYPE.get(verb, _CHANGE)


def _related_users(*names: str | None) -> list[str]:
    seen: list[str] = []
    for n in names:
        if n and n not in seen:
            seen.append(n)
    return seen


def to_ecs(event: AuditEvent, raw: msgspec.Raw, tier: str) -> EcsRecord:
    user, entity, msg = event.user, event.entity, event.message
    kind = identity_kind(event.entityType)
    category, types = _categorise(action_verb(event.action), kind)
    ips = valid_ips(event)

    target = EcsTarget(entity.id, entity.name) if kind == USER and entity is not None else None
    group = EcsGroup(entity.id, entity.name) if kind == GROUP and entity is not None else None
    if user is not None:
        actor: EcsUser | None = EcsUser(user.id, user.name, target)
    else:
        actor = EcsUser(target=target) if target is not None else None
    names = _related_users(
        user.id if user else None, user.name if user else None,
        target.id if target else None, target.name if target else None,
    )
    related = EcsRelated(names, ips) if names or ips else None

    return EcsRecord(
        timestamp=event.eventDate,
        message=msg.message if msg is not None else None,
        event=EcsEvent(
            id=event.id,
            kind="event",
            category=category,
            type=types,
            action=event_type(event),
            outcome=outcome(event.status),
            provider="genesys-cloud",
            module="genesys_cloud",
            dataset="genesys_cloud.audit",
            code=msg.localizableMessageCode if msg is not None else None,
        ),
        user=actor,
        group=group,
        source=EcsSource(ips[0]) if ips else None,
        organization=EcsOrganization(event.userHomeOrgId) if event.userHomeOrgId else None,
        related=related,
        ecs=_ECS,
        genesys=Genesys(audit_rest(event, entity=ref_out(entity), remote_ip=event.remoteIp, status=event.status)),
        audit_tier=tier,
    )


def build(cfg: Config) -> Mapper:
    return to_ecs


def stamp(record: EcsRecord, st: Stamp) -> EcsRecord:
    """ECS keeps the sequence in event.sequence and the org's name in organization.name."""
    if st.seq is not None:
        record.event.sequence = st.seq
    if st.org:
        if record.organization is None:
            record.organization = EcsOrganization()
        record.organization.name = st.org
    return set_fields(record, Stamp(stream=st.stream, key_id=st.key_id).fields())


SCHEMA = SchemaSpec(
    name="ecs",
    build=build,
    summary="Elastic Common Schema 8.x",
    protected=frozenset({"@timestamp", "event", "audit_tier"}),
    seq_path=("event", "sequence"),
    stamp=stamp,
    org_path=("organization", "name"),
    id_field="event.id",
)

"""Elastic Common Schema 8.11 as nested objects.

Categorisation: identity entity types (users, groups, roles, grants, OAuth clients, credentials)
are `iam` with two event types, the target kind (`user`, `group` or `admin`) and the activity
(`creation`, `deletion`, `change`, `info`), as the ECS user-fields guide asks. Everything else is
`configuration` with `creation`, `deletion`, `change` or `access`; `Authenticate` is
`authentication`/`info`. The rest of the audit event goes under `genesys.audit.*` with its
original field names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from ..models import InitiatingAction, PropertyChange
from . import (
    CREATE,
    DELETE,
    GROUP,
    LOGIN,
    READ,
    USER,
    Mapper,
    MessageOut,
    RefOut,
    action_verb,
    event_type,
    identity_kind,
    message_out,
    outcome,
    ref_out,
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


class EcsOrganization(msgspec.Struct):
    id: str


class EcsRelated(msgspec.Struct, omit_defaults=True):
    user: list[str] = []
    ip: list[str] = []


class EcsVersion(msgspec.Struct):
    version: str


class GenesysAudit(msgspec.Struct, kw_only=True, omit_defaults=True):
    serviceName: str | None = None  # noqa: N815
    entityType: str | None = None  # noqa: N815
    entity: RefOut | None = None
    level: str | None = None
    status: str | None = None
    message: MessageOut | None = None
    propertyChanges: list[PropertyChange] = []  # noqa: N815
    context: dict[str, Any] | None = None
    client: RefOut | None = None
    application: str | None = None
    remoteIp: list[str] = []  # noqa: N815
    initiatingAction: InitiatingAction | None = None  # noqa: N815
    transactionInitiator: bool | None = None  # noqa: N815
    entityChanges: list[msgspec.Raw] = []  # noqa: N815


class Genesys(msgspec.Struct):
    audit: GenesysAudit


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
        genesys=Genesys(GenesysAudit(
            serviceName=event.serviceName,
            entityType=event.entityType,
            entity=ref_out(entity),
            level=event.level,
            status=event.status,
            message=message_out(msg),
            propertyChanges=event.propertyChanges,
            context=event.context,
            client=ref_out(event.client),
            application=event.application,
            remoteIp=event.remoteIp,
            initiatingAction=event.initiatingAction,
            transactionInitiator=event.transactionInitiator,
            entityChanges=event.entityChanges,
        )),
        audit_tier=tier,
    )


def build(cfg: Config) -> Mapper:
    return to_ecs

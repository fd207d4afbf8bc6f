"""Splunk CIM, Change data model (All_Changes; Account_Management for identity objects).

`change_type` is `AAA` for users, groups, roles, grants, OAuth clients and credentials, else
`configuration`. `action` is one of CIM's values: created, deleted, read, cleared, acl_modified
(permissions added or removed on an identity object, or a role changed), else modified.
As CIM asks for account changes, `user` is the account that was changed when the entity is a
user, and `src_user` is always the actor. `status` is success|failure, and absent for any other
Genesys status (WARNING), which stays in `result`. `_time` is epoch seconds, `time` the original
ISO-8601 eventDate; the whole original event is under `genesys`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from ..models import parse_event_time_ms
from .common import (
    ADD,
    CLEAR,
    CREATE,
    DELETE,
    GRANT,
    READ,
    REMOVE,
    ROLE,
    UNSET,
    USER,
    Mapper,
    SchemaSpec,
    Unset,
    action_verb,
    dvc_name,
    epoch_seconds,
    event_type,
    identity_kind,
    outcome,
)

if TYPE_CHECKING:
    from ..config import Config
    from ..models import AuditEvent

_ACTIONS = {CREATE: "created", DELETE: "deleted", READ: "read", CLEAR: "cleared"}
_PERMISSION_KINDS = frozenset({ROLE, GRANT})


class CimRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    _time: msgspec.Raw  # epoch seconds, written as RFC 8785 writes the number
    time: str
    id: str
    action: str
    change_type: str
    object: str | None = None
    object_id: str | None = None
    object_category: str | None = None
    object_path: str | None = None
    object_attrs: list[str] = []
    command: str
    user: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    src_user: str | None = None
    src_user_id: str | None = None
    src_user_name: str | None = None
    src: str | None = None
    status: str | None = None
    result: str | None = None
    dvc: str
    vendor_product: str
    genesys: Any  # the original event
    audit_tier: str
    audit_seq: int | Unset = UNSET
    audit_stream: str | Unset = UNSET
    audit_key_id: str | Unset = UNSET
    genesys_org: str | Unset = UNSET


def cim_action(verb: str, kind: str | None) -> str:
    """The CIM Change `action` for a verb on an entity of the given identity kind."""
    known = _ACTIONS.get(verb)
    if known is not None:
        return known
    if kind is not None and (verb in (ADD, REMOVE) or kind in _PERMISSION_KINDS):
        return "acl_modified"
    return "modified"


def build(cfg: Config) -> Mapper:
    dvc = dvc_name(cfg)

    def to_cim(event: AuditEvent, raw: Any, tier: str) -> CimRecord:
        kind = identity_kind(event.entityType)
        user, entity = event.user, event.entity
        actor_id = user.id if user else None
        actor_name = user.name if user else None
        # CIM: for account changes `user` is the account changed, `src_user` who changed it.
        if kind == USER and entity is not None and (entity.id or entity.name):
            user_id, user_name = entity.id, entity.name
        else:
            user_id, user_name = actor_id, actor_name
        status = outcome(event.status)
        return CimRecord(
            _time=epoch_seconds(parse_event_time_ms(event.eventDate)),
            time=event.eventDate,
            id=event.id,
            action=cim_action(action_verb(event.action), kind),
            change_type="AAA" if kind is not None else "configuration",
            object=(entity.name or entity.id) if entity is not None else None,
            object_id=entity.id if entity is not None else None,
            object_category=event.entityType,
            object_path=entity.selfUri if entity is not None else None,
            object_attrs=[c.property for c in event.propertyChanges if c.property],
            command=event_type(event),
            user=user_name or user_id,
            user_id=user_id,
            user_name=user_name,
            src_user=actor_name or actor_id,
            src_user_id=actor_id,
            src_user_name=actor_name,
            src=event.remoteIp[0] if event.remoteIp else None,
            status=status if status != "unknown" else None,
            result=event.status,
            dvc=dvc,
            vendor_product="Genesys Cloud",
            genesys=raw,
            audit_tier=tier,
        )

    return to_cim


SCHEMA = SchemaSpec(
    name="cim",
    build=build,
    summary="Splunk CIM Change",
    embeds_event=True,
    protected=frozenset({"id", "_time", "time", "action", "object_id", "audit_tier"}),
    id_field="id",
)

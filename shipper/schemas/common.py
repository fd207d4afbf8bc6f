"""What several schemas share. The helpers classify the open-ended Genesys `action` and
`entityType` strings once (cached), so each schema only maps a small closed set of verbs and
identity kinds onto its own vocabulary."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import msgspec

from ..models import InitiatingAction, PropertyChange

if TYPE_CHECKING:
    from ..config import Config
    from ..models import AuditEvent, Message, Ref

Mapper = Callable[["AuditEvent", Any, str], Any]  # (event, original event: Raw or decoded, tier) -> record
TIER_FIELD = "audit_tier"
UNSET: Any = msgspec.UNSET
Unset = msgspec.UnsetType


class Stamp(msgspec.Struct, frozen=True):
    """What a record gets besides its mapping: the chain's sequence, stream and key id (when the
    chain is on) and the org's name (when several orgs share a deployment)."""

    seq: int | None = None
    stream: str = ""
    key_id: str = ""
    org: str = ""

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.seq is not None:
            out["audit_seq"] = self.seq
        if self.stream:
            out["audit_stream"] = self.stream
        if self.key_id:
            out["audit_key_id"] = self.key_id
        if self.org:
            out["genesys_org"] = self.org
        return out


def set_fields(record: Any, values: dict[str, Any]) -> Any:
    """Set `values` on a record: a dict, a Struct with those fields, or original bytes (a Raw,
    which gets them appended)."""
    if isinstance(record, dict):
        record.update(values)
    elif isinstance(record, msgspec.Raw):
        data = bytes(record)
        extra = b"".join(b"," + msgspec.json.encode(k) + b":" + msgspec.json.encode(v) for k, v in values.items())
        return msgspec.Raw(data[:-1] + extra + b"}") if data.endswith(b"}") and data != b"{}" else record
    else:
        for name, value in values.items():
            setattr(record, name, value)
    return record


def stamp_top(record: Any, stamp: Stamp) -> Any:
    """The default placement: every stamped field at the top level."""
    values = stamp.fields()
    return set_fields(record, values) if values else record


def epoch_seconds(ms: int) -> msgspec.Raw:
    """Epoch seconds with milliseconds, written as RFC 8785 writes the number (the chain's form)."""
    secs, rem = divmod(ms, 1000)
    return msgspec.Raw(str(secs).encode() if not rem else repr(ms / 1000).encode())


@dataclass(frozen=True)
class SchemaSpec:
    """One output schema: how to build its mapper, and what the rest of the program must know
    about its records."""

    name: str
    build: Callable[[Config], Mapper]
    summary: str
    slim: bool = False  # reads only SlimEvent fields and embeds the original bytes: decode less
    protected: frozenset[str] = frozenset()  # top-level keys that shrinking never cuts
    id_field: str | None = None  # dotted path of the event id in a record (None: not known)
    seq_path: tuple[str, ...] = ("audit_seq",)  # where the chain's sequence number goes (documentation, verify)
    org_path: tuple[str, ...] = ("genesys_org",)  # where the org's name goes (several orgs in one deployment)
    stamp: Callable[[Any, Stamp], Any] = stamp_top  # puts the Stamp where this schema keeps it
    embeds_event: bool = False  # records carry the original event (decoded canonically when chaining)
    typed: bool = True  # records hold no Raw but the original event: the chain's fast path applies


def event_type(event: AuditEvent) -> str:
    """`<serviceName>.<entityType>.<action>`, the guide's eventType for the real API."""
    return f"{event.serviceName or ''}.{event.entityType or ''}.{event.action or ''}"


# -- verbs: what an action does, in a closed set every schema can map ---------------------------
CREATE: Final = "create"
READ: Final = "read"
UPDATE: Final = "update"
DELETE: Final = "delete"
ADD: Final = "add"  # something attached to the entity: member, share, grant, authorization
REMOVE: Final = "remove"  # the reverse of ADD
ENABLE: Final = "enable"
DISABLE: Final = "disable"
PASSWORD: Final = "password"
LOGIN: Final = "login"
EXECUTE: Final = "execute"
CLEAR: Final = "clear"
OTHER: Final = "other"

# The ActionEnum of Genesys's SDKs (lower case), plus the simulator's; unknown actions fall back
# to a prefix guess in action_verb.
_VERBS: dict[str, str] = {
    **dict.fromkeys(("create", "versioncreate", "copy"), CREATE),
    **dict.fromkeys(("view", "read", "readall", "download", "downloadcapture", "export", "open", "verify"), READ),
    **dict.fromkeys((
        "update", "move", "memberupdate", "tagadd", "tagremove", "tagupdate", "save", "revert", "rollback",
        "replace", "write", "append", "upload", "updateretention", "applyprotection", "revokeprotection",
        "promote", "publish", "unpublish", "checkin", "checkout", "archive", "unarchive", "restore",
        "restorerequest", "restorecomplete", "reassign", "reschedule", "cancel", "updateinservice",
        "updateoutofservice", "cycle", "scale", "reset", "rotate", "approved", "rejected", "implementingchange",
        "changeimplemented", "implementingrollback", "rollbackimplemented", "processed", "abandon",
    ), UPDATE),
    **dict.fromkeys(("delete", "deleteall", "softdelete", "harddelete", "purge", "recycle"), DELETE),
    **dict.fromkeys(("add", "memberadd", "shareadd", "assign", "addpairingrole", "authorize"), ADD),
    **dict.fromkeys(("remove", "memberremove", "shareremove", "unassign", "deauthorize", "revoke"), REMOVE),
    **dict.fromkeys(("enable", "activate", "enablecapture"), ENABLE),
    **dict.fromkeys(("disable", "deactivate"), DISABLE),
    "changepassword": PASSWORD,
    "authenticate": LOGIN,
    **dict.fromkeys(("execute", "transcode", "fax", "debug"), EXECUTE),
    "ipallowlistclear": CLEAR,
}
_VERB_PREFIXES = (
    ("create", CREATE), ("delete", DELETE), ("remove", REMOVE), ("add", ADD), ("update", UPDATE),
    ("view", READ), ("read", READ), ("get", READ), ("enable", ENABLE), ("disable", DISABLE),
)


def _norm(text: str) -> str:
    return text.lower().replace(" ", "").replace("_", "").replace("-", "")


@lru_cache(maxsize=1024)
def action_verb(action: str | None) -> str:
    """The verb class of a Genesys action (open string), e.g. `MemberAdd` -> ADD; OTHER if unknown."""
    if not action:
        return OTHER
    key = _norm(action)
    verb = _VERBS.get(key)
    if verb is not None:
        return verb
    for prefix, guess in _VERB_PREFIXES:
        if key.startswith(prefix):
            return guess
    return OTHER


# -- identity kinds: which entity types are accounts, groups or permissions ---------------------
USER: Final = "user"
GROUP: Final = "group"
ROLE: Final = "role"
GRANT: Final = "grant"
CLIENT: Final = "client"
CREDENTIAL: Final = "credential"

_KINDS: dict[str, str] = {
    **dict.fromkeys(("user", "users", "authuser", "directoryuser"), USER),
    **dict.fromkeys(("group", "groups", "directorygroup", "dynamicgroup"), GROUP),
    **dict.fromkeys(("role", "roles", "authorizationrole"), ROLE),
    **dict.fromkeys((
        "grant", "grants", "subject", "roleassignment", "divisiongrant",
        "organizationauthorizationtrust", "organizationauthorizationusertrust",
    ), GRANT),
    **dict.fromkeys(("oauthclient", "oauthclients", "oauthclientauthorization"), CLIENT),
    **dict.fromkeys(("credential", "credentials", "accesstoken", "token", "password", "apikey"), CREDENTIAL),
}


@lru_cache(maxsize=1024)
def identity_kind(entity_type: str | None) -> str | None:
    """USER, GROUP, ROLE, GRANT, CLIENT or CREDENTIAL for identity entity types; None otherwise."""
    return _KINDS.get(_norm(entity_type)) if entity_type else None


def outcome(status: str | None) -> str:
    """success | failure | unknown (WARNING and a missing status are neither)."""
    if status:
        s = status.upper()
        if s == "SUCCESS":
            return "success"
        if s == "FAILURE":
            return "failure"
    return "unknown"


# -- IPs: typed IP fields (ECS, OCSF) reject a whole document on a malformed value -------------
@lru_cache(maxsize=4096)
def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def valid_ips(event: AuditEvent) -> list[str]:
    """remoteIp entries that parse as IP addresses, in order (the first is the originator)."""
    return [ip for ip in event.remoteIp if _is_ip(ip)]


def dvc_name(cfg: Config) -> str:
    """The reporting 'device': the Genesys API host the shipper reads, e.g. api.mypurecloud.com."""
    return urlsplit(cfg.api_base).hostname or "genesys-cloud"


# -- clean copies of nested objects: the models' Structs would encode their unset fields as null --
class RefOut(msgspec.Struct, omit_defaults=True):
    id: str | None = None
    name: str | None = None
    selfUri: str | None = None  # noqa: N815


class MessageOut(msgspec.Struct, omit_defaults=True):
    localizableMessageCode: str | None = None  # noqa: N815
    message: str | None = None
    messageWithParams: str | None = None  # noqa: N815
    messageParams: dict[str, Any] | None = None  # noqa: N815


def ref_out(ref: Ref | None) -> RefOut | None:
    return RefOut(ref.id, ref.name, ref.selfUri) if ref is not None else None


def message_out(m: Message | None) -> MessageOut | None:
    if m is None:
        return None
    return MessageOut(m.localizableMessageCode, m.message, m.messageWithParams, m.messageParams)



class AuditRest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The event's fields that a schema has no home for (ECS `genesys.audit`, OCSF `unmapped`)."""

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
    entityChanges: list[Any] = []  # noqa: N815


def audit_rest(event: AuditEvent, *, entity: RefOut | None, remote_ip: list[str], status: str | None) -> AuditRest:
    return AuditRest(
        serviceName=event.serviceName,
        entityType=event.entityType,
        entity=entity,
        level=event.level,
        status=status,
        message=message_out(event.message),
        propertyChanges=event.propertyChanges,
        context=event.context,
        client=ref_out(event.client),
        application=event.application,
        remoteIp=remote_ip,
        initiatingAction=event.initiatingAction,
        transactionInitiator=event.transactionInitiator,
        entityChanges=event.entityChanges,
    )

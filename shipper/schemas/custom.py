"""The guide's `{{path}}` template, from `output.template`, compiled once at start.

Syntax:
- The template is a mapping; keys are copied as written; values may be nested mappings, lists,
  strings, numbers, booleans or null. Only strings are templated; everything else is constant.
- A string that is exactly `{{path}}` becomes the value at that path with its type kept
  (object, list, number, boolean, null).
- `{{path}}` inside other text is interpolated: strings as they are, null as an empty string,
  anything else as compact JSON (`true`, `42`, `["a","b"]`).
- A path is dot-separated field names of the original event: `user.id`, `entity.name`,
  `message.messageParams.0`. A number indexes a list: `remoteIp.0`, `propertyChanges.0.property`.
  `event.` may prefix any path. Whitespace inside the braces is ignored. There are no escapes.
- `{{.}}` or `{{event}}` is the whole original event, unchanged.
- Computed names: `tier` (also `audit_tier`), `event_type` (`serviceName.entityType.action`),
  `time_ms` (eventDate as epoch milliseconds).
- The guide's names work too, so its sample template runs as is: `date` (eventDate), `actorId`,
  `actorName`, `eventType`, `entityId`, `entityType`, and `data` (the whole original event).
- A path the event does not have gives null (an empty string inside text).
- Every record also carries the tier as `audit_tier`, overriding a template key of that name.

Example:
    output:
      schema: custom
      template:
        ts: "{{eventDate}}"
        who: {id: "{{user.id}}", name: "{{user.name}}"}
        what: "{{action}} {{entityType}} {{entity.name}}"
        changes: "{{propertyChanges}}"
        original: "{{.}}"
"""

from __future__ import annotations

import re
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import ConfigError
from ..models import parse_event_time_ms
from .common import TIER_FIELD, Mapper, SchemaSpec, event_type

if TYPE_CHECKING:
    from ..config import Config
    from ..models import AuditEvent

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_encode = msgspec.json.encode
_UNSET: Any = object()


class _Ctx:
    """One event being rendered; the original is decoded only if a path needs it, and only once."""

    __slots__ = ("event", "raw", "tier", "_doc")

    def __init__(self, event: AuditEvent, raw: msgspec.Raw, tier: str) -> None:
        self.event = event
        self.raw = raw
        self.tier = tier
        self._doc: Any = _UNSET

    def doc(self) -> Any:
        if self._doc is _UNSET:
            self._doc = msgspec.json.decode(self.raw)
        return self._doc


Getter = Callable[[_Ctx], Any]


def _sub(outer: str, inner: str) -> Callable[[AuditEvent], Any]:
    def get(event: AuditEvent) -> Any:
        obj = getattr(event, outer)
        return None if obj is None else getattr(obj, inner)

    return get


# Paths the decoded AuditEvent answers exactly as the original would (scalars that are null when
# absent): these need no second parse. Lists and maps default to empty in the model, not null,
# so they are read from the original instead.
_FROM_STRUCT: dict[tuple[str, ...], Callable[[AuditEvent], Any]] = {
    **{(f,): attrgetter(f) for f in (
        "id", "eventDate", "userHomeOrgId", "serviceName", "level", "action", "entityType", "status",
        "application", "transactionInitiator",
    )},
    **{(o, i): _sub(o, i) for o in ("user", "client", "entity") for i in ("id", "name", "selfUri")},
    **{("message", i): _sub("message", i) for i in ("localizableMessageCode", "message", "messageWithParams")},
}
_WHOLE = frozenset({".", "event", "data"})
_ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("eventDate",), "actorId": ("user", "id"), "actorName": ("user", "name"),
    "entityId": ("entity", "id"),
}


def _whole(ctx: _Ctx) -> Any:
    return ctx.raw


def _tier(ctx: _Ctx) -> Any:
    return ctx.tier


def _event_type(ctx: _Ctx) -> Any:
    return event_type(ctx.event)


def _time_ms(ctx: _Ctx) -> Any:
    return parse_event_time_ms(ctx.event.eventDate)


_COMPUTED: dict[str, Getter] = {
    "tier": _tier, TIER_FIELD: _tier, "event_type": _event_type, "eventType": _event_type, "time_ms": _time_ms,
}


def _walk(node: Any, segments: tuple[str, ...]) -> Any:
    for seg in segments:
        if isinstance(node, dict):
            node = node.get(seg)
        elif isinstance(node, list):
            try:
                node = node[int(seg)]
            except (ValueError, IndexError):
                return None
        else:
            return None
        if node is None:
            return None
    return node


def _path_getter(text: str, where: str) -> Getter:
    path = text.strip()
    if path in _WHOLE:
        return _whole
    if path.startswith("event."):
        path = path[len("event."):]
    if path in _COMPUTED:
        return _COMPUTED[path]
    segments = _ALIASES.get(path) or tuple(path.split("."))
    if not path or any(not s.strip() for s in segments):
        raise ConfigError(f"{where}: {{{{{text}}}}} is not a path; write e.g. {{{{user.id}}}} or {{{{.}}}}")
    segments = tuple(s.strip() for s in segments)
    direct = _FROM_STRUCT.get(segments)
    if direct is not None:
        return lambda ctx: direct(ctx.event)
    return lambda ctx: _walk(ctx.doc(), segments)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, msgspec.Raw):
        return bytes(value).decode("utf-8")
    return _encode(value).decode("utf-8")


def _compile_string(text: str, where: str) -> Getter | None:
    """A getter for a templated string, or None when the string is a constant."""
    parts = _PLACEHOLDER.split(text)
    # split() alternates literal text and placeholder contents: [lit, path, lit, path, lit].
    if "{{" in "".join(parts[0::2]):
        raise ConfigError(f"{where}: {text!r} has a '{{{{' without its '}}}}'")
    if len(parts) == 1:
        return None
    if len(parts) == 3 and parts[0] == "" and parts[2] == "":
        return _path_getter(parts[1], where)  # exactly "{{path}}": keep the value's type
    pieces: list[str | Getter] = [
        p if i % 2 == 0 else _path_getter(p, where) for i, p in enumerate(parts) if i % 2 or p
    ]

    def interpolate(ctx: _Ctx) -> str:
        return "".join(p if isinstance(p, str) else _as_text(p(ctx)) for p in pieces)

    return interpolate


def _compile(node: Any, where: str) -> Getter | None:
    """A getter for a template node, or None when the whole node is a constant."""
    if isinstance(node, str):
        return _compile_string(node, where)
    if isinstance(node, dict):
        items = [(str(k), v, _compile(v, f"{where}.{k}")) for k, v in node.items()]
        if all(g is None for _, _, g in items):
            return None
        getters = [(k, g if g is not None else _const(v)) for k, v, g in items]
        return lambda ctx: {k: g(ctx) for k, g in getters}
    if isinstance(node, list):
        compiled = [(v, _compile(v, f"{where}[{i}]")) for i, v in enumerate(node)]
        if all(g is None for _, g in compiled):
            return None
        elements = [g if g is not None else _const(v) for v, g in compiled]
        return lambda ctx: [g(ctx) for g in elements]
    return None


def _const(value: Any) -> Getter:
    # Constants are shared between records: records are only encoded, never mutated.
    return lambda ctx: value


def compile_template(template: dict[str, Any]) -> Mapper:
    """A Mapper rendering `template`; raises ConfigError naming the bad key."""
    top = [(str(k), _compile(v, f"output.template.{k}") or _const(v)) for k, v in template.items()]

    def render(event: AuditEvent, raw: msgspec.Raw, tier: str) -> dict[str, Any]:
        ctx = _Ctx(event, raw, tier)
        record = {k: g(ctx) for k, g in top}
        record[TIER_FIELD] = tier
        return record

    return render


def build(cfg: Config) -> Mapper:
    if not cfg.output.template:
        raise ConfigError("output.schema is custom but output.template is empty: give a mapping")
    return compile_template(cfg.output.template)


SCHEMA = SchemaSpec(
    name="custom",
    build=build,
    summary="your output.template",
    typed=False,
    protected=frozenset({"audit_tier"}),
    id_field=None,
)

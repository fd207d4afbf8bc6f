"""The fields of a record, read from the schema's own struct plus what the writer stamps on every
record, so SIEM content generated from them cannot drift from what the shipper prints.

A field's kind is the Log Analytics type its JSON value takes: `string`, `int`, `long`, `real`,
`boolean`, `dynamic` (objects, arrays, embedded raw JSON) or `datetime` (ISO-8601 strings the
SIEM should parse: the few listed in TIME_FIELDS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect as mi

from ..proof.chain import CHAIN_FIELD, KEY_ID_FIELD, SEQ_FIELD, STREAM_FIELD

# Strings that hold an instant (the API's eventDate, as the schema copies it).
TIME_FIELDS = frozenset({"siem_timestamp", "TimeGenerated", "EventStartTime", "EventEndTime"})
# Multi-org deployments stamp the org's name on every record (siem, raw, cim, asim, custom); ECS
# keeps it as organization.name, OCSF as metadata.tenant_uid.
ORG_FIELD = "genesys_org"
# The writer's shrink marker (output/encoder.py): only on records cut to output.max_line_bytes.
SHRINK_MARKER = "_truncated"


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    required: bool = True  # on every record (False: only when the event has it)
    note: str = ""


# Stamped at write time on every top-level-sequence record (output.chain, on by default).
STAMPED: tuple[Field, ...] = (
    Field(SEQ_FIELD, "long", note="per-stream sequence number, 1, 2, 3...: a gap is a lost record"),
    Field(STREAM_FIELD, "string", note="the stream the sequence counts: the tier, or org/tier"),
    Field(CHAIN_FIELD, "string", note="64 hex: SHA-256 (or HMAC-SHA256) chain over the canonical records"),
    Field(KEY_ID_FIELD, "string", required=False, note="on the first record after an HMAC key rotation"),
    Field(ORG_FIELD, "string", required=False, note="multi-org deployments: the org's name"),
)


def _kind(t: mi.Type) -> str:
    if isinstance(t, mi.UnionType):
        kinds = {_kind(x) for x in t.types if not isinstance(x, mi.NoneType)}
        if len(kinds) != 1:
            raise ValueError(f"a union of several kinds cannot be one column: {sorted(kinds)}")
        return kinds.pop()
    simple = {mi.StrType: "string", mi.IntType: "int", mi.FloatType: "real", mi.BoolType: "boolean"}
    for cls, kind in simple.items():
        if isinstance(t, cls):
            return kind
    if isinstance(t, (mi.RawType, mi.ListType, mi.DictType, mi.StructType, mi.AnyType)):
        return "dynamic"
    raise ValueError(f"no column kind for {t!r}")


def struct_fields(struct: type[msgspec.Struct]) -> list[Field]:
    """A record struct's top-level fields, in declaration order, with their kinds."""
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    out = []
    stamped = {s.name for s in STAMPED}
    for f in info.fields:
        if f.encode_name in stamped:
            continue  # the struct holds a place for it; STAMPED says what it is
        kind = "datetime" if f.encode_name in TIME_FIELDS else _kind(f.type)
        optional = not f.required or (isinstance(f.type, mi.UnionType)
                                      and any(isinstance(x, mi.NoneType) for x in f.type.types))
        out.append(Field(f.encode_name, kind, required=not optional))
    return out


def merge(*groups: list[Field] | tuple[Field, ...]) -> list[Field]:
    """The union of several field lists in first-seen order; a name must keep one kind."""
    seen: dict[str, Field] = {}
    for group in groups:
        for f in group:
            old = seen.get(f.name)
            if old is None:
                seen[f.name] = f
            elif old.kind != f.kind:
                raise ValueError(f"{f.name}: {old.kind} in one record, {f.kind} in another")
            elif old.required and not f.required:
                seen[f.name] = Field(old.name, old.kind, False, old.note or f.note)
    return list(seen.values())


def json_kind(value: Any) -> str:
    """The column kind a decoded JSON value fits (int for any integer; the caller widens to long)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "real"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (dict, list)):
        return "dynamic"
    return "null"

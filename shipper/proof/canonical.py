"""Canonical JSON bytes (RFC 8785, the JSON Canonicalization Scheme), so a record that went through
a SIEM and came back with its keys reordered or its numbers reformatted yields the same bytes.

msgspec does the work: objects are sorted by key and strings escaped exactly as RFC 8785 asks
(tests hold this against the `rfc8785` reference). Two corners need more:
- numbers with a fraction or exponent are written the ECMAScript way, by `rfc8785` itself;
- RFC 8785 sorts keys by UTF-16 code units, msgspec by code points: they disagree only between a
  character beyond U+FFFF and one in U+E000..U+FFFF, so only documents holding both sort in Python.
Integers outside +-(2**53 - 1), which RFC 8785 cannot represent, are kept exactly as they are.

The fast path for an audit event: decode it into CanonicalEvent, whose fields (and their nested
structs') are declared in sorted order, with every number already in canonical form; an encoder
with sorted keys then writes its canonical bytes with no Python in the loop. An event with a
field these structs do not know takes the general path (`parse`), which gives the same bytes.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import msgspec
import rfc8785


def canonical_number(text: str) -> Any:
    """A JSON number with a fraction or exponent, as RFC 8785 writes it."""
    value = float(text)
    if not math.isfinite(value):  # 1e999 in the input: keep its text, there is no canonical form
        return msgspec.Raw(text.encode())
    return msgspec.Raw(rfc8785.dumps(value))


_decode = msgspec.json.Decoder(float_hook=canonical_number).decode
_sorted = msgspec.json.Encoder(order="sorted").encode
_in_order = msgspec.json.Encoder().encode
_ASTRAL = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")  # UTF-8 lead bytes beyond U+FFFF


U = msgspec.UnsetType
UNSET: Any = msgspec.UNSET


class _Sorted(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    pass


class CRef(_Sorted):
    id: str | None | U = UNSET
    name: str | None | U = UNSET
    selfUri: str | None | U = UNSET  # noqa: N815


class CMessage(_Sorted):
    localizableMessageCode: str | None | U = UNSET  # noqa: N815
    message: str | None | U = UNSET
    messageParams: dict[str, Any] | None | U = UNSET  # noqa: N815
    messageWithParams: str | None | U = UNSET  # noqa: N815


class CChange(_Sorted):
    newValues: list[Any] | None | U = UNSET  # noqa: N815
    oldValues: list[Any] | None | U = UNSET  # noqa: N815
    property: str | None | U = UNSET


class CAction(_Sorted):
    actionContext: str | None | U = UNSET  # noqa: N815
    transactionId: str | None | U = UNSET  # noqa: N815


class CanonicalEvent(_Sorted):
    """An AuditLogMessage (or the guide's converted event) as it came, written in canonical form.
    The `audit_*` and `genesys_org` fields never come from the API: the `raw` schema stamps them."""

    action: str | None | U = UNSET
    application: str | None | U = UNSET
    audit_key_id: str | U = UNSET
    audit_seq: int | U = UNSET
    audit_stream: str | U = UNSET
    client: CRef | None | U = UNSET
    context: dict[str, Any] | None | U = UNSET
    data: Any = UNSET
    entity: CRef | None | U = UNSET
    entityChanges: list[Any] | None | U = UNSET  # noqa: N815
    entityType: str | None | U = UNSET  # noqa: N815
    eventDate: str | None | U = UNSET  # noqa: N815
    eventType: str | None | U = UNSET  # noqa: N815
    genesys_org: str | U = UNSET
    id: str | None | U = UNSET
    initiatingAction: CAction | None | U = UNSET  # noqa: N815
    level: str | None | U = UNSET
    message: CMessage | None | U = UNSET
    propertyChanges: list[CChange] | None | U = UNSET  # noqa: N815
    remoteIp: list[Any] | None | U = UNSET  # noqa: N815
    serviceName: str | None | U = UNSET  # noqa: N815
    status: str | None | U = UNSET
    transactionInitiator: bool | None | U = UNSET  # noqa: N815
    user: CRef | None | U = UNSET
    userHomeOrgId: str | None | U = UNSET  # noqa: N815


_decode_event = msgspec.json.Decoder(CanonicalEvent, float_hook=canonical_number).decode


def payload(raw: bytes | msgspec.Raw) -> Any:
    """An event, decoded for canonical writing: a CanonicalEvent, or plain objects when it holds
    something those structs do not know."""
    try:
        return _decode_event(raw)
    except msgspec.ValidationError:
        return _decode(raw)


def sort_matters(source: bytes | msgspec.Raw) -> bool:
    """Whether code-point order might differ from UTF-16 order among the keys of `source`."""
    data = source if isinstance(source, bytes) else bytes(source)
    # A lone byte is found with memchr; the two-byte `\u` search costs ~6x more, so it runs only
    # where there is a backslash at all.
    if b"\\" in data and b"\\u" in data:
        return True
    if data.isascii():
        return False
    # Lead bytes of U+E000..U+FFFF, then of anything beyond U+FFFF: only both can disagree.
    return (b"\xee" in data or b"\xef" in data) and any(b in data for b in _ASTRAL)


def fast(obj: Any) -> bytes:
    """Canonical bytes of a record built from `payload` objects, typed records and numbers already
    canonical (callers check `sort_matters` first)."""
    return _sorted(obj)


def parse(data: bytes | msgspec.Raw) -> Any:
    """A JSON document as Python objects, numbers with a fraction already in canonical form."""
    return _decode(data)


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _utf16_sorted(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _utf16_sorted(node[k]) for k in sorted(node, key=_utf16)}
    if isinstance(node, list):
        return [_utf16_sorted(v) for v in node]
    return node


def encode(doc: Any, source: bytes = b"") -> bytes:
    """The canonical bytes of `doc` (from `parse`). `source`, the bytes it was parsed from, tells
    whether the rare UTF-16 ordering can matter; without it, it is assumed that it can."""
    if source and not _source_matters(source):
        return _sorted(doc)
    return _in_order(_utf16_sorted(doc))


# A SIEM answer holds many records in one document, each encoded with that document as its
# source: scan it once, not once per record (bytes keep their hash once computed).
_source_matters = functools.lru_cache(maxsize=4)(sort_matters)


def canonical(data: bytes) -> bytes:
    """The canonical form of one JSON document."""
    return encode(parse(data), data)

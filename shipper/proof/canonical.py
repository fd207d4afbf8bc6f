"""Canonical JSON bytes (RFC 8785, the JSON Canonicalization Scheme), so a record that went through
a SIEM and came back with its keys reordered or its numbers reformatted yields the same bytes.

msgspec does the work: objects are sorted by key and strings escaped exactly as RFC 8785 asks
(tests hold this against the `rfc8785` reference). Two corners need more:
- numbers with a fraction or exponent are written the ECMAScript way, by `rfc8785` itself;
- RFC 8785 sorts keys by UTF-16 code units, msgspec by code points: they disagree only between a
  character beyond U+FFFF and one in U+E000..U+FFFF, so only documents holding both sort in Python.
Integers outside +-(2**53 - 1), which RFC 8785 cannot represent, are kept exactly as they are.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import rfc8785


def _number(text: str) -> Any:
    value = float(text)
    if not math.isfinite(value):  # 1e999 in the input: keep its text, there is no canonical form
        return msgspec.Raw(text.encode())
    return msgspec.Raw(rfc8785.dumps(value))


_decode = msgspec.json.Decoder(float_hook=_number).decode
_sorted = msgspec.json.Encoder(order="sorted").encode
_in_order = msgspec.json.Encoder().encode
_HIGH_BMP = (b"\xee", b"\xef")  # UTF-8 lead bytes of U+E000..U+FFFF
_ASTRAL = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")  # lead bytes beyond U+FFFF


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
    if source and b"\\u" not in source and not (any(b in source for b in _HIGH_BMP)
                                                and any(b in source for b in _ASTRAL)):
        return _sorted(doc)
    return _in_order(_utf16_sorted(doc))


def canonical(data: bytes) -> bytes:
    """The canonical form of one JSON document."""
    return encode(parse(data), data)

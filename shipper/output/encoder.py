"""NDJSON lines with a bound: one msgspec encoder, and `shrink_line` for the rare line too long.

Shrinking is deterministic and keeps as much as it can: only the largest strings are cut, each by
exactly what is needed, and a `_truncated` marker (counted in the bound) names the original size
and every cut path as a JSON Pointer. Subtrees under protected top-level keys (ids, times) are never cut. Only if
cutting every large string is not enough are whole containers replaced, largest first.
"""

from __future__ import annotations

from typing import Any

import msgspec

MARKER = "_truncated"
SUFFIX = "…[truncated]"
_MIN_CUT = 64  # strings shorter than this are not worth cutting
_enc = msgspec.json.encode


def _strings(node: Any, path: tuple[Any, ...], out: list[tuple[int, tuple[Any, ...]]]) -> None:
    stack = [(node, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if len(item) > _MIN_CUT:
                out.append((len(_enc(item)), where))
        elif isinstance(item, dict):
            stack.extend((v, (*where, k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, (*where, i)) for i, v in enumerate(item))


def _containers(node: Any, out: list[tuple[int, tuple[Any, ...]]]) -> None:
    stack: list[tuple[Any, tuple[Any, ...]]] = [(node, ())]
    while stack:
        item, where = stack.pop()
        items = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for k, v in items:
            if isinstance(v, (dict, list)):
                out.append((len(_enc(v)), (*where, k)))
                stack.append((v, (*where, k)))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _cut_to(value: str, budget: int) -> str:
    """The longest prefix of `value`, plus SUFFIX, whose JSON encoding fits in `budget` bytes."""
    lo, hi = 0, len(value)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(_enc(value[:mid] + SUFFIX)) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return value[:lo] + SUFFIX


def _path_name(path: tuple[Any, ...]) -> str:
    """An RFC 6901 JSON Pointer: unambiguous even for keys that contain dots or slashes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def shrink_line(line: bytes, limit: int, protect: frozenset[str] = frozenset()) -> bytes:
    """`line` (one JSON document) re-encoded so that it plus a newline fits in `limit` bytes."""
    doc = msgspec.json.decode(line)
    if not isinstance(doc, dict):
        doc = {"value": doc}
    cut: list[str] = []
    doc[MARKER] = {"original_bytes": len(line), "cut": cut}

    def excess() -> int:
        return len(_enc(doc)) + 1 - limit

    strings: list[tuple[int, tuple[Any, ...]]] = []
    _strings({k: v for k, v in doc.items() if k != MARKER and k not in protect}, (), strings)
    strings.sort(key=lambda x: (-x[0], repr(x[1])))
    for size, path in strings:
        if excess() <= 0:
            break
        cut.append(_path_name(path))  # the marker grows first, so the cut accounts for it
        over = excess()
        if over <= 0:
            continue
        _set(doc, path, _cut_to(_get(doc, path), max(0, size - over)))
    while excess() > 0:
        boxes: list[tuple[int, tuple[Any, ...]]] = []
        _containers({k: v for k, v in doc.items() if k != MARKER and k not in protect}, boxes)
        boxes = [b for b in boxes if _get(doc, b[1]) != "[truncated]"]
        if not boxes:
            break
        boxes.sort(key=lambda x: (-x[0], repr(x[1])))
        _, path = boxes[0]
        cut.append(_path_name(path))
        _set(doc, path, "[truncated]")
    if excess() > 0:
        doc = _last_resort(doc, protect, len(line), limit)
    return _enc(doc)


def _last_resort(doc: dict[str, Any], protect: frozenset[str], original: int, limit: int) -> dict[str, Any]:
    """Keep only the protected keys (shortened if they alone are too big) and the marker."""
    kept = {k: v for k, v in doc.items() if k in protect}
    for keep in (256, 32, 0):
        out = {k: (v[:keep] if isinstance(v, str) else v if keep else None) for k, v in kept.items()}
        out[MARKER] = {"original_bytes": original, "cut": ["*"]}
        if len(_enc(out)) + 1 <= limit:
            return out
    return {MARKER: {"original_bytes": original, "cut": ["*"]}}


class LineEncoder:
    """Encodes records to single NDJSON lines no longer than `max_line_bytes` (newline included)."""

    def __init__(self, max_line_bytes: int, protect: frozenset[str] = frozenset()) -> None:
        self.max_line_bytes = max_line_bytes
        self.protect = protect
        encoder = msgspec.json.Encoder()
        self.raw_encode, self.encode_into = encoder.encode, encoder.encode_into
        self.shrunk = 0

    def fit(self, line: bytes) -> bytes:
        """Shrink an encoded line that is too long (the caller checks the length: hot path)."""
        self.shrunk += 1
        return shrink_line(line, self.max_line_bytes, self.protect)

    def encode(self, record: Any) -> bytes:
        line = self.raw_encode(record)
        return line if len(line) + 1 <= self.max_line_bytes else self.fit(line)

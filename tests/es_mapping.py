"""What Elasticsearch's document parser would do with a document under a mapping, without an
Elasticsearch (none can be had from Debian's or PyPI's packages).

Follows Elasticsearch 8's DocumentParser and field mappers for the types the shipped templates use:
- an object mapping takes objects, arrays of them and null; a concrete value where an object is
  mapped is rejected ("tried to parse field [x] as object, but found a concrete value"), unless
  the object has `enabled: false` (its content is skipped, whatever it is);
- a field that is not mapped is rejected under `dynamic: strict` (null and [] included), skipped
  under `dynamic: false` (kept in _source, not searchable: reported as unindexed), and would add a
  mapping under `dynamic: true` / `runtime` (reported as dynamic);
- `keyword`: text, numbers and booleans (as text); an object is rejected; a value longer than
  `ignore_above` (UTF-16 units) is not indexed; otherwise one longer than Lucene's 32766-byte term
  limit rejects the document ("immense term");
- `text`, `match_only_text`: text, numbers, booleans;
- `date`: strings in its format (default strict_date_optional_time||epoch_millis), numbers as epoch
  milliseconds; `long`/`integer`/...: integers in range, numeric strings and floats (coerce);
  `double`/`float`: numbers, numeric strings; `boolean`: true/false/"true"/"false"/""; `ip`: IPv4
  or IPv6 text; `constant_keyword`: only its value;
- `flattened`: an object (or an array of objects); deeper than `depth_limit` (default 20) objects
  reject it; each leaf is indexed as "path\\0value": a leaf longer than `ignore_above` is skipped,
  otherwise a keyed value over 32766 bytes rejects the document; a key holding \\0 too.
Keys with dots are paths (a.b is b inside a), as with `subobjects: true`.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

MAX_TERM_BYTES = 32766  # Lucene's IndexWriter.MAX_TERM_LENGTH
INT_RANGES = {"long": (-(2**63), 2**63 - 1), "integer": (-(2**31), 2**31 - 1), "short": (-(2**15), 2**15 - 1),
              "byte": (-128, 127), "unsigned_long": (0, 2**64 - 1)}
FLOATS = {"double", "float", "half_float", "scaled_float"}
TEXTS = {"text", "match_only_text", "wildcard"}
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?"
                   r"(Z|[+-]\d{2}(?::?\d{2})?)?")


@dataclass
class Result:
    rejected: list[str] = field(default_factory=list)  # why Elasticsearch would refuse the document
    unindexed: list[str] = field(default_factory=list)  # paths kept in _source only (dynamic: false)
    dynamic: list[str] = field(default_factory=list)  # paths that would add mappings (dynamic: true)
    indexed: set[str] = field(default_factory=set)  # mapped paths that took a value

    @property
    def accepted(self) -> bool:
        return not self.rejected


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def strict_date_optional_time(text: str) -> bool:
    m = _DATE.fullmatch(text)
    if m is None:
        return False
    y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups()[:6])
    try:
        date(y, mo, d)
        datetime(y, mo, d, h, mi, s)
    except ValueError:
        return False
    return True


def _date_ok(value: Any, fmt: str) -> bool:
    if isinstance(value, bool):
        return False
    for name in fmt.split("||"):
        if name == "epoch_millis" and (isinstance(value, (int, float)) or re.fullmatch(r"-?\d+(\.\d+)?", str(value))):
            return True
        if name in ("strict_date_optional_time", "date_optional_time") and isinstance(value, str) \
                and strict_date_optional_time(value):
            return True
    return False


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


class Checker:
    """Checks documents against one index's mappings (see `compose`)."""

    def __init__(self, mappings: dict[str, Any]) -> None:
        self.root = mappings

    def check(self, doc: dict[str, Any]) -> Result:
        result = Result()
        self._object(doc, self.root, "", self.root.get("dynamic", True), result)
        return result

    # -- objects ---------------------------------------------------------------------------------
    def _object(self, doc: dict[str, Any], mapping: dict[str, Any], path: str, dynamic: Any, res: Result) -> None:
        dynamic = mapping.get("dynamic", dynamic)
        for key, value in doc.items():
            if key == "":
                res.rejected.append(f"{path or '<root>'}: a field name cannot be an empty string")
                continue
            head, _, rest = key.partition(".")
            if rest:  # a.b is b inside a
                value, key = {rest: value}, head
            self._member(key, value, mapping, path, dynamic, res)

    def _member(self, key: str, value: Any, mapping: dict[str, Any], path: str, dynamic: Any, res: Result) -> None:
        full = f"{path}.{key}" if path else key
        child = mapping.get("properties", {}).get(key)
        if child is None:
            mode = str(dynamic).lower()
            if mode == "strict":
                res.rejected.append(f"{full}: mapping set to strict, dynamic introduction of [{key}] within "
                                    f"[{path or '_doc'}] is not allowed")
            elif mode == "false":
                res.unindexed.append(full)
            elif value is not None:
                res.dynamic.append(full)
            return
        if "properties" in child or child.get("type") in (None, "object", "nested"):
            self._object_value(value, child, full, dynamic, res)
        else:
            self._field_value(value, child, full, res)

    def _object_value(self, value: Any, mapping: dict[str, Any], path: str, dynamic: Any, res: Result) -> None:
        if mapping.get("enabled", True) is False or value is None:
            return
        if isinstance(value, dict):
            self._object(value, mapping, path, dynamic, res)
        elif isinstance(value, list):
            for item in value:
                self._object_value(item, mapping, path, dynamic, res)
        else:
            res.rejected.append(f"{path}: object mapping tried to parse field [{path}] as object, but found a "
                                f"concrete value {str(value)[:40]!r}")

    # -- fields ----------------------------------------------------------------------------------
    def _field_value(self, value: Any, mapping: dict[str, Any], path: str, res: Result) -> None:
        if isinstance(value, list):
            for item in value:
                self._field_value(item, mapping, path, res)
            return
        if value is None:
            return
        kind = mapping["type"]
        if kind == "flattened":
            problem = _flattened(value, mapping, path)
        elif isinstance(value, dict):
            problem = f"{path}: failed to parse field of type [{kind}]: found an object"
        else:
            problem = _leaf(value, mapping, path)
        if problem:
            res.rejected.append(problem)
        else:
            res.indexed.add(path)


def _leaf(value: Any, mapping: dict[str, Any], path: str) -> str | None:
    kind = mapping["type"]
    bad = f"{path}: failed to parse field of type [{kind}]: {str(value)[:60]!r}"
    if kind == "keyword":
        text = _as_text(value)
        if utf16_len(text) > mapping.get("ignore_above", 2**31 - 1):
            return None
        if len(text.encode("utf-8")) > MAX_TERM_BYTES:
            return f"{path}: Document contains at least one immense term ({len(text.encode())} bytes > {MAX_TERM_BYTES})"
        return None
    if kind == "constant_keyword":
        want = mapping.get("value")
        return None if want is None or _as_text(value) == want else f"{path}: constant_keyword [{want}] got {value!r}"
    if kind in TEXTS:
        return None
    if kind in ("date", "date_nanos"):
        return None if _date_ok(value, mapping.get("format", "strict_date_optional_time||epoch_millis")) else bad
    if kind in INT_RANGES:
        return None if _integer_ok(value, kind, mapping.get("coerce", True)) else bad
    if kind in FLOATS:
        return None if _float_ok(value, mapping.get("coerce", True)) else bad
    if kind == "boolean":
        return None if value in (True, False, "true", "false", "") else bad
    if kind == "ip":
        try:
            ipaddress.ip_address(value if isinstance(value, str) else "x")
        except ValueError:
            return None if mapping.get("ignore_malformed") else bad
        return None
    raise ValueError(f"{path}: this checker does not know the type {kind!r}")


def _integer_ok(value: Any, kind: str, coerce: bool) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        if not coerce:
            return False
        try:
            value = float(value) if re.search(r"[.eE]", value) else int(value)
        except ValueError:
            return False
    if isinstance(value, float):
        if not coerce or not math.isfinite(value):
            return False
        value = int(value)
    lo, hi = INT_RANGES[kind]
    return isinstance(value, int) and lo <= value <= hi


def _float_ok(value: Any, coerce: bool) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        if not coerce:
            return False
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, (int, float)) and math.isfinite(value)


def _flattened(value: Any, mapping: dict[str, Any], path: str) -> str | None:
    if not isinstance(value, dict):
        return f"{path}: [flattened] expects an object, found {type(value).__name__} {str(value)[:40]!r}"
    limit = mapping.get("depth_limit", 20)
    ignore_above = mapping.get("ignore_above", 2**31 - 1)
    stack: list[tuple[Any, tuple[str, ...], int]] = [(value, (), 1)]
    while stack:
        node, keys, depth = stack.pop()
        if isinstance(node, dict):
            if depth > limit:
                return f"{path}: the provided [flattened] field exceeds the maximum depth limit of [{limit}]"
            for k, v in node.items():
                if isinstance(v, dict):
                    stack.append((v, (*keys, k), depth + 1))
                else:
                    stack.append((v, (*keys, k), depth))
        elif isinstance(node, list):
            stack.extend((item, keys, depth) for item in node)
        elif node is not None:
            key = ".".join(keys)
            if "\0" in key:
                return f"{path}: keys in [flattened] fields cannot contain the reserved character \\0"
            text = _as_text(node)
            if utf16_len(text) > ignore_above:
                continue
            if len(f"{key}\0{text}".encode()) > MAX_TERM_BYTES:
                return f"{path}: flattened field contains one immense field (key {key[:50]!r}, {len(text)} chars)"
    return None


def compose(index_template: dict[str, Any], components: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The mappings of an index created from a composable index template: its component templates in
    order, then its own; later properties override earlier ones, objects merge."""
    merged: dict[str, Any] = {}
    parts = [components[name]["template"].get("mappings", {}) for name in index_template["composed_of"]
             if name in components or name not in index_template.get("ignore_missing_component_templates", [])]
    parts.append(index_template.get("template", {}).get("mappings", {}))
    for part in parts:
        _merge(merged, part)
    return merged


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if key == "properties" and isinstance(into.get(key), dict):
            for name, sub in value.items():
                if name in into[key] and "properties" in into[key][name] and "properties" in sub:
                    _merge(into[key][name], sub)
                else:
                    into[key][name] = sub
        else:
            into[key] = value

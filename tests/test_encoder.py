"""shrink_line: the line fits, only the largest strings are cut, everything else stays."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper.output.encoder import MARKER, SUFFIX, shrink_line

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=40),
                      st.text(min_size=100, max_size=3000))
json_doc = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=6), st.dictionaries(st.text(min_size=1, max_size=12), inner, max_size=6)), max_leaves=40)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    out = {path: node}
    if isinstance(node, dict):
        for k, v in node.items():
            out.update(_paths(v, (*path, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.update(_paths(v, (*path, i)))
    return out


def test_one_big_string_is_cut_and_everything_else_stays() -> None:
    payload = {"id": "e1", "eventDate": "2026-01-15T00:00:00Z", "action": "Update",
               "propertyChanges": [{"property": "script", "newValues": ["x" * 70_000]}], "other": "y" * 500}
    record = {"siem_event_id": "e1", "siem_raw_payload": payload, "audit_tier": "standard"}
    line = msgspec.json.encode(record)
    assert len(line) > 65536
    out = shrink_line(line, 65536, frozenset({"siem_event_id", "audit_tier"}))
    assert 65536 - 100 < len(out) + 1 <= 65536  # cut by what is needed, not to a stub
    doc = msgspec.json.decode(out)
    assert doc[MARKER] == {"original_bytes": len(line), "cut": ["/siem_raw_payload/propertyChanges/0/newValues/0"]}
    kept = doc["siem_raw_payload"]
    assert kept["propertyChanges"][0]["newValues"][0].endswith(SUFFIX)
    assert {k: v for k, v in kept.items() if k != "propertyChanges"} == {
        k: v for k, v in payload.items() if k != "propertyChanges"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=st.dictionaries(st.text(min_size=1, max_size=12), json_doc, min_size=1, max_size=8),
       limit=st.integers(1024, 20_000))
def test_shrunk_lines_fit_and_keep_what_was_not_cut(doc: dict[str, Any], limit: int) -> None:
    doc.pop(MARKER, None)
    protect = frozenset(list(doc)[:1])
    line = msgspec.json.encode(doc)
    out = shrink_line(line, limit, protect)
    assert len(out) + 1 <= limit
    got = msgspec.json.decode(out)
    marker = got[MARKER]
    assert marker["original_bytes"] == len(line)
    if marker["cut"] == ["*"]:
        return  # only the protected keys fitted
    cut = {tuple(s.replace("~1", "/").replace("~0", "~") for s in p.split("/")[1:]) for p in marker["cut"]}
    original = _paths(doc)
    for path, value in _paths({k: v for k, v in got.items() if k != MARKER}).items():
        spelled = tuple(map(str, path))
        if any(spelled[:len(c)] == c for c in cut):
            continue
        if isinstance(value, (dict, list)):
            continue
        assert original.get(path) == value, f"{path} changed without being named as cut"
    for key in protect:
        assert got[key] == doc[key] or len(msgspec.json.encode(doc[key])) > limit // 2


def test_shrinking_is_deterministic() -> None:
    line = msgspec.json.encode({"a": "x" * 5000, "b": ["y" * 3000, {"c": "z" * 4000}]})
    assert shrink_line(line, 2048) == shrink_line(line, 2048)

"""The pipeline of one page and the ledger, as units: no process, no socket."""

from __future__ import annotations

from typing import Any

import msgspec

from shipper.config import config_from_mapping
from shipper.core.ledger import Ledger, id_hash
from shipper.core.pipeline import Pipeline
from shipper.schemas import SCHEMAS, SchemaSpec, register

UUIDS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(10)]


def _raw(i: int, ms: int = 0, **extra: Any) -> msgspec.Raw:
    doc = {"id": UUIDS[i], "eventDate": f"2026-01-15T00:00:00.{ms:03d}Z", "serviceName": "Directory",
           "entityType": "User", "action": "Update", **extra}
    return msgspec.Raw(msgspec.json.encode(doc))


def _pipeline(**sections: Any) -> Pipeline:
    return Pipeline(config_from_mapping(sections))


def _lines(data: bytearray) -> list[dict[str, Any]]:
    return [msgspec.json.decode(line) for line in bytes(data).splitlines()]


def test_repeats_inside_a_page_and_against_the_ledger_are_dropped() -> None:
    seen = {id_hash(UUIDS[0]): 0}
    out = _pipeline().process([_raw(0), _raw(1), _raw(1), _raw(2)], seen, 0, 0)
    assert [r["siem_event_id"] for r in _lines(out.data)] == [UUIDS[1], UUIDS[2]]
    assert out.duplicates == 2 and out.lines == 2
    assert set(out.new_ids) == {id_hash(UUIDS[1]), id_hash(UUIDS[2])}


def test_events_before_the_floor_are_dropped_as_repeats() -> None:
    base = 1_768_435_200_000  # 2026-01-15T00:00:00Z
    out = _pipeline().process([_raw(0, 5), _raw(1, 20)], {}, base + 10, 0)
    assert [r["siem_event_id"] for r in _lines(out.data)] == [UUIDS[1]]
    assert out.out_of_window == 1
    assert (out.first_ms, out.last_ms) == (base + 5, base + 20)


def test_bad_events_are_quarantined_once() -> None:
    bad = msgspec.Raw(b'{"id":"","eventDate":"garbage"}')
    pipeline = _pipeline()
    out = pipeline.process([bad, _raw(0)], {}, 0, 123)
    assert out.quarantined == [(bytes(bad), "empty id")]
    again = pipeline.process([bad], out.new_ids, 0, 123)
    assert again.quarantined == []


def test_filters_then_tier_from_the_whole_event_then_reduce() -> None:
    pipeline = _pipeline(
        filters={"exclude": [{"action": "View"}]},
        routing={"tiers": [{"tier": "high_value", "rules": [{"entity_type": "Role"}]}]},
        output={"reduce": [{"match": {"entity_type": "Role"}, "keep": ["id", "eventDate"]}]},
    )
    out = pipeline.process([_raw(0, entityType="Role"), _raw(1, action="View"), _raw(2)], {}, 0, 0)
    records = _lines(out.data)
    assert out.filtered == 1
    assert [r["audit_tier"] for r in records] == ["high_value", "standard"]
    assert records[0]["siem_raw_payload"] == {"id": UUIDS[0], "eventDate": "2026-01-15T00:00:00.000Z"}
    assert id_hash(UUIDS[1]) in out.new_ids  # a filtered event is remembered: a re-read skips it too


def test_a_line_too_long_is_shrunk_to_fit() -> None:
    out = _pipeline(output={"max_line_bytes": 2048}).process([_raw(0, context={"blob": "x" * 10_000})], {}, 0, 0)
    assert out.shrunk == 1 and len(bytes(out.data)) <= 2048
    assert _lines(out.data)[0]["siem_event_id"] == UUIDS[0]


def _picky(cfg: Any) -> Any:
    def mapper(event: Any, raw: Any, tier: str) -> Any:
        if event.id == UUIDS[0]:
            raise ValueError("cannot map this one")
        return {"id": event.id}

    return mapper


def test_a_record_that_cannot_be_mapped_is_quarantined_not_fatal() -> None:
    register(SchemaSpec(name="picky", build=_picky, summary="fails on one event"))
    try:
        out = _pipeline(output={"schema": "picky", "chain": "off"}).process([_raw(0), _raw(1)], {}, 0, 0)
    finally:
        del SCHEMAS["picky"]
    assert _lines(out.data) == [{"id": UUIDS[1]}]
    assert out.quarantined == [(bytes(_raw(0)), "cannot map: ValueError: cannot map this one")]


def test_ledger_prunes_by_time_and_keeps_the_boundary() -> None:
    ledger = Ledger(1000, 0)
    for page in ({1: 10}, {2: 500, 3: 500}, {4: 900}):  # one commit per page, as the engine does
        ledger.add(page)
    ledger.remember(1, 600)  # re-remembered later: the older entry must not evict it
    ledger.advance_recheck(500)
    assert set(ledger.seen) == {1, 2, 3, 4}  # ids at the recheck millisecond stay (bulk operations)
    ledger.advance_recheck(700)
    assert set(ledger.seen) == {4}
    ledger.advance(5000, late=False, track_recheck=True, final_before_ms=800)
    assert ledger.frontier == 5000 and ledger.recheck == 800 and set(ledger.seen) == {4}

"""Filters, tiers, reduced payloads, bounded line size and quarantine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.filters import (
    FiltersConfig,
    ReduceRule,
    Rule,
    TierRule,
    make_filter,
    make_reducer,
    make_tiering,
    reduce_payload,
)
from shipper.models import AuditEvent
from shipper.output.encoder import MARKER, shrink_line
from shipper.sources.base import server_side_query

from .conftest import assert_no_traceback, event_id, parse_lines, run_cli, write_config


def _ev(**kw: Any) -> AuditEvent:
    base = {"id": "1", "eventDate": "2026-01-01T00:00:00.000Z", "serviceName": "Directory", "entityType": "User",
            "action": "Update", "status": "SUCCESS", "level": "USER", "user": {"id": "u1"}}
    return msgspec.convert({**base, **kw}, AuditEvent)


def test_rule_needs_all_fields_and_exclude_wins() -> None:
    keep = make_filter(FiltersConfig(include=[Rule(service="Directory", action="Up*")],
                                     exclude=[Rule(user_id="u2")]))
    assert keep(_ev())
    assert not keep(_ev(action="Delete"))
    assert not keep(_ev(serviceName="Routing"))
    assert not keep(_ev(user={"id": "u2"}))


def test_no_rules_keeps_everything() -> None:
    assert make_filter(FiltersConfig())(_ev(serviceName=None))


def test_server_side_pushdown_only_exact_single_include() -> None:
    svc, flt = server_side_query(FiltersConfig(include=[Rule(service="Directory", action="Delete", level="USER")]))
    assert svc == "Directory" and flt == [{"property": "Action", "value": "Delete"}]
    assert server_side_query(FiltersConfig(include=[Rule(service="Dir*")])) == (None, [])
    assert server_side_query(FiltersConfig(include=[Rule(service="A"), Rule(service="B")])) == (None, [])
    # Every filter property of Genesys's AuditQueryFilter that a rule can name is pushed down.
    svc, flt = server_side_query(FiltersConfig(include=[Rule(client_id="c1", entity_id="e1", user_id="u1")]))
    assert svc is None and sorted(f["property"] for f in flt) == ["ClientId", "EntityId", "UserId"]


def test_client_and_entity_rules_match_client_side() -> None:
    keep = make_filter(FiltersConfig(include=[Rule(client_id="c1")], exclude=[Rule(entity_id="e9")]))
    assert keep(_ev(client={"id": "c1"}, entity={"id": "e1"}))
    assert not keep(_ev(client={"id": "c2"}))
    assert not keep(_ev(client={"id": "c1"}, entity={"id": "e9"}))


def test_tiers_first_match_then_default() -> None:
    tier_of = make_tiering([TierRule(tier="high_value", rules=[Rule(entity_type="Role"), Rule(entity_type="Trunk")]),
                            TierRule(tier="high_volume", rules=[Rule(action="View")])], "standard")
    assert tier_of(_ev(entityType="Role")) == "high_value"
    assert tier_of(_ev(action="View")) == "high_volume"
    assert tier_of(_ev()) == "standard"


def test_reduce_keeps_only_paths() -> None:
    doc = {"id": "1", "eventDate": "d", "action": "Login", "user": {"id": "u", "name": "n"}, "big": "x" * 100}
    assert reduce_payload(doc, ["id", "eventDate", "action", "user.id", "missing.path"]) == {
        "id": "1", "eventDate": "d", "action": "Login", "user": {"id": "u"}}
    keep_for = make_reducer([ReduceRule(match=Rule(service="Directory"), keep=["id"])])
    assert keep_for(_ev()) == ["id"] and keep_for(_ev(serviceName="Routing")) is None


PROTECT = frozenset({"siem_event_id"})


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=3000), st.lists(st.text(max_size=300),
       max_size=40), st.integers()), max_size=12), st.integers(min_value=1024, max_value=6000))
def test_shrink_always_fits_and_keeps_id(extra: dict[str, Any], limit: int) -> None:
    doc = {**extra, "siem_event_id": "ab12-cd34"}
    line = msgspec.json.encode(doc)
    out = shrink_line(line, limit, PROTECT) if len(line) + 1 > limit else line
    assert len(out) + 1 <= limit
    parsed = json.loads(out)
    assert parsed["siem_event_id"] == "ab12-cd34"
    if out is not line:
        assert parsed[MARKER]["original_bytes"] == len(line)


def test_shrink_bounds_even_huge_protected_fields() -> None:
    line = msgspec.json.encode({"siem_event_id": "i" * 9000, "siem_timestamp": "t" * 9000, "x": "y" * 100})
    out = shrink_line(line, 1024, frozenset({"siem_event_id", "siem_timestamp"}))
    assert len(out) + 1 <= 1024
    assert json.loads(out)["siem_event_id"].startswith("iii")


def test_shrink_is_deterministic() -> None:
    line = msgspec.json.encode({"siem_event_id": "x", "a": "é" * 5000, "b": ["y" * 900] * 9})
    assert shrink_line(line, 2048, PROTECT) == shrink_line(line, 2048, PROTECT)


def test_exclude_removes_exactly_those_events(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=1500)
    cfg = write_config(tmp_path, sim.url, filters={"exclude": [{"service": "Directory"}, {"action": "View"}]})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    got = sorted(event_id(r) for r in parse_lines(proc.stdout))
    want = sorted(e["id"] for e in sim.all_events() if e["serviceName"] != "Directory" and e["action"] != "View")
    assert got == want
    assert len(want) < 1500
    # Filtered events still move the checkpoint: nothing comes back on a rerun.
    assert run_cli("run", "--once", "--config", str(cfg)).stdout == b""


def test_max_line_bytes_bounds_every_line(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=1500, large_fraction=0.03, huge_events=3)
    cfg = write_config(tmp_path, sim.url, output={"max_line_bytes": 4096})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0
    lines = proc.stdout.split(b"\n")[:-1]
    assert max(len(line) + 1 for line in lines) <= 4096
    assert sorted(event_id(json.loads(line)) for line in lines) == sorted(e["id"] for e in sim.all_events())
    assert sum(MARKER.encode() in line for line in lines) >= 40


def test_tiers_and_reduce_end_to_end(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=600)
    cfg = write_config(
        tmp_path, sim.url,
        routing={"tiers": [{"tier": "high_value", "rules": [{"entity_type": "Role"}, {"entity_type": "OAuthClient"}]},
                           {"tier": "high_volume", "rules": [{"service": "Directory", "action": "View"}]}]},
        output={"reduce": [{"match": {"service": "Directory", "action": "View"},
                            "keep": ["id", "eventDate", "action", "user.id"]}]},
    )
    proc = run_cli("run", "--once", "--config", str(cfg))
    records = {r["siem_event_id"]: r for r in parse_lines(proc.stdout)}
    assert len(records) == 600
    for src in sim.all_events():
        rec = records[src["id"]]
        if src["entityType"] in ("Role", "OAuthClient"):
            assert rec["audit_tier"] == "high_value"
        elif src["serviceName"] == "Directory" and src["action"] == "View":
            assert rec["audit_tier"] == "high_volume"
            assert rec["siem_raw_payload"] == {"id": src["id"], "eventDate": src["eventDate"], "action": "View",
                                               "user": {"id": src["user"]["id"]}}
        else:
            assert rec["audit_tier"] == "standard"


def test_malformed_events_quarantined_and_run_continues(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=500, malformed=4)
    qfile = tmp_path / "quarantine.ndjson"
    prom = tmp_path / "m.prom"
    cfg = write_config(tmp_path, sim.url, output={"quarantine": str(qfile)},
                       metrics={"textfile": str(prom), "stats_interval": "0s"})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0
    assert_no_traceback(proc.stderr)
    assert len(parse_lines(proc.stdout)) == 496
    bad = [json.loads(line) for line in qfile.read_text().splitlines()]
    assert len(bad) == 4 and all("eventDate" in q["reason"] for q in bad)
    status = run_cli("status", "--config", str(cfg), "--json")
    assert json.loads(status.stdout)["quarantined"] == 4
    assert "genesys_audit_quarantined_total 4" in prom.read_text()


def test_pretty_printed_pages_are_compacted_before_events_are_embedded() -> None:
    from shipper.models import ResultsPage
    from shipper.net.http import compact_json

    pretty = b'{\n  "entities": [\n    {\n      "id": "p1",\n      "note": "a\\nb"\n    }\n  ]\n}'
    page = msgspec.json.decode(compact_json(pretty), type=ResultsPage)
    assert bytes(page.entities[0]) == b'{"id":"p1","note":"a\\nb"}'  # the escaped newline stays
    assert compact_json(b'{"a":1}') == b'{"a":1}'

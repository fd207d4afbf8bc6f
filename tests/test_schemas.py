"""Schema mappings: every simulator event through every schema, encoded, decoded and checked
against its source; minimal events; custom templates; arbitrary text never breaks the JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper.config import config_from_mapping
from shipper.errors import ConfigError
from shipper.models import decode_event, parse_event_time_ms
from shipper.schemas import (
    ADD,
    CLIENT,
    DELETE,
    GROUP,
    OTHER,
    PASSWORD,
    READ,
    TIER_FIELD,
    UPDATE,
    USER,
    action_verb,
    build_mapper,
    event_type,
    identity_kind,
)
from shipper.simulator import SERVICES, EventStore, SimConfig

SCHEMAS = ("siem", "ecs", "ocsf", "cim", "asim", "raw", "custom")
ID_TEMPLATE = {"id": "{{id}}", "when": "{{eventDate}}"}
IDENTITY_TYPES = {"User", "Group", "Role", "Grant", "OAuthClient"}
MINIMAL = b'{"id":"only-id","eventDate":"2026-01-15T00:00:00.000Z"}'

# Every (service, entityType, action) the simulator emits, with its OCSF (class_uid, activity_id).
OCSF_EXPECTED: dict[tuple[str, str, str], tuple[int, int]] = {
    ("Directory", "User", "Create"): (3001, 1), ("Directory", "User", "Update"): (3001, 99),
    ("Directory", "User", "Delete"): (3001, 6), ("Directory", "User", "View"): (6003, 2),
    ("Directory", "Group", "Create"): (3006, 6), ("Directory", "Group", "Update"): (3006, 99),
    ("Directory", "Group", "Delete"): (3006, 5),
    ("Authorization", "Role", "Create"): (3001, 1), ("Authorization", "Role", "Update"): (3001, 99),
    ("Authorization", "Role", "Delete"): (3001, 6),
    ("Authorization", "Grant", "Add"): (3001, 7), ("Authorization", "Grant", "Remove"): (3001, 8),
    ("OAuth", "OAuthClient", "Create"): (3001, 1), ("OAuth", "OAuthClient", "Update"): (3001, 99),
    ("OAuth", "OAuthClient", "Delete"): (3001, 6),
    ("Routing", "Queue", "Create"): (3004, 1), ("Routing", "Queue", "Update"): (3004, 3),
    ("Routing", "Queue", "Delete"): (3004, 4),
    ("Routing", "Skill", "Add"): (3004, 99), ("Routing", "Skill", "Remove"): (3004, 99),
    ("Architect", "Flow", "Publish"): (3004, 3), ("Architect", "Flow", "Update"): (3004, 3),
    ("Architect", "Flow", "Checkout"): (3004, 3), ("Architect", "Flow", "View"): (6003, 2),
    ("Telephony", "Trunk", "Update"): (3004, 3), ("Telephony", "Trunk", "Create"): (3004, 1),
    ("Quality", "Evaluation", "Create"): (3004, 1), ("Quality", "Evaluation", "View"): (6003, 2),
    ("Workforce Management", "Schedule", "Publish"): (3004, 3),
    ("Workforce Management", "Schedule", "Update"): (3004, 3),
}
# OCSF 1.1 activity enums of the classes in use.
OCSF_ACTIVITIES = {
    3001: {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 99},
    3004: {0, 1, 2, 3, 4, 99},
    3006: {0, 1, 2, 3, 4, 5, 6, 99},
    6003: {0, 1, 2, 3, 4, 99},
}
# ECS 8.11: the event.type values expected with each event.category in use.
ECS_TYPES = {
    "iam": {"admin", "change", "creation", "deletion", "group", "info", "user"},
    "configuration": {"access", "change", "creation", "deletion", "info"},
    "authentication": {"end", "info", "start"},
}
CIM_ACTIONS = {"acl_modified", "cleared", "created", "deleted", "modified", "read", "stopped", "updated"}
ASIM_EVENT_TYPES = {"Set", "Read", "Create", "Delete", "Execute", "Install", "Clear", "Enable", "Disable", "Other"}
ASIM_OBJECT_TYPES = {"Cloud Resource", "Configuration Atom", "Policy Rule", "Other"}

Mapped = Callable[[bytes, str], tuple[dict[str, Any], Any]]


def mapper_for(schema: str, template: dict[str, Any] | None = None) -> Mapped:
    """A function raw bytes -> (the record as JSON decoded back, the decoded source event)."""
    output: dict[str, Any] = {"schema": schema}
    if schema == "custom":
        output["template"] = template or ID_TEMPLATE
    mapper = build_mapper(config_from_mapping({"output": output}))

    def run(raw: bytes, tier: str = "standard") -> tuple[dict[str, Any], Any]:
        event, _ = decode_event(raw)
        line = msgspec.json.encode(mapper(event, msgspec.Raw(raw), tier))
        assert b"\n" not in line
        return json.loads(line), event

    return run


@pytest.fixture(scope="module")
def events() -> list[tuple[bytes, dict[str, Any]]]:
    """400 simulator events (bursts, large and huge ones included) as (raw bytes, original doc)."""
    store = EventStore(SimConfig(events=400, seed=11, base_time=1_768_435_200.0), 1_768_435_200.0)
    docs = [e.doc for e in store.events]
    assert {(d["serviceName"], d["entityType"], d["action"]) for d in docs} == set(OCSF_EXPECTED)
    assert {d["status"] for d in docs} == {"SUCCESS", "FAILURE", "WARNING"}
    return [(msgspec.json.encode(d), d) for d in docs]


def test_expectation_table_covers_the_simulator() -> None:
    flat = {(s, e, a) for s, ents in SERVICES.items() for e, acts in ents.items() for a in acts}
    assert flat == set(OCSF_EXPECTED)


# -- every schema --------------------------------------------------------------------------------
ID_OF: dict[str, Callable[[dict[str, Any]], Any]] = {
    "siem": lambda r: r["siem_event_id"],
    "ecs": lambda r: r["event"]["id"],
    "ocsf": lambda r: r["metadata"]["uid"],
    "cim": lambda r: r["id"],
    "asim": lambda r: r["EventOriginalUid"],
    "raw": lambda r: r["id"],
    "custom": lambda r: r["id"],
}


@pytest.mark.parametrize("schema", SCHEMAS)
def test_every_event_keeps_its_id_and_tier(schema: str, events: list[tuple[bytes, dict[str, Any]]]) -> None:
    run = mapper_for(schema)
    for raw, doc in events:
        record, _ = run(raw, "gold")
        assert ID_OF[schema](record) == doc["id"]
        if schema == "raw":
            assert record == doc and TIER_FIELD not in record
        else:
            assert record[TIER_FIELD] == "gold"


@pytest.mark.parametrize("schema", SCHEMAS)
def test_minimal_event_maps_in_every_schema(schema: str) -> None:
    run = mapper_for(schema, {"id": "{{id}}", "who": "{{user.name}}", "ips": "{{remoteIp}}", "t": "{{a}}-{{b.c}}"})
    record, _ = run(MINIMAL, "t1")
    assert ID_OF[schema](record) == "only-id"
    if schema == "custom":
        assert record == {"id": "only-id", "who": None, "ips": None, "t": "-", TIER_FIELD: "t1"}


def test_minimal_event_details() -> None:
    ecs, _ = mapper_for("ecs")(MINIMAL)
    assert ecs["event"]["outcome"] == "unknown" and ecs["@timestamp"] == "2026-01-15T00:00:00.000Z"
    assert "user" not in ecs and "source" not in ecs and ecs["ecs"]["version"] == "8.11.0"
    ocsf, _ = mapper_for("ocsf")(MINIMAL)
    assert (ocsf["class_uid"], ocsf["activity_id"], ocsf["type_uid"]) == (6003, 99, 600399)
    assert ocsf["status_id"] == 0 and ocsf["severity_id"] == 1
    assert ocsf["time"] == parse_event_time_ms("2026-01-15T00:00:00.000Z")
    assert ocsf["api"]["operation"] and ocsf["src_endpoint"] == {} and "actor" in ocsf
    cim, _ = mapper_for("cim")(MINIMAL)
    assert "status" not in cim and cim["action"] == "modified" and cim["genesys"] == json.loads(MINIMAL)
    asim, _ = mapper_for("asim")(MINIMAL)
    assert asim["EventResult"] == "NA" and asim["EventType"] == "Other" and asim["Object"] == ""


# -- ECS ----------------------------------------------------------------------------------------
def test_ecs(events: list[tuple[bytes, dict[str, Any]]]) -> None:
    run = mapper_for("ecs")
    outcomes = {"SUCCESS": "success", "FAILURE": "failure", "WARNING": "unknown"}
    for raw, doc in events:
        r, _ = run(raw)
        ev = r["event"]
        assert r["@timestamp"] == doc["eventDate"]
        assert ev["kind"] == "event" and ev["provider"] == "genesys-cloud" and ev["dataset"] == "genesys_cloud.audit"
        assert ev["outcome"] == outcomes[doc["status"]]
        assert ev["action"] == f"{doc['serviceName']}.{doc['entityType']}.{doc['action']}"
        (category,) = ev["category"]
        assert category == ("iam" if doc["entityType"] in IDENTITY_TYPES else "configuration")
        assert set(ev["type"]) <= ECS_TYPES[category]
        if doc["action"] == "Create":
            assert "creation" in ev["type"]
        if doc["action"] == "Delete":
            assert "deletion" in ev["type"]
        if doc["entityType"] == "User":
            assert "user" in ev["type"]
            assert r["user"]["target"] == {"id": doc["entity"]["id"], "name": doc["entity"]["name"]}
            assert doc["entity"]["id"] in r["related"]["user"]
        if doc["entityType"] == "Group":
            assert "group" in ev["type"] and r["group"]["id"] == doc["entity"]["id"]
        assert r["user"]["id"] == doc["user"]["id"] and r["user"]["name"] == doc["user"]["name"]
        assert r["source"]["ip"] == doc["remoteIp"][0] and r["related"]["ip"] == doc["remoteIp"]
        assert doc["user"]["id"] in r["related"]["user"]
        assert r["organization"]["id"] == doc["userHomeOrgId"]
        assert r["message"] == doc["message"]["message"]
        audit = r["genesys"]["audit"]
        for key in ("serviceName", "entityType", "entity", "level", "status", "message", "propertyChanges",
                    "context", "application", "initiatingAction", "transactionInitiator", "remoteIp"):
            assert audit[key] == doc[key], key
        assert audit["client"] == doc["client"]


def test_ecs_skips_malformed_ips() -> None:
    doc = json.loads(MINIMAL) | {"remoteIp": ["not-an-ip", "2001:db8::1", "10.0.0.1"]}
    r, _ = mapper_for("ecs")(json.dumps(doc).encode())
    assert r["source"]["ip"] == "2001:db8::1" and r["related"]["ip"] == ["2001:db8::1", "10.0.0.1"]
    assert r["genesys"]["audit"]["remoteIp"] == doc["remoteIp"]
    o, _ = mapper_for("ocsf")(json.dumps(doc).encode())
    assert o["src_endpoint"]["ip"] == "2001:db8::1" and o["unmapped"]["remoteIp"] == doc["remoteIp"]


# -- OCSF ---------------------------------------------------------------------------------------
def test_ocsf(events: list[tuple[bytes, dict[str, Any]]]) -> None:
    run = mapper_for("ocsf")
    statuses = {"SUCCESS": (1, "Success"), "FAILURE": (2, "Failure"), "WARNING": (99, "WARNING")}
    for raw, doc in events:
        r, _ = run(raw)
        cls, activity = r["class_uid"], r["activity_id"]
        assert (cls, activity) == OCSF_EXPECTED[(doc["serviceName"], doc["entityType"], doc["action"])]
        assert activity in OCSF_ACTIVITIES[cls]
        assert r["category_uid"] == cls // 1000 and r["type_uid"] == cls * 100 + activity
        assert r["type_name"] == f"{r['class_name']}: {r['activity_name']}"
        if activity == 99:
            assert r["activity_name"] == doc["action"]
        assert r["time"] == parse_event_time_ms(doc["eventDate"]) and isinstance(r["time"], int)
        assert (r["status_id"], r["status"]) == statuses[doc["status"]] and r["status_code"] == doc["status"]
        assert r["severity_id"] == {"SUCCESS": 1, "WARNING": 2, "FAILURE": 3}[doc["status"]]
        md = r["metadata"]
        assert md["version"] == "1.1.0" and md["uid"] == doc["id"] and md["original_time"] == doc["eventDate"]
        assert md["product"]["name"] == "Genesys Cloud" and md["product"]["vendor_name"] == "Genesys"
        assert md["correlation_uid"] == doc["initiatingAction"]["transactionId"]
        assert r["actor"]["user"]["uid"] == doc["user"]["id"] and r["actor"]["user"]["name"] == doc["user"]["name"]
        assert r["actor"]["user"]["org"]["uid"] == doc["userHomeOrgId"]
        assert r["src_endpoint"]["ip"] == doc["remoteIp"][0]
        assert r["api"]["operation"] == doc["action"] and r["api"]["service"]["name"] == doc["serviceName"]
        named = {"uid": doc["entity"]["id"], "name": doc["entity"]["name"], "type": doc["entityType"]}
        if cls == 3001:
            assert {k: r["user"][k] for k in ("uid", "name", "type")} == named
            assert r["user"]["type_id"] == (1 if doc["entityType"] == "User" else 99)
        elif cls == 3004:
            assert r["entity"] == named
        elif cls == 3006:
            assert r["group"] == named
        else:
            assert r["resources"] == [named]
        assert ("user" in r) == (cls == 3001) and ("entity" in r) == (cls == 3004)
        un = r["unmapped"]
        assert un["propertyChanges"] == doc["propertyChanges"] and un["context"] == doc["context"]
        assert un["message"] == doc["message"] and un["initiatingAction"] == doc["initiatingAction"]
        assert un["level"] == doc["level"] and un["client"] == doc["client"]


# -- CIM ----------------------------------------------------------------------------------------
def test_cim(events: list[tuple[bytes, dict[str, Any]]]) -> None:
    run = mapper_for("cim")
    actions = {"Create": "created", "Delete": "deleted", "View": "read"}
    for raw, doc in events:
        r, _ = run(raw)
        identity = doc["entityType"] in IDENTITY_TYPES
        assert r["_time"] == pytest.approx(parse_event_time_ms(doc["eventDate"]) / 1000, abs=1e-6)
        assert r["time"] == doc["eventDate"] and r["id"] == doc["id"]
        assert r["action"] in CIM_ACTIONS
        if doc["action"] in actions:
            assert r["action"] == actions[doc["action"]]
        elif doc["entityType"] in ("Grant", "Role") or (identity and doc["action"] in ("Add", "Remove")):
            assert r["action"] == "acl_modified"
        else:
            assert r["action"] == "modified"
        assert r["change_type"] == ("AAA" if identity else "configuration")
        assert r["object"] == doc["entity"]["name"] and r["object_id"] == doc["entity"]["id"]
        assert r["object_category"] == doc["entityType"]
        assert r["object_attrs"] == [c["property"] for c in doc["propertyChanges"]]
        assert r["src_user_id"] == doc["user"]["id"] and r["src_user_name"] == doc["user"]["name"]
        changed = doc["entity"] if doc["entityType"] == "User" else doc["user"]
        assert r["user_id"] == changed["id"] and r["user"] == changed["name"] == r["user_name"]
        assert r["src"] == doc["remoteIp"][0]
        assert r.get("status") == {"SUCCESS": "success", "FAILURE": "failure"}.get(doc["status"])
        assert r["result"] == doc["status"] and r["vendor_product"] == "Genesys Cloud" and r["dvc"]
        assert r["command"] == f"{doc['serviceName']}.{doc['entityType']}.{doc['action']}"
        assert r["genesys"] == doc


# -- ASIM ---------------------------------------------------------------------------------------
def test_asim(events: list[tuple[bytes, dict[str, Any]]]) -> None:
    run = mapper_for("asim")
    types = {"Create": "Create", "View": "Read", "Delete": "Delete", "Update": "Set", "Add": "Set", "Remove": "Set"}
    for raw, doc in events:
        r, _ = run(raw)
        assert r["EventCount"] == 1 and r["EventStartTime"] == r["EventEndTime"] == doc["eventDate"]
        assert r["EventType"] in ASIM_EVENT_TYPES
        if doc["action"] in types:
            assert r["EventType"] == types[doc["action"]]
        assert r["EventResult"] == {"SUCCESS": "Success", "FAILURE": "Failure", "WARNING": "Partial"}[doc["status"]]
        assert (r["EventProduct"], r["EventVendor"]) == ("Genesys Cloud", "Genesys")
        assert (r["EventSchema"], r["EventSchemaVersion"]) == ("AuditEvent", "0.1")
        assert r["EventOriginalUid"] == doc["id"] and r["Dvc"]
        assert r["Operation"] == f"{doc['serviceName']}.{doc['entityType']}.{doc['action']}"
        assert r["Object"] == doc["entity"]["name"] and r["ObjectType"] in ASIM_OBJECT_TYPES
        if doc["entityType"] in ("Role", "Grant"):
            assert r["ObjectType"] == "Policy Rule"
        elif doc["entityType"] in IDENTITY_TYPES:
            assert r["ObjectType"] == "Other"
        else:
            assert r["ObjectType"] == "Configuration Atom"
        first = doc["propertyChanges"][0]
        assert r["OldValue"] == first["oldValues"][0] and r["NewValue"] == first["newValues"][0]
        assert r["ActorUserId"] == doc["user"]["id"] and r["ActorUsername"] == doc["user"]["name"]
        assert r["SrcIpAddr"] == doc["remoteIp"][0] and r["EventMessage"] == doc["message"]["message"]
        assert r["AdditionalFields"] == doc


def test_asim_values_as_text() -> None:
    doc = json.loads(MINIMAL) | {"propertyChanges": [
        {"property": "p", "oldValues": [], "newValues": ["a", "b"]}, {"property": "q", "newValues": ["z"]}]}
    r, _ = mapper_for("asim")(json.dumps(doc).encode())
    assert "OldValue" not in r and r["NewValue"] == '["a","b"]' and r["ValueType"] == "Other"
    doc["propertyChanges"] = [{"property": "n", "oldValues": [3], "newValues": [True]}]
    r, _ = mapper_for("asim")(json.dumps(doc).encode())
    assert (r["OldValue"], r["NewValue"]) == ("3", "true")


# -- raw ----------------------------------------------------------------------------------------
def test_raw_is_byte_identical(events: list[tuple[bytes, dict[str, Any]]]) -> None:
    mapper = build_mapper(config_from_mapping({"output": {"schema": "raw"}}))
    for raw, _ in events:
        event, _ = decode_event(raw)
        assert msgspec.json.encode(mapper(event, msgspec.Raw(raw), "x")) == raw


# -- custom -------------------------------------------------------------------------------------
def test_custom_exact_path_keeps_type(events: list[tuple[bytes, dict[str, Any]]]) -> None:
    template = {
        "ips": "{{remoteIp}}", "flag": "{{ transactionInitiator }}", "ctx": "{{context}}", "who": "{{user}}",
        "new": "{{propertyChanges.0.newValues}}", "param": "{{message.messageParams.1}}", "ip": "{{remoteIp.0}}",
        "gone": "{{user.nope}}", "past_end": "{{remoteIp.9}}", "whole": "{{.}}", "ev": "{{event}}",
        "prefixed": "{{event.entity.id}}", "ms": "{{time_ms}}", "tier": "{{tier}}", "n": 5, "nil": None,
        "nested": {"list": [1, "{{level}}", {"k": "{{entity.name}}"}], "const": {"a": [True]}},
    }
    run = mapper_for("custom", template)
    for raw, doc in events[:50]:
        r, _ = run(raw, "gold")
        assert r["ips"] == doc["remoteIp"] and r["flag"] is True and r["ctx"] == doc["context"]
        assert r["who"] == doc["user"] and r["new"] == doc["propertyChanges"][0]["newValues"]
        assert r["param"] == doc["message"]["messageParams"]["1"] and r["ip"] == doc["remoteIp"][0]
        assert r["gone"] is None and r["past_end"] is None and r["whole"] == doc == r["ev"]
        assert r["prefixed"] == doc["entity"]["id"] and r["ms"] == parse_event_time_ms(doc["eventDate"])
        assert r["tier"] == "gold" == r[TIER_FIELD] and r["n"] == 5 and r["nil"] is None
        assert r["nested"] == {"list": [1, doc["level"], {"k": doc["entity"]["name"]}], "const": {"a": [True]}}


def test_custom_interpolation(events: list[tuple[bytes, dict[str, Any]]]) -> None:
    run = mapper_for("custom", {"text": "{{user.name}} did {{action}} ({{transactionInitiator}}) "
                                        "ips={{remoteIp}} x={{nope.none}}|{{tier}}", "audit_tier": "overridden"})
    for raw, doc in events[:50]:
        r, _ = run(raw, "gold")
        ips = json.dumps(doc["remoteIp"], separators=(",", ":"))
        assert r["text"] == f"{doc['user']['name']} did {doc['action']} (true) ips={ips} x=|gold"
        assert r[TIER_FIELD] == "gold"


def test_custom_guide_template_runs_as_is(events: list[tuple[bytes, dict[str, Any]]]) -> None:
    guide = {
        "siem_timestamp": "{{date}}", "siem_event_id": "{{id}}", "siem_actor_id": "{{actorId}}",
        "siem_actor_name": "{{actorName}}", "siem_event_type": "{{eventType}}", "siem_entity_id": "{{entityId}}",
        "siem_entity_type": "{{entityType}}", "siem_raw_payload": "{{data}}",
    }
    custom, siem = mapper_for("custom", guide), mapper_for("siem")
    for raw, _ in events[:50]:
        assert custom(raw, "t")[0] == siem(raw, "t")[0]


def test_custom_reads_scalars_without_reparsing() -> None:
    # Plain scalar paths come from the decoded event, so a huge original is never parsed twice.
    mapper = build_mapper(config_from_mapping({"output": {"schema": "custom", "template": {
        "id": "{{id}}", "who": "{{user.name}}", "what": "{{action}} {{entity.id}}"}}}))
    event, _ = decode_event(b'{"id":"i","eventDate":"2026-01-15T00:00:00Z","user":{"name":"n"},"action":"A"}')
    record = mapper(event, msgspec.Raw(b"not json at all"), "t")
    assert record == {"id": "i", "who": "n", "what": "A ", TIER_FIELD: "t"}


@pytest.mark.parametrize("bad", ["{{user.id", "x {{}} y", "{{a..b}}", "{{.a}}", "ok {{a}} {{ b"])
def test_custom_bad_template_is_a_config_error(bad: str) -> None:
    cfg = config_from_mapping({"output": {"schema": "custom", "template": {"k": {"deep": [bad]}}}})
    with pytest.raises(ConfigError, match=r"output\.template\.k\.deep\[0\]"):
        build_mapper(cfg)


# -- shared vocabulary --------------------------------------------------------------------------
@pytest.mark.parametrize("action,verb", [
    ("MemberAdd", ADD), ("ChangePassword", PASSWORD), ("View", READ), ("ReadAll", READ), ("SoftDelete", DELETE),
    ("Publish", UPDATE), ("DeleteEverything", DELETE), ("change password", PASSWORD), ("Frobnicate", OTHER),
    (None, OTHER), ("", OTHER),
])
def test_action_verbs(action: str | None, verb: str) -> None:
    assert action_verb(action) == verb


def test_identity_kinds() -> None:
    assert identity_kind("User") == USER and identity_kind("DirectoryGroup") == GROUP
    assert identity_kind("OAuthClient") == CLIENT and identity_kind("Queue") is None and identity_kind(None) is None


# -- arbitrary text -----------------------------------------------------------------------------
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_maybe = st.one_of(st.none(), _text)


@st.composite
def odd_events(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": draw(_text.filter(bool)), "eventDate": "2026-01-15T10:20:30.456Z"}
    for key in ("serviceName", "action", "entityType", "status", "level", "userHomeOrgId", "application"):
        value = draw(_maybe)
        if value is not None:
            doc[key] = value
    doc["user"] = {"id": draw(_maybe), "name": draw(_maybe)}
    doc["entity"] = {"id": draw(_maybe), "name": draw(_maybe)}
    doc["remoteIp"] = draw(st.lists(_text, max_size=3))
    doc["message"] = {"message": draw(_maybe), "messageParams": {"0": draw(_text)}}
    doc["context"] = draw(st.dictionaries(_text, _text, max_size=3))
    doc["propertyChanges"] = [{"property": draw(_maybe), "oldValues": [draw(_text)], "newValues": [draw(_text), 1]}]
    return doc


_ALL = {s: mapper_for(s, {"id": "{{id}}", "text": "{{user.name}}/{{entity.name}}/{{context}}"}) for s in SCHEMAS}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(odd_events())
def test_arbitrary_text_always_gives_valid_json(doc: dict[str, Any]) -> None:
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    for schema, run in _ALL.items():
        record, event = run(raw, "tier ✓")
        assert ID_OF[schema](record) == doc["id"], schema
        if schema != "raw":
            assert record[TIER_FIELD] == "tier ✓"
    assert _ALL["siem"](raw, "t")[0]["siem_event_type"] == event_type(event)

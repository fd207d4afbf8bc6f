"""SIEM-native content (configs/splunk, configs/sentinel, configs/elastic, configs/sigma), checked
against real records: a simulator's normal stream plus events built to trigger each detection,
shipped by the real CLI once per schema (siem, ecs, asim, cim) with the chain fields on.

- generated files (Sentinel table, DCR, ASIM parsers; Splunk props.conf) equal their generator;
- Sentinel: the DCR's stream columns are the emitted fields, with their types; table = stream;
  the transform and the parsers read only declared columns; analytics rules are well formed;
- Splunk: the .conf files parse, every field they read exists at search time in siem and cim
  records, and the CIM fields Splunk computes for a siem record equal the shipper's cim record;
- Elastic: every emitted document is accepted by the composed index template with no field left
  unmapped (tests/es_mapping.py, which rejects what Elasticsearch would: shown by breaking it);
  ILM, data stream and detection rules hang together;
- Sigma: pySigma parses and validates every rule; each fires on its triggers and on nothing else
  of the stream.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipper.content import cli as content_cli
from shipper.content import sentinel, splunk, vocab
from shipper.content.fields import ORG_FIELD, SHRINK_MARKER, STAMPED, json_kind
from shipper.proof.chain import CHAIN_FIELD, KEY_ID_FIELD, SEQ_FIELD, STREAM_FIELD
from shipper.schemas.common import action_verb, identity_kind
from shipper.simulator import SERVICES
from tests import delivery_harness as harness
from tests import es_mapping, sigma_eval
from tests import splunk_spl as spl
from tests.content_records import Corpus, make_corpus

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SPLUNK_APP = CONFIGS / "splunk" / "genesys_audit"
ELASTIC = CONFIGS / "elastic"
SIGMA = CONFIGS / "sigma"
CHAIN_FIELDS = {SEQ_FIELD, STREAM_FIELD, CHAIN_FIELD, KEY_ID_FIELD}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return make_corpus(tmp_path_factory.mktemp("content"))


# ---------------------------------------------------------------------------------------------
# Generated files and the tables they are rendered from


def test_generated_content_is_current() -> None:
    assert content_cli.stale(REPO) == [], "run `python -m shipper.content write` and commit"


def test_content_command_prints_and_checks(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "shipper.content", "sentinel-dcr"], capture_output=True, check=True)
    assert out.stdout.decode() == (CONFIGS / "sentinel" / "deploy.json").read_text()
    root = tmp_path / "repo"
    assert subprocess.run([sys.executable, "-m", "shipper.content", "write", "--root", str(root)],
                          capture_output=True).returncode == 0
    check = [sys.executable, "-m", "shipper.content", "check", "--root", str(root)]
    assert subprocess.run(check, capture_output=True).returncode == 0
    props = root / content_cli.ARTIFACTS["splunk-props"].path
    props.write_text(props.read_text().replace("KV_MODE = json", "KV_MODE = none"))
    stale = subprocess.run(check, capture_output=True, text=True)
    assert stale.returncode == 1 and "splunk/genesys_audit/default/props.conf" in stale.stderr


def test_rendered_tables_decide_as_the_shipper() -> None:
    """The verb and identity tables the KQL and SPL are rendered from give the shipper's answers."""
    actions = {a for _, names in vocab.verb_groups() for a in names}
    actions |= {a for ents in SERVICES.values() for acts in ents.values() for a in acts}
    actions |= {"RegenerateSecret", "Create Secret", "delete_all", "Add-Member", "Publish", "", "Zzz", "GetAll"}
    for action in actions:
        assert vocab.classify_action(action) == action_verb(action), action
    entities = {e for _, names in vocab.kind_groups() for e in names}
    entities |= {e for ents in SERVICES.values() for e in ents} | {"Directory User", "o_auth-client", "Queue", ""}
    for entity in entities:
        assert vocab.classify_entity(entity) == identity_kind(entity), entity


# ---------------------------------------------------------------------------------------------
# Sentinel


def _observed(records: list[dict[str, Any]]) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    for r in records:
        for k, v in r.items():
            kinds.setdefault(k, set()).add(json_kind(v))
    return kinds


def _fits(declared: str, seen: str, values: list[Any]) -> bool:
    if seen == "null":
        return True
    if declared == "datetime":
        return seen == "string" and all(isinstance(v, str) and datetime.fromisoformat(v.replace("Z", "+00:00"))
                                        for v in values)
    return {"long": {"int"}, "int": {"int"}, "real": {"real", "int"}}.get(declared, {declared}) >= {seen}


def dcr_problems(declared: dict[str, str], records: list[dict[str, Any]]) -> list[str]:
    """How a DCR stream's columns differ from the fields of these records and their values' types."""
    seen = _observed(records)
    seen.pop(SHRINK_MARKER, None)  # not a valid column name (leading underscore): see README, Sentinel
    not_yet = {ORG_FIELD} - seen.keys()  # multi-org deployments only
    problems = [f"{n}: emitted, not declared (dropped by the Logs Ingestion API)"
                for n in sorted(seen.keys() - declared.keys())]
    problems += [f"{n}: declared, never emitted" for n in sorted(declared.keys() - seen.keys() - not_yet)]
    for name, kinds in seen.items():
        values = [r[name] for r in records if name in r]
        problems += [f"{name}: declared {declared[name]}, emitted {kind}" for kind in kinds
                     if name in declared and not _fits(declared[name], kind, values)]
    return problems


def test_dcr_columns_are_the_emitted_fields_and_types(corpus: Corpus) -> None:
    """The stream declares exactly what asim and siem records carry (the Logs Ingestion API drops any
    undeclared column without a word), with types their values fit."""
    declared = {c["name"]: c["type"] for c in sentinel.stream_columns()}
    records = corpus.records["asim"] + corpus.records["siem"]
    assert any(SHRINK_MARKER in r for r in records), "shrunk records (huge events) must be in the stream"
    assert _observed(records).keys() >= CHAIN_FIELDS, "every chain field reaches Sentinel"
    assert dcr_problems(declared, records) == []
    for f in STAMPED:
        assert declared[f.name] == f.kind


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.pop(CHAIN_FIELD), "audit_chain: emitted, not declared"),
    (lambda d: d.update(audit_seq="string"), "audit_seq: declared string, emitted int"),
    (lambda d: d.update(EventCount="datetime"), "EventCount: declared datetime, emitted int"),
    (lambda d: d.update(siem_raw_payload="string"), "siem_raw_payload: declared string, emitted dynamic"),
    (lambda d: d.update(Extra="string"), "Extra: declared, never emitted"),
], ids=["missing column", "wrong type", "int as datetime", "object as string", "stray column"])
def test_dcr_check_can_fail(corpus: Corpus, change: Any, expected: str) -> None:
    declared = {c["name"]: c["type"] for c in sentinel.stream_columns()}
    change(declared)
    problems = dcr_problems(declared, corpus.records["asim"] + corpus.records["siem"])
    assert any(expected in p for p in problems), problems


def test_table_and_stream_declare_the_same_columns() -> None:
    deploy = json.loads((CONFIGS / "sentinel" / "deploy.json").read_text())
    (table,) = [r for r in deploy["resources"] if r["type"].endswith("/tables")]
    (dcr,) = [r for r in deploy["resources"] if r["type"] == "Microsoft.Insights/dataCollectionRules"]
    columns = table["properties"]["schema"]["columns"]
    stream = dcr["properties"]["streamDeclarations"][sentinel.STREAM]["columns"]
    assert [c["name"] for c in columns] == [c["name"] for c in stream]
    assert [c["type"].lower() for c in columns] == [c["type"] for c in stream]
    assert columns[0] == {"name": "TimeGenerated", "type": "dateTime", "description": columns[0]["description"]}
    assert table["properties"]["schema"]["name"] == sentinel.TABLE
    for c in columns:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,44}", c["name"]), f"not a valid column name: {c['name']}"
    names = {r["name"] for r in deploy["resources"]}
    flow = dcr["properties"]["dataFlows"][0]
    assert flow["streams"] == [sentinel.STREAM] and flow["outputStream"] == sentinel.STREAM
    assert flow["destinations"] == [d["name"] for d in dcr["properties"]["destinations"]["logAnalytics"]]
    assert all(any(n.split("'")[-2] in dep or n.strip("[]") in dep for n in names) for dep in dcr["dependsOn"])


KQL_WORDS = {
    "source", "extend", "where", "project", "away", "isnull", "iif", "not", "and", "or", "in", "startswith", "case",
    "coalesce", "tolower", "toupper", "tostring", "replace_regex", "toint", "iff", "isnotempty", "disabled", "has_any",
    "array_length", "has_any_ipv4_prefix", "datetime", "null", "dynamic", "true", "false", "between", "summarize",
}


def _kql_identifiers(query: str) -> set[str]:
    code = re.sub(r'@?"(?:[^"\\]|\\.)*"|@?\'[^\']*\'', '""', query)
    code = re.sub(r"\.\w+", "", code)  # member access: AdditionalFields.entity.name
    return {w for w in re.findall(r"(?<![\w-])([A-Za-z_]\w*)\b(?!\s*\()", code)} - KQL_WORDS


def test_transform_and_parsers_read_declared_columns() -> None:
    columns = {c["name"] for c in sentinel.stream_columns()}
    assert _kql_identifiers(sentinel.TRANSFORM) <= columns
    params = {n for n, _, _ in sentinel.VIM_PARAMS}
    for filtering in (False, True):
        query = sentinel.parser_query(filtering)
        made = set(re.findall(r"(?m)(?:extend|,)\s*\n?\s*(\w+)\s*=", query))
        unknown = _kql_identifiers(query) - columns - made - params - {sentinel.TABLE}
        assert unknown == set(), f"the parser reads columns the table does not have: {sorted(unknown)}"
        doc = yaml.safe_load((CONFIGS / "sentinel" / "parsers" / f"{sentinel.parser_yaml(filtering)['ParserName']}"
                                                                  ".yaml").read_text())
        assert doc["Normalization"] == {"Schema": "AuditEvent", "Version": "0.1"}


ASIM_OUTPUT = {"EventType", "EventResult", "Operation", "Object", "ObjectType", "ActorUserId", "ActorUsername",
               "SrcIpAddr", "EventOriginalUid", "TimeGenerated", "AdditionalFields", "EventSeverity", "NewValue"}


def _analytics() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, yaml.safe_load(p.read_text())) for p in sorted((CONFIGS / "sentinel" / "analytics").glob("*.yaml"))]


def test_sentinel_analytics_rules_are_well_formed() -> None:
    rules = _analytics()
    assert len(rules) >= 9
    ids = [str(uuid.UUID(doc["id"])) for _, doc in rules]
    assert len(set(ids)) == len(ids)
    tactics = {"InitialAccess", "Execution", "Persistence", "PrivilegeEscalation", "DefenseEvasion", "CredentialAccess",
               "Discovery", "LateralMovement", "Collection", "Exfiltration", "CommandAndControl", "Impact"}
    for path, doc in rules:
        for key in ("id", "name", "description", "severity", "requiredDataConnectors", "queryFrequency", "queryPeriod",
                    "triggerOperator", "triggerThreshold", "tactics", "relevantTechniques", "query", "version", "kind"):
            assert key in doc, (path.name, key)
        assert doc["kind"] == "Scheduled" and doc["severity"] in ("Informational", "Low", "Medium", "High")
        assert set(doc["tactics"]) <= tactics and all(re.fullmatch(r"T\d{4}", t) for t in doc["relevantTechniques"])
        assert all(re.fullmatch(r"\d+[mhd]", doc[k]) for k in ("queryFrequency", "queryPeriod"))
        assert doc["query"].lstrip().startswith((sentinel.ASIM_PARSER, sentinel.TABLE, "let ")), path.name
        for mapping in doc.get("entityMappings", []):
            for fm in mapping["fieldMappings"]:
                assert fm["columnName"] in ASIM_OUTPUT, (path.name, fm)
    gap = next(doc for _, doc in rules if "sequence gap" in doc["name"])
    assert {"audit_seq", "audit_stream"} <= set(re.findall(r"\w+", gap["query"]))


# ---------------------------------------------------------------------------------------------
# Splunk


def _conf(name: str) -> dict[str, dict[str, str]]:
    return spl.parse_conf((SPLUNK_APP / "default" / name).read_text())


PROPS_KEYS = {"SHOULD_LINEMERGE", "LINE_BREAKER", "TRUNCATE", "TIME_PREFIX", "TIME_FORMAT", "MAX_TIMESTAMP_LOOKAHEAD",
              "MAX_DAYS_AGO", "CHARSET", "KV_MODE", "AUTO_KV_JSON"}


def test_splunk_confs_parse_and_refer_to_each_other() -> None:
    for name in ("app.conf", "props.conf", "transforms.conf", "eventtypes.conf", "tags.conf", "savedsearches.conf"):
        assert _conf(name), name
    props = _conf("props.conf")
    assert list(props) == [splunk.SOURCETYPE]
    stanza = props[splunk.SOURCETYPE]
    assert stanza["KV_MODE"] == "json" and int(stanza["TRUNCATE"]) > 65536
    for key in stanza:
        assert key in PROPS_KEYS or re.fullmatch(r"(EVAL|FIELDALIAS)-\w+", key), key
    for node in spl.evals(stanza).values():
        assert spl.eval_functions(node) <= spl.FUNCTIONS
    eventtypes, tags = _conf("eventtypes.conf"), _conf("tags.conf")
    for stanza_name, tagset in tags.items():
        assert stanza_name.removeprefix("eventtype=") in eventtypes
        assert set(tagset.values()) == {"enabled"}
    assert {t for ts in tags.values() for t in ts} >= {"change", "account", "audit"}
    transforms = _conf("transforms.conf")
    for name, st in transforms.items():
        header = (SPLUNK_APP / "lookups" / st["filename"]).read_text().splitlines()[0].split(",")
        assert re.fullmatch(r"WILDCARD\((\w+)\)", st["match_type"]).group(1) in header, name
    for name, st in _conf("savedsearches.conf").items():
        if "search" not in st:
            continue
        used = spl.search_fields(st["search"])
        assert used.eventtypes <= eventtypes.keys(), name
        for table, column, outputs in used.lookups:
            header = (SPLUNK_APP / "lookups" / transforms[table]["filename"]).read_text().splitlines()[0].split(",")
            assert {column, *outputs} <= set(header), name
    assert "export = system" in (SPLUNK_APP / "metadata" / "default.meta").read_text()


@cache
def _props() -> spl.Props:
    return spl.Props(_conf("props.conf")[splunk.SOURCETYPE])


_FIELDS: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}


def _splunk_fields(record: dict[str, Any]) -> dict[str, Any]:
    """Search-time fields of a record (computed once per record object, which the cache keeps alive)."""
    hit = _FIELDS.get(id(record))
    if hit is None or hit[0] is not record:
        hit = _FIELDS[id(record)] = (record, _props().fields(record, json.dumps(record, ensure_ascii=False)))
    return hit[1]


CIM_FIELDS = ("action", "change_type", "command", "id", "object", "object_id", "object_category", "object_path",
              "object_attrs", "user", "user_id", "user_name", "src_user", "src_user_id", "src_user_name", "src",
              "status", "result", "vendor_product")


def cim_mismatches(corpus: Corpus, props: spl.Props | None = None) -> list[str]:
    """Events whose siem record gets other CIM fields in Splunk than their cim record."""
    cim = corpus.by_id("cim")
    out = []
    for record in corpus.records["siem"]:
        if props is None:
            got, want = _splunk_fields(record), _splunk_fields(cim[record["siem_event_id"]])
        else:
            got = props.fields(record, json.dumps(record, ensure_ascii=False))
            other = cim[record["siem_event_id"]]
            want = props.fields(other, json.dumps(other, ensure_ascii=False))
        out += [f"{record['siem_event_type']} {f}: {got.get(f)!r} != {want.get(f)!r}" for f in CIM_FIELDS
                if got.get(f) != want.get(f)]
    return out


def test_splunk_maps_siem_records_as_the_cim_schema_does(corpus: Corpus) -> None:
    """For every event, the CIM Change fields Splunk computes from the siem record (props.conf: KV_MODE
    json, FIELDALIAS, EVAL) equal those of the shipper's own cim record of it."""
    assert len(corpus.records["siem"]) == len(corpus.records["cim"])
    assert cim_mismatches(corpus) == []
    actions = {_splunk_fields(r).get("action") for r in corpus.records["siem"]}
    assert actions >= {"created", "deleted", "modified", "read", "acl_modified"}


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('"acl_modified"', '"modified"', "acl_modified"),
    ("ASNEW object_category", "ASNEW object_type", "object_category"),
    ('"SUCCESS", "success"', '"SUCCESS", "ok"', "status"),
    ("user, if(", "user, if(isnull(_raw) AND ", "user"),
], ids=["action", "alias", "status", "user"])
def test_splunk_cim_check_can_fail(corpus: Corpus, old: str, new: str, expected: str) -> None:
    text = (SPLUNK_APP / "default" / "props.conf").read_text()
    assert old in text
    props = spl.Props(spl.parse_conf(text.replace(old, new, 1))[splunk.SOURCETYPE])
    small = Corpus({k: v[:400] for k, v in corpus.records.items()}, corpus.triggers)
    assert any(expected in m for m in cim_mismatches(small, props))


def test_splunk_reads_only_fields_the_records_have(corpus: Corpus) -> None:
    """Every field an eventtype or a saved search reads exists at search time in siem records and in
    cim records (the two schemas the app serves)."""
    available = {}
    for schema in ("siem", "cim"):
        available[schema] = {k for r in corpus.records[schema] for k in _splunk_fields(r)}
    reads: dict[str, set[str]] = {}
    for name, st in _conf("eventtypes.conf").items():
        reads[f"eventtype {name}"] = {t[0] for t in spl.search_terms(st["search"]) if isinstance(t, tuple)} - \
            spl.TIME_MODIFIERS
    for name, st in _conf("savedsearches.conf").items():
        if "search" in st:
            reads[name] = spl.search_fields(st["search"]).reads
    for where, fields in reads.items():
        for schema, have in available.items():
            assert fields <= have, f"{where} reads {sorted(fields - have)}, which {schema} records lack"
    for f in (SEQ_FIELD, STREAM_FIELD, CHAIN_FIELD, KEY_ID_FIELD):
        assert all(f in have for have in available.values()), f"{f} is extracted in Splunk"


def test_splunk_eventtypes_and_tags(corpus: Corpus) -> None:
    eventtypes = {k: v["search"] for k, v in _conf("eventtypes.conf").items()}
    for schema in ("siem", "cim"):
        for record in corpus.records[schema]:
            fields = {**_splunk_fields(record), "sourcetype": splunk.SOURCETYPE}
            assert spl.matches(eventtypes["genesys_audit"], fields, eventtypes)
            account = spl.matches(eventtypes["genesys_audit_account_change"], fields, eventtypes)
            assert account == (fields.get("change_type") == "AAA")


def test_splunk_saved_searches_select_their_triggers(corpus: Corpus) -> None:
    """The base search of each detection matches the events built to trigger it, in both schemas."""
    eventtypes = {k: v["search"] for k, v in _conf("eventtypes.conf").items()}
    searches = {st["description"].split("(configs/sigma/")[1].split(".yml")[0]: st["search"]
                for st in _conf("savedsearches.conf").values() if "configs/sigma/" in st.get("description", "")}
    assert set(searches) == {r for r in corpus.triggers if r != "near_miss"}
    for rule, search in searches.items():
        base = spl.pipeline(search)[0]
        for schema in ("siem", "cim"):
            by_id = corpus.by_id(schema)
            for event_id in corpus.triggers[rule]:
                fields = {**_splunk_fields(by_id[event_id]), "sourcetype": splunk.SOURCETYPE}
                assert spl.matches(base, fields, eventtypes), (rule, schema)


# ---------------------------------------------------------------------------------------------
# Elastic


def _mappings() -> dict[str, Any]:
    template = json.loads((ELASTIC / "index-template.json").read_text())
    component = json.loads((ELASTIC / "component-template.json").read_text())
    return es_mapping.compose(template, {"logs-genesys_cloud.audit@package": component})


@pytest.mark.parametrize("schema", ["ecs", "siem"])
def test_elastic_mapping_accepts_every_document(corpus: Corpus, schema: str) -> None:
    """ecs (the Elastic templates) and siem (the all-in-one templates) documents are all accepted, and
    every field is mapped: nothing falls back to unindexed _source or a dynamic mapping."""
    checker = es_mapping.Checker(_mappings())
    indexed: set[str] = set()
    records = corpus.records[schema]
    assert any(SHRINK_MARKER in r for r in records) and any(KEY_ID_FIELD in r for r in records)
    for record in records:
        doc = dict(record)
        if schema == "siem":
            doc["@timestamp"] = doc["siem_timestamp"]  # what both agents add for a data stream
        result = checker.check(doc)
        assert result.accepted and not result.unindexed and not result.dynamic, (doc.get("siem_event_id"), result)
        indexed |= result.indexed
    chain = {"event.sequence"} if schema == "ecs" else {SEQ_FIELD}
    assert chain | {STREAM_FIELD, CHAIN_FIELD, KEY_ID_FIELD} <= indexed


def _record(corpus: Corpus) -> dict[str, Any]:
    return copy.deepcopy(next(r for r in corpus.records["ecs"] if "source" in r and "user" in r))


def _strict(mappings: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(mappings)
    out["dynamic"] = "strict"
    return out


def _no_ignore_above(mappings: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(mappings)
    out["properties"]["genesys"]["properties"]["audit"]["properties"]["propertyChanges"].pop("ignore_above")
    out["properties"]["user"]["properties"]["name"].pop("ignore_above")
    return out


def _deep(depth: int) -> Any:
    node: Any = "x"
    for _ in range(depth):
        node = {"d": node}
    return node


BREAKAGES = [  # (what a document or mapping gets wrong, change to the mapping, change to the doc, expected)
    ("object where a keyword is", None, lambda d: d["user"].update(name={"first": "Ada"}), "found an object"),
    ("non-date string for a date", None, lambda d: d.update({"@timestamp": "yesterday"}), "type [date]"),
    ("impossible date", None, lambda d: d.update({"@timestamp": "2026-02-30T25:61:00.000Z"}), "type [date]"),
    ("not an IP", None, lambda d: d["source"].update(ip="198.51.100.300"), "type [ip]"),
    ("text for a long", None, lambda d: d["event"].update(sequence="twelve"), "type [long]"),
    ("a scalar where an object is", None, lambda d: d.update(genesys="[truncated]"), "found a concrete value"),
    ("a string where a flattened object is", None,
     lambda d: d["genesys"]["audit"].update(propertyChanges="[truncated]"), "[flattened] expects an object"),
    ("unmapped field under dynamic: strict", _strict, lambda d: d.update(surprise=1), "dynamic introduction"),
    ("null for an unmapped field under strict", _strict, lambda d: d.update(surprise=None), "dynamic introduction"),
    ("immense keyword without ignore_above", _no_ignore_above, lambda d: d["user"].update(name="é" * 20000),
     "immense term"),
    ("immense flattened leaf without ignore_above", _no_ignore_above,
     lambda d: d["genesys"]["audit"].update(propertyChanges=[{"newValues": ["x" * 40000]}]), "immense field"),
    ("flattened deeper than its depth_limit", lambda m: _set_depth(m, 20),
     lambda d: d["genesys"]["audit"].update(propertyChanges=[{"newValues": [_deep(30)]}]), "maximum depth limit"),
    ("constant_keyword with another value", None, lambda d: d.update(data_stream={"type": "metrics"}),
     "constant_keyword"),
    ("empty field name", None, lambda d: d.update({"": 1}), "empty string"),
]


def _set_depth(mappings: dict[str, Any], depth: int) -> dict[str, Any]:
    out = copy.deepcopy(mappings)
    out["properties"]["genesys"]["properties"]["audit"]["properties"]["propertyChanges"]["depth_limit"] = depth
    return out


@pytest.mark.parametrize(("what", "remap", "change", "expected"), BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_elastic_checker_rejects_what_elasticsearch_would(corpus: Corpus, what: str, remap: Any, change: Any,
                                                          expected: str) -> None:
    mappings = _mappings()
    doc = _record(corpus)
    assert es_mapping.Checker(remap(mappings) if remap else mappings).check(doc).accepted
    change(doc)
    result = es_mapping.Checker(remap(mappings) if remap else mappings).check(doc)
    assert any(expected in r for r in result.rejected), result.rejected


def test_elastic_checker_reports_unindexed_and_dynamic_fields(corpus: Corpus) -> None:
    mappings = _mappings()
    doc = _record(corpus)
    doc["surprise"] = {"a": 1}
    assert es_mapping.Checker(mappings).check(doc).unindexed == ["surprise"]
    loose = copy.deepcopy(mappings)
    loose["dynamic"] = True
    assert es_mapping.Checker(loose).check(doc).dynamic == ["surprise"]


def test_elastic_mapping_holds_deep_and_long_values(corpus: Corpus) -> None:
    """What the shipper can pass (it decodes ~990 levels and cuts strings to output.max_line_bytes)."""
    doc = _record(corpus)
    doc["genesys"]["audit"]["propertyChanges"] = [{"property": "flow", "newValues": [_deep(150), "y" * 60000]}]
    doc["message"] = "z" * 60000
    assert es_mapping.Checker(_mappings()).check(doc).accepted


def test_elastic_templates_hang_together() -> None:
    template = json.loads((ELASTIC / "index-template.json").read_text())
    component = json.loads((ELASTIC / "component-template.json").read_text())
    ilm = json.loads((ELASTIC / "ilm-policy.json").read_text())
    assert template["priority"] > 100, "above the built-in logs-*-* template (priority 100)"
    assert "data_stream" in template and template["composed_of"][0] == "logs-genesys_cloud.audit@package"
    assert component["template"]["settings"]["index"]["lifecycle"]["name"] == "logs-genesys_cloud.audit"
    assert ilm["policy"]["phases"]["hot"]["actions"]["rollover"]
    assert "delete" in ilm["policy"]["phases"]
    mappings = _mappings()
    assert mappings["dynamic"] is False
    props = mappings["properties"]
    assert props["@timestamp"]["type"] == "date" and props["event"]["properties"]["sequence"]["type"] == "long"
    assert props[SEQ_FIELD]["type"] == "long"
    assert {props[f]["type"] for f in (STREAM_FIELD, CHAIN_FIELD, KEY_ID_FIELD, ORG_FIELD)} == {"keyword"}
    assert props["organization"]["properties"]["name"]["type"] == "keyword"  # multi-org: organization.name
    assert props["message"]["type"] == "match_only_text" and props["event"]["properties"]["action"]["type"] == "keyword"


def _rules() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, tomllib.loads(p.read_text())) for p in sorted((ELASTIC / "rules").glob("*.toml"))]


def _mapped_type(mappings: dict[str, Any], path: str) -> str | None:
    node: Any = mappings
    parts = path.split(".")
    for i, part in enumerate(parts):
        props = node.get("properties", {})
        if part not in props:
            fields = node.get("fields", {})
            return fields[part]["type"] if part in fields and i == len(parts) - 1 else None
        node = props[part]
        if node.get("type") == "flattened":
            return "flattened"
    return node.get("type", "object")


def test_elastic_detection_rules(corpus: Corpus) -> None:
    rules = _rules()
    assert len(rules) >= 9
    mappings = _mappings()
    ids = [str(uuid.UUID(doc["rule"]["rule_id"])) for _, doc in rules]
    assert len(set(ids)) == len(ids)
    for path, doc in rules:
        rule = doc["rule"]
        for key in ("author", "description", "name", "risk_score", "rule_id", "severity", "type", "query", "language"):
            assert key in rule, (path.name, key)
        assert {"creation_date", "maturity", "updated_date"} <= doc["metadata"].keys()
        if rule["type"] == "esql":
            assert re.match(r"\s*FROM logs-genesys_cloud\.audit-\*", rule["query"])
            fields = set(re.findall(r"\b(event\.sequence|audit_seq|audit_stream)\b", rule["query"]))
            assert fields == {"event.sequence", SEQ_FIELD, STREAM_FIELD}
            continue
        assert rule["language"] == "kuery" and any(
            re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), harness.ES_INDEX) for p in rule["index"])
        for f in re.findall(r"([\w.@]+)\s*:", rule["query"]):
            assert _mapped_type(mappings, f) not in (None, "object"), (path.name, f)
        for f in rule.get("threshold", {}).get("field", []) + rule.get("new_terms", {}).get("value", []):
            assert _mapped_type(mappings, f) in ("keyword", "ip"), (path.name, f)
        for threat in rule.get("threat", []):
            assert re.fullmatch(r"TA\d{4}", threat["tactic"]["id"])


# ---------------------------------------------------------------------------------------------
# Sigma


def _sigma() -> Any:
    return sigma_eval.load(str(p) for p in sorted(SIGMA.glob("*.yml")))


# The issue's risky actions, each with its rule.
RISKY = {
    "OAuth client created or its secret regenerated": "genesys_cloud_oauth_client_created_or_secret_regenerated",
    "a role granted with admin permissions": "genesys_cloud_admin_role_granted",
    "a user deleted in bulk": "genesys_cloud_users_deleted_in_bulk",
    "recording or policy deletion": "genesys_cloud_recording_or_policy_deleted",
    "SSO or authorization settings changed": "genesys_cloud_sso_or_authorization_settings_changed",
    "an integration's credentials changed": "genesys_cloud_integration_credentials_changed",
    "audit or export of recordings": "genesys_cloud_recordings_exported",
    "activity from a new IP for an admin": "genesys_cloud_admin_new_source_ip",
}
NETWORK_VALIDATORS = {"attacktag", "d3_fendtag"}  # pySigma 2 downloads ATT&CK / D3FEND data for these


def test_sigma_rules_parse_and_validate() -> None:
    from sigma.validation import SigmaValidator
    from sigma.validators.core import validators

    collection = _sigma()
    rules = collection.rules
    assert len(rules) == len(list(SIGMA.glob("*.yml")))
    assert all(not r.errors for r in rules)
    issues = SigmaValidator([v for k, v in validators.items() if k not in NETWORK_VALIDATORS]).validate_rules(
        iter(rules))
    assert issues == [], [(type(i).__name__, [r.title for r in i.rules]) for i in issues]
    for r in rules:
        if isinstance(r, sigma_eval.SigmaRule):
            assert (r.logsource.product, r.logsource.service) == ("genesys_cloud", "audit")
        assert all(re.fullmatch(r"attack\.(t\d{4}(\.\d{3})?|[a-z-]+)", str(t)) for t in r.tags), r.title
    stems = {Path(str(r.source.path)).stem for r in rules if r.source is not None}
    assert set(RISKY.values()) <= stems


def test_sigma_rules_read_fields_the_records_have(corpus: Corpus) -> None:
    from sigma.conditions import ConditionFieldEqualsValueExpression

    records = corpus.records["siem"]
    for rule in _sigma().rules:
        if not isinstance(rule, sigma_eval.SigmaRule):
            for f in [*rule.group_by, rule.condition.fieldref]:
                assert f is None or any(sigma_eval.values_at(r, f) for r in records), (rule.title, f)
            continue
        stack = [c.parse() for c in rule.detection.parsed_condition]
        while stack:
            node = stack.pop()
            if isinstance(node, ConditionFieldEqualsValueExpression):
                assert any(sigma_eval.values_at(r, node.field) for r in records), (rule.title, node.field)
            stack.extend(getattr(node, "args", []))


def firing_problems(collection: Any, corpus: Corpus) -> list[str]:
    """How the risky-action rules miss their triggers or fire on anything else of the stream."""
    by_stem = {Path(str(r.source.path)).stem: r for r in collection.rules if r.source is not None}
    named = {r.name: r for r in collection.rules if isinstance(r, sigma_eval.SigmaRule) and r.name}
    records = corpus.records["siem"]
    problems = []
    for stem in RISKY.values():
        rule = by_stem[stem]
        if isinstance(rule, sigma_eval.SigmaRule):
            hits = {r["siem_event_id"] for r in records if sigma_eval.rule_matches(rule, r)}
            expected = set(corpus.triggers[stem])
            if stem == RISKY["OAuth client created or its secret regenerated"]:
                # The normal stream creates OAuth clients: those are what the rule is for, too.
                expected |= {r["siem_event_id"] for r in records if r["siem_event_type"] == "OAuth.OAuthClient.Create"
                             and r["siem_event_id"] in corpus.baseline_ids}
            problems += [f"{stem}: misses trigger {i}" for i in sorted(expected - hits)]
            problems += [f"{stem}: fires on {i}, not built to trigger it" for i in sorted(hits - expected)]
        else:
            groups = sigma_eval.correlation_groups(rule, named, records, "siem_timestamp")
            if groups != {(str([corpus.actors[stem]]),)}:
                problems.append(f"{stem}: fires for {sorted(groups)}, expected only {corpus.actors[stem]}")
            without = [r for r in records if r["siem_event_id"] not in corpus.triggers[stem]]
            if sigma_eval.correlation_groups(rule, named, without, "siem_timestamp"):
                problems.append(f"{stem}: fires without its triggers")
    return problems


def test_sigma_rules_fire_on_their_triggers_and_nothing_else(corpus: Corpus) -> None:
    assert len(corpus.triggers[RISKY["OAuth client created or its secret regenerated"]]) == 2
    assert firing_problems(_sigma(), corpus) == []


@pytest.mark.parametrize(("stem", "old", "new", "expected"), [
    ("genesys_cloud_oauth_client_created_or_secret_regenerated", "    siem_raw_payload.action: Create\n", "",
     "fires on"),
    ("genesys_cloud_recordings_exported", "      - Download\n", "", "misses trigger"),
    ("genesys_cloud_users_deleted_in_bulk", "gte: 10", "gte: 2", "fires without its triggers"),
    ("genesys_cloud_admin_new_source_ip", "gte: 2", "gte: 1", "expected only"),
], ids=["too broad", "too narrow", "threshold too low", "value count of one"])
def test_sigma_firing_check_can_fail(corpus: Corpus, tmp_path: Path, stem: str, old: str, new: str,
                                     expected: str) -> None:
    for path in SIGMA.glob("*.yml"):
        text = path.read_text()
        if path.stem == stem:
            assert old in text
            text = text.replace(old, new, 1)
        (tmp_path / path.name).write_text(text)
    problems = firing_problems(sigma_eval.load(str(p) for p in sorted(tmp_path.glob("*.yml"))), corpus)
    assert any(p.startswith(stem) and expected in p for p in problems), problems


def test_sigma_bulk_deletion_threshold_is_ten(corpus: Corpus) -> None:
    """Nine deletions by one actor (a near miss built into the stream) do not fire; ten do."""
    collection = _sigma()
    named = {r.name: r for r in collection.rules if isinstance(r, sigma_eval.SigmaRule) and r.name}
    (bulk,) = [r for r in collection.rules if isinstance(r, sigma_eval.SigmaCorrelationRule)
               and r.rules[0].reference == "genesys_cloud_user_deleted"]
    near = [r for r in corpus.records["siem"] if r["siem_event_id"] in corpus.triggers["near_miss"]]
    assert len(near) == 9 and sigma_eval.correlation_groups(bulk, named, near, "siem_timestamp") == set()
    tenth = dict(near[0], siem_event_id="tenth", siem_timestamp=near[-1]["siem_timestamp"])
    assert sigma_eval.correlation_groups(bulk, named, [*near, tenth], "siem_timestamp") != set()


# ---------------------------------------------------------------------------------------------
# The multi-org field (coming): declared everywhere, and typed as declared wherever it shows up


def test_org_field_is_declared_everywhere(corpus: Corpus) -> None:
    declared = {c["name"]: c["type"] for c in sentinel.stream_columns()}
    assert declared[ORG_FIELD] == "string"
    props = _mappings()["properties"]
    assert props[ORG_FIELD]["type"] == "keyword" and "name" in props["organization"]["properties"]
    for schema in ("siem", "asim", "cim"):
        for r in corpus.records[schema]:
            assert isinstance(r.get(ORG_FIELD, ""), str)
    for r in corpus.records["ecs"]:
        assert isinstance(r.get("organization", {}).get("name", ""), str)

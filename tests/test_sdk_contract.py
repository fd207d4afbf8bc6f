"""The official Genesys SDK (PureCloudPlatformClientV2, generated from the real API's swagger) as
the referee of the API contract.

1. The SDK's own AuditApi and client-credentials login talk to the simulator over loopback, for
   every endpoint the shipper uses. Every answer decodes into the SDK's model; its raw JSON has no
   key the model lacks and lacks none the model has (recursively through nested models), except
   the few listed in MAY_OMIT with the reason.
2. The shipper's own structs (read with msgspec.structs.fields, so renamed or added fields are
   seen) agree field by field with the SDK models, and the request bodies the real CLI sends agree
   with the SDK's request models and their allowed values. Every difference is in an allowlist
   below with a one-line reason; anything new fails with a message that says what to do.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import re
import tempfile
import time
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import urllib3

from shipper import models
from shipper.simulator import SimConfig, Simulator
from shipper.simulator.codec import iso

from .conftest import assert_no_traceback, run_cli, write_config


def _import_sdk() -> types.ModuleType:
    """Import the SDK with HOME at a config that turns its live config reload off: otherwise the
    import starts a watchdog thread that watches the real home directory, recursively."""
    home = tempfile.mkdtemp(prefix="genesys-sdk-home-")
    os.makedirs(os.path.join(home, ".genesyscloudpython"))
    with open(os.path.join(home, ".genesyscloudpython", "config"), "w") as f:
        f.write("[general]\nlive_reload_config = false\n")
    old = os.environ.get("HOME")
    os.environ["HOME"] = home
    try:
        return importlib.import_module("PureCloudPlatformClientV2")
    finally:
        if old is None:
            del os.environ["HOME"]
        else:
            os.environ["HOME"] = old


sdk = _import_sdk()
SHIPPER = Path(models.__file__).parent
OUTDATED = "outdated_sdk_version"  # what an SDK model setter stores for a value outside allowed_values

# Keys an answer may lack although the SDK model has them: "Model.jsonKey" -> why.
MAY_OMIT = {
    "AuditQueryExecutionResultsResponse.cursor": "the last page has no cursor",
    "AuditQueryExecutionLargeResultsResponse.cursor": "the last page has no cursor",
}
NOT_EXPANDED = {"DomainEntityRef.name": "user names come only with expand=user (and never in a download)"}


# -- reading the SDK's models ------------------------------------------------------------------
def model_cls(name: str) -> type:
    return getattr(sdk.models, name)  # type: ignore[no-any-return]


def json_fields(name: str) -> dict[str, str]:
    """JSON key -> swagger type ('str', 'list[PropertyChange]', 'dict(str, str)', 'DomainEntityRef')."""
    inst = model_cls(name)()
    return {inst.attribute_map[attr]: kind for attr, kind in inst.swagger_types.items()}


def nested(kind: str) -> tuple[str, str] | None:
    """('one'|'list'|'dict', ModelName) when a swagger type holds an SDK model, else None."""
    m = re.fullmatch(r"list\[(\w+)\]|dict\(str, (\w+)\)|(\w+)", kind)
    if not m:
        return None
    wrap, name = ("list", m[1]) if m[1] else ("dict", m[2]) if m[2] else ("one", m[3])
    return (wrap, name) if hasattr(sdk.models, name) else None


def allowed_values(model: str, json_key: str) -> list[str]:
    """The allowed_values list in the setter of a model's field (it must have one)."""
    inst = model_cls(model)()
    attr = {v: k for k, v in inst.attribute_map.items()}[json_key]
    m = re.search(r"allowed_values = (\[.*?\])", inspect.getsource(getattr(type(inst), attr).fset))
    assert m, f"the SDK's {model}.{json_key} no longer lists allowed values"
    values: list[str] = json.loads(m[1])
    return values


def key_problems(raw: Any, model: str, path: str, may_omit: dict[str, str]) -> list[str]:
    """Keys of a raw JSON answer the model does not know, and model keys the answer lacks
    (unless may_omit lists them), recursively through nested models."""
    if not isinstance(raw, dict):
        return [f"{path}: {type(raw).__name__} where {model} is an object"]
    fields = json_fields(model)
    problems = [f"{path}.{k}: the SDK's {model} has no such field" for k in sorted(raw.keys() - fields.keys())]
    problems += [f"{path}.{k}: the SDK's {model} has it, the answer lacks it" for k in sorted(fields.keys() - raw.keys())
                 if f"{model}.{k}" not in may_omit]
    for key, kind in fields.items():
        sub = nested(kind)
        if sub is None or raw.get(key) is None:
            continue
        wrap, name = sub
        value = raw[key]
        items = value.items() if wrap == "dict" else enumerate(value) if wrap == "list" else [("", value)]
        for i, item in items:
            problems += key_problems(item, name, f"{path}.{key}{f'[{i}]' if wrap != 'one' else ''}", may_omit)
    return problems


def outdated(obj: Any, path: str = "") -> list[str]:
    """Fields the SDK decoded as 'outdated_sdk_version': a value outside the model's allowed_values."""
    if isinstance(obj, list):
        return [p for i, item in enumerate(obj) for p in outdated(item, f"{path}[{i}]")]
    if not hasattr(obj, "swagger_types"):
        return [path] if obj == OUTDATED else []
    return [p for attr in obj.swagger_types for p in outdated(getattr(obj, attr), f"{path}.{attr}")]


def referee(raw: Any, model: str, decoded: Any, may_omit: dict[str, str] | None = None) -> None:
    problems = key_problems(raw, model, model, {**MAY_OMIT, **(may_omit or {})})
    problems += [f"{p}: not an allowed value" for p in outdated(decoded, model)]
    assert not problems, "the simulator disagrees with the SDK:\n  " + "\n  ".join(problems[:30])


# -- the SDK against the simulator ---------------------------------------------------------------
class Recorder:
    """The SDK's http-client post_hook: keeps every raw answer the SDK decoded."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def __call__(self, response: Any) -> Any:
        self.bodies.append(response.data)
        return response

    def last(self) -> Any:
        return json.loads(self.bodies[-1])


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimConfig(events=400, span=4 * 3600, newest_age=60, query_delay=0.0, large_fraction=0.05,
                                    huge_events=0, max_page_bytes=60_000)).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def client(sim: Simulator) -> tuple[Any, Any, Recorder]:
    """(ApiClient, AuditApi, Recorder): the SDK logged in at the simulator through its own
    client-credentials helper (its login host is derived from the API host: here the same one)."""
    api = sdk.ApiClient(host=sim.url)
    recorder = Recorder()
    api.get_http_client().post_hook = recorder
    api.get_client_credentials_token(sim.cfg.client_id, sim.cfg.client_secret)
    return api, sdk.AuditApi(api), recorder


def interval(hours: float = 5) -> str:
    now = time.time()
    return f"{iso(int((now - hours * 3600) * 1000))}/{iso(int(now * 1000))}"


def query_request(model: str, **extra: Any) -> Any:
    body = model_cls(model)()
    body.interval = interval()
    body.service_name = "Directory"
    flt = sdk.AuditQueryFilter()
    flt.pcProperty, flt.value = "EntityType", "User"
    body.filters = [flt]
    sort = sdk.AuditQuerySort()
    sort.name, sort.sort_order = "Timestamp", "ascending"
    body.sort = [sort]
    for k, v in extra.items():
        setattr(body, k, v)
    return body


def directory_users(sim: Simulator) -> list[str]:
    return [e["id"] for e in sim.all_events() if e["serviceName"] == "Directory" and e["entityType"] == "User"]


def test_token_through_the_sdks_client_credentials_login(sim: Simulator, client: tuple[Any, Any, Recorder]) -> None:
    api, _, recorder = client
    assert api.access_token and api.access_token in sim.tokens
    login = [r for r in sim.org().request_log if r.path == "/oauth/token"][-1]
    assert login.method == "POST" and b"client_secret" not in login.body, "the SDK sends Basic auth, not form fields"
    # The SDK reads these keys of the token answer; the simulator must send them.
    read = set(re.findall(r'data\[0\]\["(\w+)"\]', inspect.getsource(sdk.ApiClient.get_client_credentials_token)))
    assert read == {"access_token"}, f"the SDK now reads {read} of the token answer: check TokenResponse"
    assert read <= recorder.last().keys()


def test_async_query_submit_status_and_every_results_page(sim: Simulator, client: tuple[Any, Any, Recorder]) -> None:
    _, audit, recorder = client
    submitted = audit.post_audits_query(query_request("AuditQueryRequest"))
    referee(recorder.last(), "AuditQueryExecutionStatusResponse", submitted)
    assert submitted.state in ("Queued", "Running", "Succeeded")
    status = audit.get_audits_query_transaction_id(submitted.id)
    referee(recorder.last(), "AuditQueryExecutionStatusResponse", status)
    assert (status.id, status.state, status.service_name) == (submitted.id, "Succeeded", "Directory")
    ids: list[str] = []
    cursor = None
    for _ in range(50):
        kw: dict[str, str] = {"cursor": cursor} if cursor else {}
        page = audit.get_audits_query_transaction_id_results(submitted.id, page_size=7, expand=["user"],
                                                             allow_redirect=False, **kw)
        referee(recorder.last(), "AuditQueryExecutionResultsResponse", page)
        assert page.id == submitted.id and page.page_size == 7
        assert all(e.user.name and e.event_date.tzinfo for e in page.entities)
        ids += [e.id for e in page.entities]
        cursor = page.cursor
        if not cursor:
            break
    assert ids == directory_users(sim) and len(ids) > 7
    sent = [r.query for r in sim.org().request_log if r.path.endswith("/results")]
    assert sent[0] == {"pageSize": ["7"], "expand": ["user"], "allowRedirect": ["false"]}
    assert sent[1]["cursor"] == ["7"]


def test_results_allow_redirect_302_and_download(sim: Simulator, client: tuple[Any, Any, Recorder]) -> None:
    """The SDK has no method for a 302 (it follows it and decodes the array as an empty results
    object), so this reads the 302 with redirects off and holds it to AuditQueryExecutionLargeResultsResponse."""
    api, audit, _ = client
    txn = audit.post_audits_query(query_request("AuditQueryRequest", service_name=None, filters=None)).id
    api.get_http_client().rest_client.pool_manager = urllib3.PoolManager(retries=urllib3.Retry(redirect=False))
    with pytest.raises(sdk.rest.ApiException) as caught:
        audit.get_audits_query_transaction_id_results(txn, page_size=200, expand=["user"], allow_redirect=True)
    assert caught.value.status == 302
    raw = json.loads(caught.value.body)
    assert raw["downloadUrl"] == caught.value.headers["Location"]
    referee(raw, "AuditQueryExecutionLargeResultsResponse", None)
    download = urllib3.request("GET", raw["downloadUrl"])
    events = json.loads(download.data)
    decoded = api.deserialize(_Json(download.data), "list[AuditLogMessage]")
    assert len(events) == len(decoded) == 200 and [e.id for e in decoded] == [e["id"] for e in events]
    for event, model in zip(events, decoded, strict=True):
        referee(event, "AuditLogMessage", model, NOT_EXPANDED)
        assert "name" not in event["user"]


class _Json:
    """The little of a urllib3 response that ApiClient.deserialize reads."""

    def __init__(self, data: bytes) -> None:
        self.data = data.decode("utf-8")

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return "application/json" if name.lower() == "content-type" else default


@pytest.mark.parametrize("expand", [True, False])
def test_realtime_query(sim: Simulator, client: tuple[Any, Any, Recorder], expand: bool) -> None:
    _, audit, recorder = client
    body = query_request("AuditRealtimeQueryRequest", page_number=1, page_size=500)
    page = audit.post_audits_query_realtime(body, expand=["user"]) if expand else audit.post_audits_query_realtime(body)
    referee(recorder.last(), "AuditRealtimeQueryResultsResponse", page, None if expand else NOT_EXPANDED)
    assert [e.id for e in page.entities] == directory_users(sim)
    assert (page.total, page.page_count, page.page_number) == (len(page.entities), 1, 1)
    assert all(bool(e.user.name) == expand for e in page.entities)
    assert sim.org().request_log[-1].query == ({"expand": ["user"]} if expand else {})


@pytest.mark.parametrize("method", ["get_audits_query_servicemapping", "get_audits_query_realtime_servicemapping"])
def test_service_mappings(client: tuple[Any, Any, Recorder], method: str) -> None:
    _, audit, recorder = client
    mapping = getattr(audit, method)()
    referee(recorder.last(), "AuditQueryServiceMapping", mapping)
    assert {s.name for s in mapping.services} >= {"Directory", "Architect"}


def test_error_bodies(sim: Simulator, client: tuple[Any, Any, Recorder]) -> None:
    _, audit, _ = client
    with pytest.raises(sdk.rest.ApiException) as caught:
        audit.get_audits_query_transaction_id("no-such-transaction")
    assert caught.value.status == 404
    raw = json.loads(caught.value.body)
    problems = [p for p in key_problems(raw, "ErrorBody", "ErrorBody", {}) if "has no such field" in p]
    assert not problems, problems
    assert {"message", "code", "status", "contextId"} <= raw.keys()


# -- the shipper's structs against the SDK's models ------------------------------------------------
# (our struct, the SDK model(s) it decodes): a struct may read two models (ResultsPage: 200 and 302).
STRUCTS: list[tuple[type[msgspec.Struct], tuple[str, ...]]] = [
    (models.AuditEvent, ("AuditLogMessage",)),
    (models.QueryStatus, ("AuditQueryExecutionStatusResponse",)),
    (models.ResultsPage, ("AuditQueryExecutionResultsResponse", "AuditQueryExecutionLargeResultsResponse")),
    (models.RealtimePage, ("AuditRealtimeQueryResultsResponse",)),
    (models.ServiceMapping, ("AuditQueryServiceMapping",)),
    (models.ErrorBody, ("ErrorBody",)),
]
# Ours, not in the SDK model: "Model.path" -> why we read it anyway.
OURS_ONLY = {
    "AuditLogMessage.eventType": "the guide's events-cursor shape (sources/events_cursor.py); the real API has none",
    "AuditLogMessage.data": "the guide's events-cursor shape (sources/events_cursor.py); the real API has none",
    "AuditLogMessage.client.name": "Ref is shared with user and entity (DomainEntityRef); a client ref never has a name",
    "AuditQueryExecutionStatusResponse.errorMessage": "not in the SDK: only words the error of a Failed query, "
                                                      "'no reason given' when absent",
}
# In the SDK model, not read by us: "Model.path" -> why not.
SDK_UNREAD = {
    "AuditQueryExecutionStatusResponse.startDate": "the shipper times its own polling",
    "AuditQueryExecutionStatusResponse.serviceName": "an echo of the query we sent",
    "AuditQueryExecutionStatusResponse.filters": "an echo of the query we sent",
    "AuditQueryExecutionStatusResponse.sort": "an echo of the query we sent",
    "ErrorBody.entityId": "logs carry code, status and contextId only",
    "ErrorBody.entityName": "logs carry code, status and contextId only",
    "ErrorBody.messageWithParams": "message is the rendered form",
    "ErrorBody.messageParams": "message is the rendered form",
    "ErrorBody.details": "free-form, not needed to classify the error",
    "ErrorBody.errors": "nested ErrorBody list, not needed to classify the error",
    "ErrorBody.limit": "rate limits are read from Retry-After",
}


def _struct_of(annotation: Any) -> type[msgspec.Struct] | None:
    """The Struct inside X | None, list[X] or dict[str, X], if any."""
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation
    for arg in typing.get_args(annotation):
        found = _struct_of(arg)
        if found:
            return found
    return None


def struct_problems(ours: type[msgspec.Struct], sdk_models: tuple[str, ...], path: str) -> list[str]:
    """Our fields the SDK models lack and SDK fields we lack, each unless allowlisted; recursively
    where both sides are structured."""
    theirs: dict[str, str] = {}
    for name in sdk_models:
        theirs.update(json_fields(name))
    hints = typing.get_type_hints(ours)
    problems: list[str] = []
    for f in msgspec.structs.fields(ours):
        where = f"{path}.{f.encode_name}"
        if f.encode_name not in theirs:
            if where not in OURS_ONLY:
                problems.append(f"{where}: {ours.__name__}.{f.name} is not in the SDK's {'/'.join(sdk_models)}: "
                                "rename it to the SDK's JSON name, or allowlist it in OURS_ONLY with the reason")
            continue
        sub_struct, sub_model = _struct_of(hints[f.name]), nested(theirs[f.encode_name])
        if sub_struct and sub_model:
            problems += struct_problems(sub_struct, (sub_model[1],), where)
    ours_names = {f.encode_name for f in msgspec.structs.fields(ours)}
    problems += [f"{path}.{k}: the SDK has it and {ours.__name__} does not read it: add it, or allowlist it in "
                 "SDK_UNREAD with the reason" for k in sorted(theirs.keys() - ours_names) if f"{path}.{k}" not in SDK_UNREAD]
    return problems


@pytest.mark.parametrize(("ours", "sdk_models"), STRUCTS, ids=[s.__name__ for s, _ in STRUCTS])
def test_our_structs_match_the_sdk_models(ours: type[msgspec.Struct], sdk_models: tuple[str, ...]) -> None:
    problems = struct_problems(ours, sdk_models, sdk_models[0])
    assert not problems, "\n".join(problems)


def test_allowlists_hold_no_stale_entries() -> None:
    """An allowlist entry whose field no longer differs must go (or the test can hide a new gap)."""
    used: set[str] = set()
    for ours, sdk_models in STRUCTS:
        used |= _differences(ours, sdk_models, sdk_models[0])
    assert set(OURS_ONLY) | set(SDK_UNREAD) <= used, sorted((set(OURS_ONLY) | set(SDK_UNREAD)) - used)


def _differences(ours: type[msgspec.Struct], sdk_models: tuple[str, ...], path: str) -> set[str]:
    theirs: dict[str, str] = {}
    for name in sdk_models:
        theirs.update(json_fields(name))
    hints = typing.get_type_hints(ours)
    fields = msgspec.structs.fields(ours)
    out = {f"{path}.{k}" for k in theirs.keys() - {f.encode_name for f in fields}}
    for f in fields:
        if f.encode_name not in theirs:
            out.add(f"{path}.{f.encode_name}")
            continue
        sub_struct, sub_model = _struct_of(hints[f.name]), nested(theirs[f.encode_name])
        if sub_struct and sub_model:
            out |= _differences(sub_struct, (sub_model[1],), f"{path}.{f.encode_name}")
    return out


# Ours, beyond the SDK's token answer -> why.
TOKEN_EXTRA = {
    "expires_in": "RFC 6749 5.1; the SDK never refreshes a client-credentials token, so it does not read it",
    "token_type": "RFC 6749 5.1; always bearer",
}


def test_token_response_matches_what_the_sdk_reads() -> None:
    read = set(re.findall(r'data\[0\]\["(\w+)"\]', inspect.getsource(sdk.ApiClient.get_client_credentials_token)))
    fields = msgspec.structs.fields(models.TokenResponse)
    required = {f.encode_name for f in fields if f.required}
    assert required <= read, f"TokenResponse requires {required - read}, which the SDK does not rely on"
    assert read <= {f.encode_name for f in fields}, f"the SDK reads {read} of the token answer"
    extra = {f.encode_name for f in fields} - read
    assert extra == set(TOKEN_EXTRA), f"TokenResponse fields beyond the SDK's: {extra}; allowlist with the reason"


# -- what the shipper sends, against the SDK's request models ----------------------------------------
SDK_REQUEST = {"/api/v2/audits/query": "AuditQueryRequest", "/api/v2/audits/query/realtime": "AuditRealtimeQueryRequest"}
# SDK filter properties the shipper never pushes down -> why.
FILTERS_UNUSED = {
    "ClientId": "no filter rule field for the OAuth client yet",
    "EntityId": "no filter rule field for one entity yet",
    "TrusteeOrganizationId": "trustee (partner) orgs are not supported",
}


def _sdk_query_params(method: str) -> set[str]:
    return set(re.findall(r"query_params\['(\w+)'\]", inspect.getsource(getattr(sdk.AuditApi, method))))


@pytest.fixture(scope="module")
def shipper_requests(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """Every request the real CLI made, `run --once` per API source, with one include rule that
    sets every rule field, so everything that can be pushed down to the server is."""
    rule_fields = {f.name for f in msgspec.structs.fields(_rule_struct())}
    values = {"service": "Directory", "entity_type": "User", "action": "Update", "status": "SUCCESS", "level": "USER",
              "user_id": "00000000-0000-4000-8000-000000000001",
              "client_id": "c1a2b3c4-0000-4000-8000-00000000c11e",
              "entity_id": "00000000-0000-4000-8000-000000000002"}
    assert rule_fields <= values.keys(), f"new filter rule fields {rule_fields - values.keys()}: give them a value here"
    logged: list[Any] = []
    for api in ("audits-query", "audits-realtime"):
        tmp = tmp_path_factory.mktemp(api)
        with Simulator(SimConfig(events=50, span=3600, newest_age=30, query_delay=0.0)) as simulator:
            cfg = write_config(tmp, simulator.url, genesys={"api": api},
                               filters={"include": [{k: values[k] for k in rule_fields}]})
            proc = run_cli("run", "--once", "--config", str(cfg), timeout=60)
            assert proc.returncode == 0, proc.stderr.decode()[-2000:]
            assert_no_traceback(proc.stderr)
            logged += list(simulator.org().request_log)
    return logged


def _rule_struct() -> type[msgspec.Struct]:
    from shipper.filters import Rule  # the filter rule; the config module may move, the rule stays

    return Rule


def test_request_bodies_match_the_sdk_request_models(shipper_requests: list[Any]) -> None:
    bodies = [(r.path, json.loads(r.body)) for r in shipper_requests if r.method == "POST" and r.path in SDK_REQUEST]
    assert {p for p, _ in bodies} == set(SDK_REQUEST), "both query kinds were sent"
    for path, body in bodies:
        model = SDK_REQUEST[path]
        problems = key_problems(body, model, model, {})
        assert not problems, f"{path}: the shipper's request disagrees with the SDK's {model}:\n" + "\n".join(problems)
        for flt in body["filters"]:
            assert flt["property"] in allowed_values("AuditQueryFilter", "property"), flt
        for sort in body["sort"]:
            assert sort["name"] in allowed_values("AuditQuerySort", "name"), sort
            assert sort["sortOrder"] in allowed_values("AuditQuerySort", "sortOrder"), sort
    pushed = {f["property"] for _, body in bodies for f in body["filters"]}
    assert pushed | set(FILTERS_UNUSED) == set(allowed_values("AuditQueryFilter", "property")), (
        f"the shipper pushes {sorted(pushed)}; update FILTERS_UNUSED")


def test_query_parameters_are_the_sdks(shipper_requests: list[Any]) -> None:
    results = _sdk_query_params("get_audits_query_transaction_id_results")
    realtime = _sdk_query_params("post_audits_query_realtime")
    assert results == {"cursor", "pageSize", "expand", "allowRedirect"} and realtime == {"expand"}
    for r in shipper_requests:
        if r.path.endswith("/results"):
            assert set(r.query) <= results, r.query
            assert r.query["expand"] == ["user"] and 1 <= int(r.query["pageSize"][0]) <= 500
        elif r.path == "/api/v2/audits/query/realtime":
            assert r.query == {"expand": ["user"]}, r.query


# -- allowed values the shipper relies on ------------------------------------------------------------
def _shipper_trees() -> Iterator[tuple[Path, ast.AST]]:
    for path in sorted(SHIPPER.rglob("*.py")):
        if "simulator" not in path.relative_to(SHIPPER).parts:
            yield path, ast.parse(path.read_text())


def test_query_states_the_shipper_compares_are_the_sdks() -> None:
    """Every string the shipper compares a `.state` with is a state the SDK knows; the states it
    never names (Failed, Cancelled) end a query as an error."""
    used: set[str] = set()
    for _, tree in _shipper_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(isinstance(s, ast.Attribute) and s.attr == "state"
                                                     for s in [node.left, *node.comparators]):
                used |= {c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    allowed = set(allowed_values("AuditQueryExecutionStatusResponse", "state"))
    assert used, "no comparison with .state found: the test no longer sees how the shipper reads query states"
    assert used <= allowed, f"states the SDK does not know: {used - allowed}"
    assert allowed - used == {"Failed", "Cancelled"}, f"the SDK's states changed: {sorted(allowed)}"


def test_status_and_level_values_the_shipper_maps_are_the_sdks() -> None:
    """Each literal group (dict, set, tuple, comparison) that names an SDK status or level value
    names only SDK values: a typo or a value the API never sends shows here."""
    status = set(allowed_values("AuditLogMessage", "status"))
    level = set(allowed_values("AuditLogMessage", "level"))
    assert status == {"SUCCESS", "FAILURE", "WARNING"} and level == {"USER", "SYSTEM", "GENESYS_INTERNAL"}
    named: set[str] = set()
    for path, tree in _shipper_trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Dict | ast.Set | ast.Tuple | ast.Compare):
                continue
            words = {c.value for c in ast.iter_child_nodes(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
            if isinstance(node, ast.Dict):
                words = {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            shouting = {w for w in words if re.fullmatch(r"[A-Z][A-Z_]+", w)}
            if shouting & (status | level):
                assert shouting <= status | level, f"{path.name}:{node.lineno}: {sorted(shouting - status - level)}"
                named |= shouting
    assert named >= {"SUCCESS", "FAILURE"}, "no status mapping found: the test no longer sees the schemas"

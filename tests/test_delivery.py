"""Delivery proven with a real Fluent Bit on both ends: every shipped Fluent Bit template x scenario.

Scenarios (tests/delivery_harness.py runs them; benchmarks/bench_delivery.py prints the same matrix):
- burst: 2000 events, half of them over 4 KB;
- output_down: one output's receiver is not listening for 60 s, then starts;
- sigterm: the host Fluent Bit is stopped with SIGTERM mid-backlog and started again;
- kill9: the host Fluent Bit is killed with SIGKILL right after the shipper handed a page over
  (exec: its checkpoint moved; http: a 2xx), three times, and started again each time.

Each case counts distinct event ids at every receiver against the simulator's truth (each output's
share follows the template's tiers), duplicates, ids that do not belong there, and the fields each
SIEM needs. The acceptance rule is one assertion, `CaseResult.failures() == []`: nothing lost, and
per restart at most one page repeated (plus `output.replay_on_start` events when it is on) plus
what Fluent Bit's own disk backlog sends again (ids still in its chunk files at the kill).

Switches that turn on by themselves when the shipper gets the features of issue 12:
- `output.replay_on_start`: the exec kill9 cases set it to REPLAY_N and lose their xfail mark;
- `output.http`: the http templates are fed by the real shipper instead of PagePoster.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests import delivery_harness as h

REPLAY_N = 100  # output.replay_on_start for the exec kill -9 cases: one page
WORKERS = 6  # cases at once; most of a case is waiting (60 s outage, 40 s quiet), not CPU

try:
    BINARY, BINARY_ERROR = h.find_fluent_bit(), None
except FileNotFoundError as exc:
    BINARY, BINARY_ERROR = None, str(exc)
REPLAY = h.shipper_supports("output.replay_on_start")
SETTINGS = h.Settings(replay=REPLAY_N if REPLAY else None)


def binary() -> str:
    if BINARY_ERROR:
        pytest.fail(BINARY_ERROR)
    if BINARY is None:
        pytest.skip("no Fluent Bit: set FLUENT_BIT or put fluent-bit on PATH (.ci/run uses ../shared/bin)")
    return BINARY


# ---------------------------------------------------------------------------------------------
# The rewrite of a shipped template for a test: small, and held to "only what must change"

ALLOWED_CHANGES = {
    "SERVICE": {"storage.path", "parsers_file"},
    "INPUT": {"command", "listen", "port", "tls", "path", "db"},
    "OUTPUT": {"host", "port", "tls", "mode", "dce_url", "auth_url", "tls.ca_file", "tenant_id", "client_id",
               "dcr_id"},
}


def _wire(tmp: Path, spec: h.TemplateSpec) -> h.Rewire:
    ports = {h.PLUGIN_OF[kind]: 20000 + i for i, kind in enumerate(spec.outputs)}
    return h.Rewire(storage_path=tmp / "storage", exec_command="exec python -m shipper run --config /t/c.yaml",
                    http_port=19999, tail_path=tmp / "audit.ndjson", tail_db=tmp / "tail.db", outputs=ports,
                    azure_auth_url="http://127.0.0.1:1/token", ca_file=h.CERT)


@pytest.mark.parametrize("spec", h.TEMPLATES, ids=lambda s: s.name)
def test_rewrite_changes_only_what_a_test_must(spec: h.TemplateSpec, tmp_path: Path) -> None:
    path = h.installed(spec.path, tmp_path / "etc")
    original = h.load_fb_config(path)
    wire = _wire(tmp_path, spec)
    text, changes = h.rewrite_template(path, wire)
    rewritten = h.FbConfig(original.fmt, h.parse_yaml(text) if original.fmt == "yaml" else h.parse_classic(text))
    assert [s.kind for s in rewritten.sections] == [s.kind for s in original.sections]
    for before, after in zip(original.sections, rewritten.sections, strict=True):
        changed = {k for k in before.props.keys() | after.props.keys() if before.props.get(k) != after.props.get(k)}
        assert changed <= ALLOWED_CHANGES.get(before.kind, set()), (before.label, changed)
    assert {key for _, key, _, _ in changes} <= set().union(*ALLOWED_CHANGES.values())
    assert "example.com" not in text and not re.search(r"(?<!\?)<[A-Za-z][\w .-]*>", text), "a placeholder is left"
    for out in rewritten.of("OUTPUT"):
        port = wire.outputs[out.plugin]
        if out.plugin == "azure_logs_ingestion":
            assert out.props["dce_url"] == f"https://127.0.0.1:{port}"
        else:
            assert (out.props["host"], int(out.props["port"])) == ("127.0.0.1", port)
            assert str(out.props.get("tls", "off")).lower() in ("off", "false")
            assert out.props.get("mode") in (None, "tcp")
    (inp,) = rewritten.of("INPUT")
    expected = {"exec": ("command", wire.exec_command), "http": ("port", wire.http_port),
                "tail": ("path", str(wire.tail_path))}[spec.source]
    assert str(inp.props[expected[0]]) == str(expected[1])
    assert rewritten.of("SERVICE")[0].props["storage.path"] == str(wire.storage_path)


def test_rewrite_refuses_what_it_cannot_point_at_a_receiver(tmp_path: Path) -> None:
    spec = next(s for s in h.TEMPLATES if s.name == "fluent-bit.conf.example")
    wire = _wire(tmp_path, spec)
    del wire.outputs["es"]
    with pytest.raises(ValueError, match="no receiver port for output 'es'"):
        h.rewrite_template(spec.path, wire)
    with pytest.raises(ValueError, match="exec_command"):
        h.rewrite_template(spec.path, h.Rewire(storage_path=tmp_path, outputs=_wire(tmp_path, spec).outputs))
    tail = next(s for s in h.TEMPLATES if s.source == "tail")
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(tail.path, lonely)
    with pytest.raises(ValueError, match="parsers_file"):  # not installed next to parsers.conf
        h.rewrite_template(lonely / tail.path.name, _wire(tmp_path, tail))


@pytest.mark.parametrize("spec", h.TEMPLATES, ids=lambda s: s.name)
def test_config_model_round_trips(spec: h.TemplateSpec) -> None:
    cfg = h.load_fb_config(spec.path)
    again = h.parse_yaml(h.render(cfg)) if cfg.fmt == "yaml" else h.parse_classic(h.render(cfg))
    assert again == cfg.sections


def test_tier_of_agrees_with_the_shipper() -> None:
    import msgspec

    from shipper.config import config_from_mapping
    from shipper.filters import make_tiering
    from shipper.models import decode_event
    from shipper.simulator import EventStore, SimConfig

    routing = h.production_routing()
    cfg = config_from_mapping({"routing": routing})
    tiering = make_tiering(cfg.routing.tiers, cfg.routing.default_tier)
    store = EventStore(SimConfig(events=500, seed=3), time.time())
    tiers = []
    for ev in store.events:
        event, _ = decode_event(msgspec.json.encode(ev.doc))
        assert h.tier_of(ev.doc, routing) == tiering(event)
        tiers.append(tiering(event))
    assert set(tiers) == {"high_value", "standard", "high_volume"}


GOOD = {"siem_event_id": "e1", "siem_timestamp": "2026-01-15T00:00:00.123Z", "audit_tier": "standard"}


@pytest.mark.parametrize(("kind", "record", "problem"), [
    ("splunk", {"time": 1768435200.123, "sourcetype": "genesys:cloud:audit", "index": "genesys_audit", "event": GOOD},
     "splunk sourcetype"),
    ("splunk", {"time": 1768435300.0, "sourcetype": h.SPLUNK_SOURCETYPE, "index": "genesys_audit", "event": GOOD},
     "is not the event time"),
    ("splunk", {"sourcetype": h.SPLUNK_SOURCETYPE, "index": "genesys_audit", "event": GOOD}, "time is missing"),
    ("elastic", {"@meta": {"index": {"_index": h.ES_INDEX, "_id": "e1"}}, "@timestamp": "2026-01-15T00:00:00.123Z",
                 **GOOD}, "op 'index', expected create"),
    ("elastic", {"@meta": {"create": {"_index": h.ES_INDEX, "_id": "x"}}, "@timestamp": "2026-01-15T00:00:00.123Z",
                 **GOOD}, "is not the event id"),
    ("elastic", {"@meta": {"create": {"_index": h.ES_INDEX, "_id": "e1"}}, **GOOD}, "@timestamp None"),
    ("syslog", {"frame": '<110>1 2026-01-15T00:00:00.123Z host genesys-audit - audit - \ufeff{"siem_event_id":"e1",'},
     "MSG is not JSON"),
    ("syslog", {"frame": '<110>1 2026-01-15T00:00:00.123Z - genesys-audit - audit - {"siem_event_id":"e1"}'},
     "HOSTNAME is nil"),
    ("syslog", {"frame": '<110>1 2026-01-15T00:00:00.123Z h vector - audit - {"siem_event_id":"e1"}'}, "APP-NAME"),
    ("syslog", {"frame": '{"siem_event_id":"e1"}'}, "not RFC 5424"),
    ("sentinel", dict(GOOD), "TimeGenerated is missing"),
    ("http", {**GOOD, "exec": "{...}"}, "raw line `exec` rides along"),
])
def test_unwrap_reports_what_a_siem_would_miss(kind: str, record: dict[str, Any], problem: str) -> None:
    _, problems = h.unwrap(kind, json.loads(json.dumps(record)))
    assert any(problem in p for p in problems), problems


def test_unwrap_takes_a_good_record_of_each_kind() -> None:
    frame = '<110>1 2026-01-15T00:00:00.123Z host genesys-audit - audit - \ufeff' + json.dumps(GOOD)
    for kind, rec in [
        ("splunk", {"time": 1768435200.123, "sourcetype": h.SPLUNK_SOURCETYPE, "index": h.SPLUNK_INDEX, "event": GOOD}),
        ("elastic", {"@meta": {"create": {"_index": h.ES_INDEX, "_id": "e1"}}, "@timestamp": GOOD["siem_timestamp"],
                     **GOOD}),
        ("syslog", {"frame": frame}), ("sentinel", {**GOOD, "TimeGenerated": GOOD["siem_timestamp"]}),
        ("http", dict(GOOD)),
    ]:
        doc, problems = h.unwrap(kind, rec)
        assert problems == [] and doc is not None and doc["siem_event_id"] == "e1", kind


def test_acceptance_rule() -> None:
    out = h.OutputResult("splunk", 2000, 2000, 0, 250, 0, {}, 3.0, backlog=40)
    case = h.CaseResult("t", "kill9", "exec", [out], restarts=2, page_size=100, replay=None, seconds=1.0)
    assert case.allowed(out) == 240 and case.failures() == ["splunk: 250 duplicates > 240 allowed (2 restart(s) x "
                                                            "(page 100 + replay 0) + 40 in Fluent Bit's backlog)"]
    case.replay = 100
    assert case.allowed(out) == 440 and case.failures() == []
    out.lost = 1
    assert case.failures() == ["splunk: 1 of 2000 lost"]


def test_backlog_ids_reads_chunk_files(tmp_path: Path) -> None:
    (tmp_path / "exec.0").mkdir()
    (tmp_path / "exec.0" / "1-2.flb").write_bytes(b"\xc1\x00\xa4siem\xd9$7a2c54a0-da96-4a45-aff8-3f045caded41\x00")
    assert h.backlog_ids(tmp_path) == {"7a2c54a0-da96-4a45-aff8-3f045caded41"}


def test_find_fluent_bit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLUENT_BIT", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError):
        h.find_fluent_bit()
    fake = tmp_path / "fluent-bit"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("FLUENT_BIT", str(fake))
    assert h.find_fluent_bit() == str(fake)
    monkeypatch.delenv("FLUENT_BIT")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert h.find_fluent_bit() is None


# ---------------------------------------------------------------------------------------------
# How Fluent Bit 5.1.1 behaves where the templates depend on it (the real binary)


@contextlib.contextmanager
def fluent_bit(config: dict[str, Any], tmp: Path, env: dict[str, str] | None = None) -> Iterator[h.Process]:
    path = tmp / "fb.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = h.Process([binary(), "-c", str(path)], tmp / "fb.log", env={**os.environ, **(env or {})})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop(30)


def fb_size_bytes(value: str) -> int:
    """A Fluent Bit size as Fluent Bit reads it (k, M, G are powers of 1024)."""
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert m, value
    return int(m.group(1)) * 1024 ** " kmg".index(m.group(2).lower() or " ")


def test_http_input_contract(tmp_path: Path) -> None:
    """The shipped http input: 201 for NDJSON sent as application/json, 400 for application/x-ndjson,
    413 above http_server.buffer_max_size; each object becomes one record, in order."""
    cfg = h.load_fb_config(h.REPO / "configs" / "fluent-bit" / "http-input.yaml")
    port = h.free_port()
    h.rewrite(cfg, h.Rewire(storage_path=tmp_path / "storage", http_port=port,
                            outputs={o.plugin: 1 for o in cfg.of("OUTPUT")}, azure_auth_url="x", ca_file=h.CERT),
              h.REPO / "configs" / "fluent-bit")
    (inp,) = cfg.of("INPUT")
    out = tmp_path / "got.jsonl"
    doc = yaml.safe_load(h.render(cfg))
    doc["pipeline"]["outputs"] = [{"name": "file", "match": "genesys*", "path": str(tmp_path), "file": out.name,
                                   "format": "plain"}]
    with fluent_bit(doc, tmp_path) as proc:
        h.wait_port(port, proc=proc.proc)
        url = f"http://127.0.0.1:{port}/genesys"
        page = b"".join(json.dumps({**GOOD, "siem_event_id": f"e{i}"}).encode() + b"\n" for i in range(100))
        assert requests.post(url, data=page, headers={"Content-Type": "application/x-ndjson"}, timeout=10).status_code == 400
        assert requests.post(url, data=page, headers={"Content-Type": "application/json"}, timeout=10).status_code == 201
        limit = fb_size_bytes(str(inp.props["http_server.buffer_max_size"]))
        big = (json.dumps({**GOOD, "pad": "x" * 60000}) + "\n").encode() * (limit // 60000 + 2)
        assert requests.post(url, data=big, headers={"Content-Type": "application/json"}, timeout=30).status_code == 413
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 100):
            time.sleep(0.2)
    ids = [json.loads(line)["siem_event_id"] for line in out.read_text().splitlines()]
    assert ids == [f"e{i}" for i in range(100)]


def test_es_output_retries_a_bulk_of_conflicts_forever(tmp_path: Path) -> None:
    """Fluent Bit 5.1.1's es output counts a bulk as sent only if one item is 200/201: a bulk whose
    documents all exist already (409, op create) is retried without end. The README says so."""
    posts: list[int] = []

    class Conflicts(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            posts.append(1)
            body = json.dumps({"took": 1, "errors": True, "items": [{"create": {
                "_index": h.ES_INDEX, "_id": "e1", "status": 409,
                "error": {"type": "version_conflict_engine_exception"}}}]}, separators=(",", ":")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Conflicts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    doc = {"service": {"flush": 1, "scheduler.base": 1, "scheduler.cap": 1, "log_level": "warn"},
           "pipeline": {"inputs": [{"name": "dummy", "dummy": json.dumps(GOOD), "samples": 1}],
                        "outputs": [{"name": "es", "match": "*", "host": "127.0.0.1", "port": server.server_address[1],
                                     "index": h.ES_INDEX, "suppress_type_name": "on", "id_key": "siem_event_id",
                                     "write_operation": "create", "retry_limit": "no_limits"}]}}
    try:
        with fluent_bit(doc, tmp_path):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(posts) < 4:
                time.sleep(0.2)
    finally:
        server.shutdown()
        server.server_close()
    assert len(posts) >= 4


# ---------------------------------------------------------------------------------------------
# The matrix

CASES = []
for _spec, _scenario in h.iter_cases(h.TEMPLATES, h.SCENARIOS):
    _marks = []
    if _spec.source == "exec" and _scenario == "kill9" and not REPLAY:
        # Not strict: whether a kill finds records in the ring buffer is timing (measured: about one kill
        # in five with the test's stretched ring-buffer timer, one in four with Fluent Bit's own), so the
        # same case passes in some runs. It reports XPASS then, never "passed"; the mark goes away by
        # itself with output.replay_on_start, and test_exec_kill9_loss_is_what_replay_covers holds today.
        _marks.append(pytest.mark.xfail(strict=False, reason=(
            "exec mode without output.replay_on_start: a kill -9 loses the records Fluent Bit had read from the "
            "pipe but not yet moved from its threaded input's ring buffer into a chunk, after the shipper's "
            "checkpoint moved past them")))
    CASES.append(pytest.param(_spec.name, _scenario, id=f"{_spec.name}-{_scenario}", marks=_marks))


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], h.CaseResult]:
    fb = binary()
    root = tmp_path_factory.mktemp("delivery")
    started = time.monotonic()
    results = h.run_matrix(fb, h.TEMPLATES, h.SCENARIOS, root, SETTINGS, workers=WORKERS)
    for r in results.values():
        r.notes.append(f"work dir {r.work}")
    results[("<all>", "<elapsed>")] = h.CaseResult("<all>", "<elapsed>", "-", [], 0, 0, None,
                                                  time.monotonic() - started)
    return results


@pytest.mark.parametrize(("template", "scenario"), CASES)
def test_delivery(matrix: dict[tuple[str, str], h.CaseResult], template: str, scenario: str) -> None:
    result = matrix[(template, scenario)]
    assert result.failures() == [], "\n".join(result.failures() + result.notes)


@pytest.mark.parametrize("template", [s.name for s in h.TEMPLATES if s.source == "exec"])
def test_exec_kill9_loss_is_what_replay_covers(matrix: dict[tuple[str, str], h.CaseResult], template: str) -> None:
    """What exec mode loses to a kill -9 today is at most the page handed over just before it:
    output.replay_on_start = one page (REPLAY_N) covers it. Nothing else is wrong in those cases."""
    result = matrix[(template, "kill9")]
    assert result.error is None and result.restarts == SETTINGS.kills
    assert result.page_size <= REPLAY_N
    for o in result.outputs:
        assert o.lost <= result.page_size * result.restarts, (o.output, o.lost)
        assert o.unexpected == 0 and o.problems == {}, (o.output, o.problems)


def test_delivery_matrix_report(matrix: dict[tuple[str, str], h.CaseResult], capsys: pytest.CaptureFixture[str]) -> None:
    """Prints the matrix (template x scenario: truth, received, lost, duplicates) into the test output."""
    elapsed = matrix[("<all>", "<elapsed>")].seconds
    cases = {k: v for k, v in matrix.items() if k[0] != "<all>"}
    with capsys.disabled():
        print(f"\n\nDelivery matrix, Fluent Bit {BINARY}, {len(cases)} cases in {elapsed:.0f}s "
              f"(replay_on_start: {SETTINGS.replay}):")
        print(h.format_matrix(cases))
    assert len(cases) == len(h.TEMPLATES) * len(h.SCENARIOS)

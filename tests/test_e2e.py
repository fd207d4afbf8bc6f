"""The real CLI in a subprocess against the simulator on loopback."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from .conftest import CLI, assert_no_traceback, event_id, parse_lines, run_cli, state_bytes, write_config


def _siem_matches(rec: dict[str, Any], src: dict[str, Any]) -> None:
    assert rec["siem_timestamp"] == src["eventDate"]
    assert rec["siem_event_id"] == src["id"]
    assert rec["siem_actor_id"] == src["user"]["id"]
    assert rec["siem_actor_name"] == src["user"]["name"]
    assert rec["siem_event_type"] == f"{src['serviceName']}.{src['entityType']}.{src['action']}"
    assert rec["siem_entity_id"] == src["entity"]["id"]
    assert rec["siem_entity_type"] == src["entityType"]
    assert rec["siem_raw_payload"] == src
    assert rec["audit_tier"] == "standard"


def test_once_exactly_once_then_nothing(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=3000, large_fraction=0.01, huge_events=2)
    source = {e["id"]: e for e in sim.all_events()}
    assert sum(len(json.dumps(e)) > 4096 for e in source.values()) >= 25  # about 1 % over 4 KB
    # Lines are unbounded here so every field can be compared whole (shrinking is tested elsewhere).
    cfg = write_config(tmp_path, sim.url, output={"max_line_bytes": 4 * 1024 * 1024})

    first = run_cli("run", "--once", "--config", str(cfg))
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    assert_no_traceback(first.stderr)
    records = parse_lines(first.stdout)
    ids = [event_id(r) for r in records]
    assert len(ids) == len(set(ids)) == len(source)
    for rec in records:
        _siem_matches(rec, source[rec["siem_event_id"]])

    second = run_cli("run", "--once", "--config", str(cfg))
    assert second.returncode == 0
    assert second.stdout == b""

    stats = requests.get(f"{sim.url}/__sim/stats", timeout=5).json()
    assert stats["token_requests"] <= 2
    assert 0 < stats["max_page_size"] <= 500
    mode = stat.S_IMODE(os.stat(tmp_path / "state.json").st_mode)
    assert mode == 0o600


def test_bulk_identical_timestamps_across_small_pages(tmp_path: Path, simulator: Any) -> None:
    # Bursts of 50-300 events share one millisecond; pages of 7 split every burst many times.
    sim = simulator(events=1200, burst_every=100)
    cfg = write_config(tmp_path, sim.url, poll={"page_size": 7})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    ids = [event_id(r) for r in parse_lines(proc.stdout)]
    assert sorted(ids) == sorted(e["id"] for e in sim.all_events())


def test_second_instance_refused_and_sigterm_exits_zero(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=200, live_rate=5)
    cfg = write_config(tmp_path, sim.url)
    out_path = tmp_path / "out.ndjson"
    with open(out_path, "wb") as out_file:
        daemon = subprocess.Popen([*CLI, "run", "--config", str(cfg)], stdout=out_file, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 20
        while not (tmp_path / "state.json").exists() and time.time() < deadline:
            time.sleep(0.1)
        assert (tmp_path / "state.json").exists()
        other = run_cli("run", "--once", "--config", str(cfg), timeout=20)
        assert other.returncode == 3
        assert b"another instance" in other.stderr
        status = run_cli("status", "--config", str(cfg), "--json", timeout=20)
        assert status.returncode == 0, status.stderr.decode()
        assert json.loads(status.stdout)["locked_by_other_instance"] is True
        started = time.time()
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=10)
        assert time.time() - started < 10
        assert daemon.returncode == 0, err.decode()[-2000:]
        assert_no_traceback(err)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    ids = [event_id(r) for r in parse_lines(out_path.read_bytes())]
    assert len(ids) == len(set(ids)) and len(ids) >= 200


def test_closed_stdout_then_rerun_loses_nothing(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=2500)
    cfg = write_config(tmp_path, sim.url)
    head = subprocess.run(f"{' '.join(CLI)} run --once --config {cfg} | head -n 5", shell=True,
                          capture_output=True, timeout=120)
    assert_no_traceback(head.stderr)
    seen = [event_id(r) for r in parse_lines(head.stdout)]
    assert len(seen) == 5
    rest = run_cli("run", "--once", "--config", str(cfg))
    assert rest.returncode == 0
    seen += [event_id(r) for r in parse_lines(rest.stdout)]
    assert set(seen) == {e["id"] for e in sim.all_events()}


def test_bad_secret_is_not_echoed(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=10)
    cfg = write_config(tmp_path, sim.url, genesys={"client_secret": "Wrong-Secret-987"})
    proc = run_cli("run", "--once", "--config", str(cfg), "--log-level", "debug")
    assert proc.returncode == 1
    assert b"Wrong-Secret-987" not in proc.stderr
    assert b"client id or secret" in proc.stderr
    assert_no_traceback(proc.stderr)


def test_tokens_and_secrets_never_logged_or_stored(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=300, token_ttl=2)
    cfg = write_config(tmp_path, sim.url, genesys={"token_refresh_margin": "1s"})
    proc = run_cli("--log-level", "debug", "run", "--once", "--config", str(cfg))
    assert proc.returncode == 0
    issued = list(sim.tokens)
    assert issued
    blobs = [proc.stderr, state_bytes(tmp_path / "state.json")]
    for blob in blobs:
        assert b"demo-secret" not in blob
        for token in issued:
            assert token.encode() not in blob


def test_log_level_after_verb(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=5)
    cfg = write_config(tmp_path, sim.url)
    proc = run_cli("run", "--once", "--config", str(cfg), "--log-level", "error")
    assert proc.returncode == 0
    assert proc.stderr == b""
    proc = run_cli("--log-level", "debug", "run", "--once", "--config", str(cfg))
    assert b'"level":"debug"' in proc.stderr


def test_demo_streams_events() -> None:
    proc = subprocess.Popen([*CLI, "demo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(5)]
        assert all(json.loads(line)["siem_event_id"] for line in lines)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert proc.returncode == 0


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.startswith(b"genesys-audit-shipper ")
    helptext = run_cli("--help").stdout
    for word in (b"run", b"demo", b"check", b"status", b"backfill", b"exit codes"):
        assert word in helptext


def test_every_schema_carries_every_event_once(tmp_path: Path, simulator: Any) -> None:
    import pytest

    sim = simulator(events=700)
    ids = sorted(e["id"] for e in sim.all_events())
    id_of = {"siem": lambda r: r["siem_event_id"], "ecs": lambda r: r["event"]["id"],
             "ocsf": lambda r: r["metadata"]["uid"], "cim": lambda r: r["id"],
             "asim": lambda r: r["EventOriginalUid"], "raw": lambda r: r["id"]}
    for schema, get in id_of.items():
        state = tmp_path / f"{schema}.json"
        cfg = write_config(tmp_path, sim.url, output={"schema": schema}, state={"path": str(state)})
        proc = run_cli("run", "--once", "--config", str(cfg))
        assert proc.returncode == 0, (schema, proc.stderr.decode()[-1500:])
        assert sorted(get(r) for r in parse_lines(proc.stdout)) == ids, schema
    with pytest.raises(KeyError):
        id_of["siem"]({"id": "x"})  # the id getters really read schema-specific fields

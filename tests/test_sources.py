"""The same exactly-once suite against every source, through the real CLI against the simulator."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from shipper.simulator import guide_shape

from .conftest import assert_no_traceback, event_id, parse_lines, run_cli, write_config

APIS = ["audits-query", "audits-realtime", "events-cursor"]
DAY = 86_400.0


def _config(tmp: Path, sim: Any, api: str, page: int = 50, **sections: dict[str, Any]) -> Path:
    """Config for `api` with pages of `page` events (both page-size keys, so every source pages alike)."""
    defaults: dict[str, dict[str, Any]] = {
        "genesys": {"api": api},
        "poll": {"page_size": page, "cursor_page_size": min(page, 100)},
        "rate_limit": {"requests_per_minute": 60000, "backoff_base": "0.02s", "backoff_max": "0.3s"},
        "output": {"max_line_bytes": 4 * 1024 * 1024},
    }
    for name, values in sections.items():
        defaults[name] = {**defaults.get(name, {}), **values}
    return write_config(tmp, sim.url, **defaults)


def _stats(sim: Any) -> dict[str, Any]:
    return requests.get(f"{sim.url}/__sim/stats", timeout=5).json()


def _all_ids(sim: Any) -> set[str]:
    return {e["id"] for e in sim.all_events()}


def _run_until_done(cfg: Path, tries: int = 8) -> tuple[list[str], bytes]:
    """`run --once` until it exits 0 (a run may fail cleanly after its retries); ids from all runs."""
    seen: list[str] = []
    stderr = b""
    for _ in range(tries):
        proc = run_cli("run", "--once", "--config", str(cfg))
        assert_no_traceback(proc.stderr)
        seen += [event_id(r) for r in parse_lines(proc.stdout)]
        stderr += proc.stderr
        if proc.returncode == 0:
            return seen, stderr
        assert proc.returncode == 1, proc.stderr.decode()[-2000:]
    raise AssertionError(f"still failing after {tries} runs: {stderr.decode()[-2000:]}")


def _assert_exactly_once(seen: list[str], want: set[str]) -> None:
    counts = Counter(seen)
    assert set(counts) == want, f"lost {len(want - set(counts))}, unexpected {len(set(counts) - want)}"
    assert max(counts.values()) == 1, f"duplicates: {[i for i, n in counts.items() if n > 1][:5]}"


# -- the shared exactly-once suite ---------------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
def test_bursts_larger_than_pages_exactly_once_then_nothing(tmp_path: Path, simulator: Any, api: str) -> None:
    # Bursts of 50-300 events share one millisecond; pages of 7 split each burst many times.
    sim = simulator(events=1200, burst_every=100)
    cfg = _config(tmp_path, sim, api, page=7)
    first = run_cli("run", "--once", "--config", str(cfg))
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    assert_no_traceback(first.stderr)
    _assert_exactly_once([event_id(r) for r in parse_lines(first.stdout)], _all_ids(sim))
    second = run_cli("run", "--once", "--config", str(cfg))
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    assert second.stdout == b""
    assert _stats(sim)["max_page_size"] == 7


@pytest.mark.parametrize("api", APIS)
def test_cursor_reset_mid_run_loses_nothing(tmp_path: Path, simulator: Any, api: str) -> None:
    # "expire": audits-query's transaction answers 404, events-cursor's cursor answers 400
    # cursor.mismatch; realtime has neither and must simply be unaffected.
    sim = simulator(events=2000, seed=3, fault_rate=0.15, faults=("expire",))
    cfg = _config(tmp_path, sim, api, page=100)
    seen, stderr = _run_until_done(cfg)
    _assert_exactly_once(seen, _all_ids(sim))
    if api != "audits-realtime":
        assert _stats(sim)["faults"].get("expire", 0) > 0
        expected = b"cursor rejected; resetting it" if api == "events-cursor" else b"transaction expired"
        assert expected in stderr


@pytest.mark.parametrize("api", APIS)
def test_fault_mix_delivers_everything_once_across_reruns(tmp_path: Path, simulator: Any, api: str) -> None:
    sim = simulator(events=2000, seed=7, fault_rate=0.12, faults=("500", "503", "reset", "truncated", "revoke", "expire"))
    cfg = _config(tmp_path, sim, api, page=50, rate_limit={"max_retries": 4})
    seen, _ = _run_until_done(cfg)
    _assert_exactly_once(seen, _all_ids(sim))
    again = run_cli("run", "--once", "--config", str(cfg))
    assert again.returncode == 0 and again.stdout == b""
    faults = _stats(sim)["faults"]
    assert sum(faults.values()) >= 5, faults


# -- audits-realtime -----------------------------------------------------------------------------
def test_realtime_falls_back_to_async_query_beyond_14_days(tmp_path: Path, simulator: Any) -> None:
    # Events from 15 to 13 days ago: the part older than 14 days must come from the async query.
    sim = simulator(events=800, span=2 * DAY, newest_age=13 * DAY)
    cfg = _config(tmp_path, sim, "audits-realtime", page=50, poll={"start_from": "16d"})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert b"realtime queries cover only the last 14 days" in proc.stderr
    _assert_exactly_once([event_id(r) for r in parse_lines(proc.stdout)], _all_ids(sim))
    paths = _stats(sim)["paths"]
    assert paths.get("POST /api/v2/audits/query", 0) >= 1 and paths.get("POST realtime", 0) >= 1, paths
    assert run_cli("run", "--once", "--config", str(cfg)).stdout == b""


def test_realtime_events_arriving_between_pages_are_not_skipped(tmp_path: Path, simulator: Any) -> None:
    # Two events arrive before every page request, in the millisecond last served and sorted ahead
    # of it: `pageNumber + 1` on the first query would step past every one of them.
    sim = simulator(events=500, burst_every=0, realtime_arrivals=100)
    cfg = _config(tmp_path, sim, "audits-realtime", page=10)
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert _stats(sim)["realtime_arrived"] == 100
    _assert_exactly_once([event_id(r) for r in parse_lines(proc.stdout)], _all_ids(sim))


def test_realtime_sends_expand_user(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=100)
    cfg = _config(tmp_path, sim, "audits-realtime", page=50)
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    names = {e["id"]: e["user"]["name"] for e in sim.all_events()}
    records = parse_lines(proc.stdout)
    assert len(records) == 100
    assert all(r["siem_actor_name"] == names[r["siem_event_id"]] for r in records)


# -- events-cursor -------------------------------------------------------------------------------
def test_events_cursor_siem_is_the_guides_template(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=300)
    cfg = _config(tmp_path, sim, "events-cursor", page=100, output={"chain": "off"})  # the mapping alone
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    guide = {e["id"]: guide_shape(e) for e in sim.all_events()}
    records = parse_lines(proc.stdout)
    assert len(records) == len(guide)
    for rec in records:
        src = guide[rec["siem_event_id"]]
        assert rec == {
            "siem_timestamp": src["date"], "siem_event_id": src["id"], "siem_actor_id": src["actorId"],
            "siem_actor_name": src["actorName"], "siem_event_type": src["eventType"],
            "siem_entity_id": src["entityId"], "siem_entity_type": src["entityType"],
            "siem_raw_payload": src["data"], "audit_tier": "standard",
        }


@pytest.mark.parametrize("schema", ["siem", "ecs", "ocsf", "cim", "asim", "raw"])
def test_every_schema_runs_over_events_cursor_events(tmp_path: Path, simulator: Any, schema: str) -> None:
    sim = simulator(events=200)
    qfile = tmp_path / "quarantine.ndjson"
    cfg = _config(tmp_path, sim, "events-cursor", page=100, output={"schema": schema, "quarantine": str(qfile)})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert len(parse_lines(proc.stdout)) == 200
    assert not qfile.exists() or qfile.read_bytes() == b""
    assert b"quarantin" not in proc.stderr.lower()


def test_events_cursor_malformed_events_are_quarantined(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=200, malformed=3)
    qfile = tmp_path / "quarantine.ndjson"
    cfg = _config(tmp_path, sim, "events-cursor", page=100, output={"quarantine": str(qfile)})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert len(parse_lines(proc.stdout)) == 197
    assert len(qfile.read_bytes().splitlines()) == 3


def test_events_cursor_pushes_exact_include_rules_as_event_type(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=600)
    rules = [{"service": "Directory", "entity_type": "User", "action": "Update"},
             {"service": "Routing", "entity_type": "Queue", "action": "Create"}]
    cfg = _config(tmp_path, sim, "events-cursor", page=100, filters={"include": rules},
                  routing={"tiers": [{"tier": "high_value", "rules": [{"service": "Directory", "action": "Update"}]}]})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    wanted = {(r["service"], r["entity_type"], r["action"]) for r in rules}
    want = {e["id"]: e for e in sim.all_events() if (e["serviceName"], e["entityType"], e["action"]) in wanted}
    records = parse_lines(proc.stdout)
    _assert_exactly_once([event_id(r) for r in records], set(want))
    # Filtered by the server (only matching events were sent), and the config's spelling of the
    # lower-case eventType parts still matches the rules written as `services` prints them.
    assert _stats(sim)["events_served"] == len(want)
    for rec in records:
        tier = "high_value" if want[rec["siem_event_id"]]["serviceName"] == "Directory" else "standard"
        assert rec["audit_tier"] == tier


def test_events_cursor_glob_rule_filters_client_side(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=300)
    cfg = _config(tmp_path, sim, "events-cursor", page=100, filters={"include": [{"entity_type": "Us*"}]})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    want = {e["id"] for e in sim.all_events() if e["entityType"].startswith("Us")}
    _assert_exactly_once([event_id(r) for r in parse_lines(proc.stdout)], want)
    assert _stats(sim)["events_served"] == 300


def test_events_cursor_gives_up_after_bounded_resets(tmp_path: Path, simulator: Any) -> None:
    # All 300 events share one millisecond and every cursor is rejected: each reset returns the same
    # first page, so after five resets without a new event the run fails cleanly instead of looping.
    sim = simulator(events=300, burst_every=1, burst_size=(300, 300), fault_rate=1.0, faults=("expire",))
    cfg = _config(tmp_path, sim, "events-cursor", page=50)
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 1
    assert_no_traceback(proc.stderr)
    assert b"rejected 6 times in a row without progress" in proc.stderr
    assert proc.stderr.count(b"cursor rejected; resetting it") == 5
    ids = [event_id(r) for r in parse_lines(proc.stdout)]
    assert len(ids) == len(set(ids)) == 50


def test_cursor_page_size_is_validated(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=1)
    cfg = _config(tmp_path, sim, "events-cursor", page=50, poll={"cursor_page_size": 101})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 2
    assert b"poll.cursor_page_size" in proc.stderr


# -- operator verbs per source -------------------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
def test_services_prints_the_mapping(tmp_path: Path, simulator: Any, api: str) -> None:
    sim = simulator(events=1)
    cfg = _config(tmp_path, sim, api)
    proc = run_cli("services", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    lines = proc.stdout.decode().splitlines()
    assert lines[0].split() == ["service", "entity_type", "actions"]
    assert any(line.split() == ["Directory", "User", "Create,", "Update,", "Delete,", "View"] for line in lines)
    assert any(line.startswith("Workforce Management") for line in lines)
    key = "GET realtime/servicemapping" if api == "audits-realtime" else "GET servicemapping"
    assert _stats(sim)["paths"].get(key) == 1


@pytest.mark.parametrize("api", APIS)
def test_check_probes_each_source(tmp_path: Path, simulator: Any, api: str) -> None:
    sim = simulator(events=50, span=1800)
    cfg = _config(tmp_path, sim, api)
    proc = run_cli("check", "--config", str(cfg))
    out = proc.stdout.decode()
    assert "ok    permission: audit query works (1 event(s) in the last hour)" in out, out + proc.stderr.decode()
    if api == "events-cursor":
        assert json.dumps(_stats(sim)["paths"]).count("auditlogs/events") == 1


# -- audits-query with the realtime tail -------------------------------------------------------------
def test_the_realtime_tail_reads_recent_windows_and_the_async_query_older_ones(tmp_path: Path,
                                                                              simulator: Any) -> None:
    # Dense enough that a catch-up's chunks shrink below an hour; all at least 3 hours old.
    sim = simulator(events=30000, span=4 * 3600, newest_age=3 * 3600, query_delay=0.0)
    poll = {"start_from": "8h", "late_window": "30m", "settle_delay": "5s", "tail": "realtime"}
    cfg = _config(tmp_path, sim, "audits-query", page=100, poll=poll)
    first = run_cli("run", "--once", "--config", str(cfg))
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    _assert_exactly_once([event_id(r) for r in parse_lines(first.stdout)], _all_ids(sim))
    catch_up = _stats(sim)["paths"]
    # Hours-old windows through transactions, whose cursor pages never re-read a burst (realtime
    # may still read the empty recent hours).
    assert catch_up.get("POST /api/v2/audits/query", 0) >= 1, catch_up
    assert _stats(sim)["events_served"] == 30000
    # A cycle with nothing new (the late re-read and the main pass): realtime requests only.
    again = run_cli("run", "--once", "--config", str(cfg))
    assert again.returncode == 0 and again.stdout == b""
    idle = {k: v - catch_up.get(k, 0) for k, v in _stats(sim)["paths"].items() if v != catch_up.get(k, 0)}
    assert set(idle) <= {"POST realtime", "POST /oauth/token"} and idle.get("POST realtime", 0) >= 1, idle

"""A hostile or broken API: wrong shapes, endless cursors, lost transactions, broken order, a lying
clock, poisoned events. Every run ends in bounded time; a run that exits 0 lost nothing, and one
that cannot go on says why in one line and does not move past what it did not write."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shipper.simulator import SHAPES

from .conftest import assert_no_traceback, event_id, kill_loop, parse_lines, run_cli, write_config

FAST = {"max_retries": 2, "backoff_base": "0.02s", "backoff_max": "0.1s", "requests_per_minute": 60000}


def _ids(out: bytes) -> list[str]:
    ids = []
    for line in out.split(b"\n"):
        if line.strip():
            try:
                ids.append(event_id(json.loads(line)))
            except ValueError:
                continue  # a kill -9 can cut the last line
    return ids


def _one_error_line(stderr: bytes) -> str:
    assert_no_traceback(stderr)
    errors = [json.loads(line) for line in stderr.splitlines() if b'"level":"error"' in line]
    assert errors, stderr.decode()[-2000:]
    return str(errors[-1]["message"])


CASES = [(endpoint, shape) for endpoint, shapes in SHAPES.items() for shape in shapes]


@pytest.mark.parametrize(("endpoint", "shape"), CASES, ids=[f"{e}-{s}" for e, s in CASES])
def test_a_wrong_shaped_answer_fails_the_run_and_loses_nothing(tmp_path: Path, simulator: Any, endpoint: str,
                                                               shape: str) -> None:
    pages_first = endpoint in ("results", "realtime")
    sim = simulator(events=700, shape_after=3 if pages_first else 0, **{f"{endpoint}_shape": shape})
    api = "audits-realtime" if endpoint == "realtime" else "audits-query"
    cfg = write_config(tmp_path, sim.url, genesys={"api": api}, poll={"page_size": 100}, rate_limit=FAST)
    first = run_cli("run", "--once", "--config", str(cfg), timeout=60)
    assert first.returncode == 1, first.stderr.decode()[-2000:]
    message = _one_error_line(first.stderr)
    assert "answer" in message and ("shape" in message or "token" in message), message
    written = _ids(first.stdout)
    if pages_first:
        assert written, "the good pages before the bad answer were written"
    setattr(sim.cfg, f"{endpoint}_shape", None)  # the API heals
    second = run_cli("run", "--once", "--config", str(cfg), timeout=60)
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    ids = written + _ids(second.stdout)
    assert sorted(ids) == sorted(e["id"] for e in sim.all_events())  # lost 0, repeated 0


@pytest.mark.parametrize(("api", "loop"), [("audits-query", "empty"), ("audits-query", "repeat"),
                                           ("events-cursor", "empty"), ("events-cursor", "repeat")])
def test_a_cursor_that_never_ends_fails_in_bounded_time(tmp_path: Path, simulator: Any, api: str, loop: str) -> None:
    sim = simulator(events=600, cursor_loop=loop)
    cfg = write_config(tmp_path, sim.url, genesys={"api": api}, poll={"page_size": 100, "cursor_page_size": 100},
                       rate_limit=FAST)
    started = time.monotonic()
    proc = run_cli("run", "--once", "--config", str(cfg), timeout=60)
    assert time.monotonic() - started < 30
    assert proc.returncode == 1, proc.stderr.decode()[-2000:]
    assert "cursor" in _one_error_line(proc.stderr)
    ids = _ids(proc.stdout)
    assert len(ids) == len(set(ids))  # the repeated page was never written twice


def test_a_transaction_lost_after_every_first_page_inside_a_bulk_operation_ends(tmp_path: Path,
                                                                                simulator: Any) -> None:
    # Bursts of 400 events share one millisecond; pages of 50; every transaction dies after one page.
    sim = simulator(events=1200, burst_every=300, burst_size=(400, 400), txn_pages=1)
    cfg = write_config(tmp_path, sim.url, poll={"page_size": 50}, rate_limit=FAST)
    started = time.monotonic()
    first = run_cli("run", "--once", "--config", str(cfg), timeout=120)
    assert time.monotonic() - started < 60
    assert first.returncode == 1, first.stderr.decode()[-2000:]
    assert "new event" in _one_error_line(first.stderr)  # no progress possible: said, not looped
    sim.cfg.txn_pages = 0  # transactions live again
    second = run_cli("run", "--once", "--config", str(cfg), timeout=120)
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    ids = _ids(first.stdout) + _ids(second.stdout)
    assert sorted(ids) == sorted(e["id"] for e in sim.all_events())


def test_a_storm_of_faults_short_transactions_and_too_large_pages_still_finishes(tmp_path: Path,
                                                                                 simulator: Any) -> None:
    sim = simulator(events=2500, fault_rate=0.15, token_ttl=6, txn_ttl=2.0, max_page_bytes=60_000,
                    large_fraction=0.05, huge_events=0)
    cfg = write_config(tmp_path, sim.url, poll={"page_size": 200},
                       rate_limit={"max_retries": 6, "backoff_base": "0.02s", "backoff_max": "0.2s",
                                   "requests_per_minute": 60000},
                       output={"max_line_bytes": 1 << 20}, genesys={"token_refresh_margin": "500s"})
    ids: list[str] = []
    for _ in range(8):
        proc = run_cli("run", "--once", "--config", str(cfg), timeout=120)  # each run ends by itself
        assert_no_traceback(proc.stderr)
        ids += _ids(proc.stdout)
        if proc.returncode == 0:
            break
    assert proc.returncode == 0
    assert sorted(ids) == sorted(e["id"] for e in sim.all_events())
    # A token that lives 6 s is refreshed at half its life, not before every request.
    assert sim.stats.token_requests < sim.stats.requests / 4


def test_a_lost_transaction_resumes_at_the_newest_event_read_not_the_window_start(tmp_path: Path,
                                                                                 simulator: Any) -> None:
    sim = simulator(events=4000, burst_every=0, fault_rate=0.3, faults=("expire",), span=3600)
    cfg = write_config(tmp_path, sim.url, poll={"page_size": 100, "start_from": "2h", "tail": "query"}, rate_limit=FAST)
    proc = run_cli("run", "--once", "--config", str(cfg), timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert sorted(_ids(proc.stdout)) == sorted(e["id"] for e in sim.all_events())
    assert sim.stats.faults["expire"] >= 5
    # Re-reading from the window's start costs about as many pages again per restart; resuming at
    # the newest event read costs one page per restart.
    pages = sim.stats.events_served / 100
    assert pages < 40 + 2 * sim.stats.faults["expire"], (pages, sim.stats.faults)


def test_a_lost_transaction_of_a_server_out_of_order_is_read_again_from_its_start(tmp_path: Path,
                                                                                 simulator: Any) -> None:
    sim = simulator(events=1000, burst_every=0, fault_rate=0.08, faults=("expire",), shuffle=True, span=3600)
    cfg = write_config(tmp_path, sim.url, poll={"page_size": 100, "start_from": "2h", "tail": "query"}, rate_limit=FAST)
    ids: list[str] = []
    for _ in range(4):
        proc = run_cli("run", "--once", "--config", str(cfg), timeout=120)
        ids += _ids(proc.stdout)
        if proc.returncode == 0:
            break
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert sim.stats.faults["expire"] >= 1
    assert sorted(ids) == sorted(e["id"] for e in sim.all_events())


def test_overlapping_pages_that_repeat_old_events_write_nothing_twice(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=1500, repeat_older_than=60, repeat_count=5)
    cfg = write_config(tmp_path, sim.url, poll={"page_size": 100, "late_window": "30s"}, rate_limit=FAST)
    proc = run_cli("run", "--once", "--config", str(cfg), timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    ids = _ids(proc.stdout)
    assert sorted(ids) == sorted(e["id"] for e in sim.all_events())


def test_a_server_that_breaks_its_sort_order_loses_nothing_through_kill_9(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=6000, shuffle=True, span=6 * 3600)
    cfg = write_config(tmp_path, sim.url, poll={"page_size": 100, "start_from": "7h"},
                       rate_limit={"requests_per_minute": 1200}, output={"max_line_bytes": 1 << 20})
    outputs, kills = kill_loop(tmp_path, cfg, kills=6, seed=7, wait=(0.8, 2.0), runs=30)
    assert kills >= 3
    counts = Counter(i for data in outputs for i in _ids(data))
    assert set(counts) == {e["id"] for e in sim.all_events()}  # lost 0
    assert sum(counts.values()) - len(counts) <= kills * 100  # at most one page again per kill


def test_a_server_clock_hours_behind_ours_loses_nothing(tmp_path: Path, simulator: Any) -> None:
    offset = -3 * 3600.0  # this host's clock runs three hours ahead of the API's
    sim = simulator(events=300, clock_offset=offset, live_rate=5.0)
    cfg = write_config(tmp_path, sim.url, rate_limit=FAST)
    first = run_cli("run", "--once", "--config", str(cfg), timeout=60)
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    assert b"clock differs" in first.stderr
    time.sleep(3)  # new events arrive, stamped with the API's clock
    second_started_ms = (time.time() + offset) * 1000
    second = run_cli("run", "--once", "--config", str(cfg), timeout=60)
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    ids = _ids(first.stdout) + _ids(second.stdout)
    assert len(ids) == len(set(ids))
    # Everything older than the second run's horizon (its start, less settle_delay of 1 s) is due.
    settled = {e["id"] for e in sim.all_events() if _ms(e["eventDate"]) < second_started_ms - 1500}
    assert settled - set(ids) == set()
    assert len(settled) > 300  # live events arrived in between and were shipped


def _ms(date: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp() * 1000


@pytest.mark.parametrize("schema", ["siem", "raw", "ecs"])
def test_poisoned_events_are_quarantined_or_repaired_and_never_block(tmp_path: Path, simulator: Any,
                                                                      schema: str) -> None:
    sim = simulator(events=400, nested_events=2, invalid_utf8_events=3, empty_id_events=2, bad_date_events=5)
    qfile = tmp_path / "quarantine.ndjson"
    cfg = write_config(tmp_path, sim.url, output={"schema": schema, "quarantine": str(qfile)}, rate_limit=FAST)
    for _ in range(2):  # the second run must not be blocked by what the first one met
        proc = run_cli("run", "--once", "--config", str(cfg), timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        assert_no_traceback(proc.stderr)
        text = proc.stdout.decode("utf-8")  # valid UTF-8, or this raises
        records = [json.loads(line) for line in text.splitlines() if line]
        if _ == 0:
            assert len(records) == 400 - 2 - 2 - 5  # the invalid UTF-8 ones are repaired and shipped
            assert "\ufffd" in text
        else:
            assert records == []
    reasons = [json.loads(line)["reason"] for line in qfile.read_text().splitlines()]
    assert len(reasons) == 9
    assert sum("nested too deeply" in r for r in reasons) == 2


def test_an_absurd_retry_after_is_capped_and_logged(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=100, throttle_first=2, retry_after="1e9")
    cfg = write_config(tmp_path, sim.url, rate_limit={"backoff_max": "0.5s", "backoff_base": "0.05s",
                                                      "requests_per_minute": 60000})
    started = time.monotonic()
    proc = run_cli("run", "--once", "--config", str(cfg), timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert time.monotonic() - started < 20
    assert b"Retry-After is implausibly long" in proc.stderr
    assert len(parse_lines(proc.stdout)) == 100

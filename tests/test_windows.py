"""Windows, positions and the source's recovery paths: 31-day split, too-large pages, downloadUrl,
--max-runtime, retention, health probe, sidecar file output."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from shipper.core.ledger import DAY_MS, Ledger, pack_seen, plan_windows, unpack_seen
from shipper.output.sinks import RotatingFileSink

from .conftest import assert_no_traceback, event_id, parse_lines, run_cli, write_config


def test_plan_windows_splits_at_31_days() -> None:
    wins = list(plan_windows(0, 70 * DAY_MS, 31 * DAY_MS))
    assert wins == [(0, 31 * DAY_MS), (31 * DAY_MS, 62 * DAY_MS), (62 * DAY_MS, 70 * DAY_MS)]
    assert list(plan_windows(5, 5)) == []


def test_ledger_forgets_only_ids_before_recheck() -> None:
    ledger = Ledger(100, 50)
    ledger.remember(1, 60)
    ledger.remember(2, 80)
    ledger.remember(3, 80)
    ledger.advance_recheck(80)
    assert set(ledger.seen) == {2, 3}  # the boundary millisecond is kept: bulk ids at 80 stay remembered
    packed = pack_seen(ledger.seen)
    assert unpack_seen(packed) == ledger.seen
    with pytest.raises(ValueError):
        unpack_seen(packed[:-3])
    ledger.advance_recheck(500)  # never past the frontier
    assert ledger.recheck == 100


def test_catch_up_longer_than_31_days(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=900, span=70 * 86400)
    cfg = write_config(tmp_path, sim.url, poll={"start_from": "75d"})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-1500:]
    assert sorted(event_id(r) for r in parse_lines(proc.stdout)) == sorted(e["id"] for e in sim.all_events())
    assert sim.stats.paths["POST /api/v2/audits/query"] >= 3


def test_too_large_pages_shrink_then_download(tmp_path: Path, simulator: Any) -> None:
    # Pages over 20 KB are refused; the 120 KB events are too large even alone: they come via downloadUrl.
    sim = simulator(events=400, huge_events=2, large_fraction=0.02, max_page_bytes=20_000)
    cfg = write_config(tmp_path, sim.url, output={"max_line_bytes": 1024 * 1024})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-1500:]
    records = parse_lines(proc.stdout)
    assert sorted(event_id(r) for r in records) == sorted(e["id"] for e in sim.all_events())
    assert sim.stats.paths["GET download"] >= 2
    assert b"page too large" in proc.stderr
    assert sim.stats.max_page_size <= 500


def test_max_runtime_stops_at_a_page_boundary_then_resumes(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=6000)
    # 120 requests/min: a full catch-up would need far longer than the 4 s allowed.
    cfg = write_config(tmp_path, sim.url, rate_limit={"requests_per_minute": 120})
    started = time.monotonic()
    first = run_cli("run", "--once", "--max-runtime", "4s", "--config", str(cfg))
    assert first.returncode == 0, first.stderr.decode()[-1500:]
    assert time.monotonic() - started < 4 + 2.5  # interpreter start-up and exit on top of the budget
    got = [event_id(r) for r in parse_lines(first.stdout)]
    assert 0 < len(got) < 6000
    cfg = write_config(tmp_path, sim.url)
    rest = run_cli("run", "--once", "--config", str(cfg))
    got += [event_id(r) for r in parse_lines(rest.stdout)]
    assert sorted(got) == sorted(e["id"] for e in sim.all_events())


def test_position_older_than_retention_is_reported_as_gap(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=100, span=3600)
    cfg = write_config(tmp_path, sim.url, poll={"start_from": "3h", "retention": "2h"})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0
    assert b"older than poll.retention" in proc.stderr
    status = run_cli("status", "--json", "--config", str(cfg))
    assert b'"gaps_reported":1' in status.stdout
    assert len(parse_lines(proc.stdout)) == 100


class _FailingSource:
    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    def probe(self) -> int:
        from shipper.errors import ApiError

        self.calls += 1
        raise ApiError("probe: HTTP 503")

    def pages(self, start_ms: int, end_ms: int) -> Any:
        return iter(())


def test_health_probe_failure_is_logged_and_backs_off(tmp_path: Path, caplog: Any) -> None:
    from shipper import logs
    from shipper.config import config_from_mapping
    from shipper.core.checkpoint import Checkpoint
    from shipper.core.engine import Engine
    from shipper.core.pipeline import Pipeline
    from shipper.lifecycle import Lifecycle
    from shipper.output.sinks import RotatingFileSink
    from shipper.output.writer import Writer
    from shipper.store.file import FileStore
    from shipper.telemetry.counters import Counters

    cfg = config_from_mapping({"state": {"path": str(tmp_path / "s.json")}, "poll": {"health_interval": "1h"}})
    store = FileStore(cfg.state.path)
    store.acquire()
    source = _FailingSource()
    lifecycle = Lifecycle()
    writer = Writer(RotatingFileSink(str(tmp_path / "o"), 1 << 20, 1), lifecycle)
    checkpoint = Checkpoint(store, Counters())
    checkpoint.load(lambda: 0)
    engine = Engine(cfg=cfg, source=source, pipeline=Pipeline(cfg), checkpoint=checkpoint, writer=writer,  # type: ignore[arg-type]
                    quarantine=writer.quarantine(None), lifecycle=lifecycle)
    logger = logs.get_logger()
    logger.propagate = True
    try:
        with caplog.at_level(logging.ERROR, logger=logs.LOGGER_NAME):
            now = time.monotonic()
            due, backoff = engine._health(60.0)
            assert 59 <= due - now <= 61 and backoff == 120.0
            due, backoff = engine._health(backoff)
            assert backoff == 240.0
    finally:
        logger.propagate = False
        store.release()
    assert source.calls == 2
    assert sum("health probe failed" in r.getMessage() for r in caplog.records) == 2
    last_error = engine.checkpoint.status.last_error
    assert last_error and "503" in last_error


def test_rotating_file_sink(tmp_path: Path) -> None:
    path = tmp_path / "audit.ndjson"
    sink = RotatingFileSink(str(path), rotate_bytes=4096, keep_files=2)
    lines = [f'{{"n":{i},"pad":"{"x" * 100}"}}'.encode() for i in range(200)]
    for i in range(0, 200, 10):
        sink.write_page(b"".join(line + b"\n" for line in lines[i:i + 10]))
    sink.close()
    files = sorted(tmp_path.glob("audit.ndjson*"))
    assert [f.name for f in files] == ["audit.ndjson", "audit.ndjson.1", "audit.ndjson.2"]
    assert all(f.stat().st_size <= 4096 for f in files)
    kept = [line for f in (files[2], files[1], files[0]) for line in f.read_bytes().splitlines()]
    assert kept == lines[-len(kept):]  # the newest lines, in order, none split


def test_sidecar_output_path(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=500)
    out = tmp_path / "audit.ndjson"
    cfg = write_config(tmp_path, sim.url, output={"path": str(out), "rotate_bytes": 10 * 1024 * 1024})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0 and proc.stdout == b""
    assert_no_traceback(proc.stderr)
    ids = [event_id(r) for r in parse_lines(out.read_bytes())]
    assert sorted(ids) == sorted(e["id"] for e in sim.all_events())


def test_max_runtime_holds_even_when_an_answer_hangs(tmp_path: Path, simulator: Any) -> None:
    # Every answer takes 20 s: the run must still end (exit 0, nothing written) before its 5 s budget.
    sim = simulator(events=100, fault_rate=1.0, faults=("slow",), slow_seconds=20)
    cfg = write_config(tmp_path, sim.url)
    started = time.monotonic()
    proc = run_cli("run", "--once", "--max-runtime", "5s", "--config", str(cfg), timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr.decode()[-1500:]
    assert elapsed < 5 + 1.0, elapsed  # interpreter start-up on top of the budget
    assert proc.stdout == b""
    assert_no_traceback(proc.stderr)

"""The delivery promise under attack: kill -9 loops, fault storms, late arrivals. Real CLI, real sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from .conftest import CLI, assert_no_traceback, event_id, kill_loop, run_cli, write_config


def _complete_ids(data: bytes) -> list[str]:
    """Ids of complete lines; a kill -9 can leave one partial line, which does not count as delivered."""
    ids = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            ids.append(event_id(json.loads(line)))
        except ValueError:
            continue
    return ids


def test_kill9_crash_loop_loses_nothing(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=20_000, seed=11, span=12 * 3600)
    page_size = 100
    # Paced to 15 requests/s so the ~14 s catch-up spans all twelve kills.
    cfg = write_config(tmp_path, sim.url, poll={"start_from": "14h", "page_size": page_size},
                       output={"max_line_bytes": 16384}, rate_limit={"requests_per_minute": 900})
    outputs, kills = kill_loop(tmp_path, cfg, kills=12, seed=2026, wait=(0.5, 1.5), only_killed_fail=True)
    assert kills == 12
    counts = Counter(i for data in outputs for i in _complete_ids(data))
    expected = {e["id"] for e in sim.all_events()}
    lost = expected - set(counts)
    duplicates = sum(c - 1 for c in counts.values())
    assert not lost, f"lost {len(lost)} events"
    assert duplicates <= kills * page_size, duplicates
    assert set(counts) == expected
    # The state still loads and says we are done.
    final = run_cli("run", "--once", "--config", str(cfg))
    assert final.returncode == 0 and final.stdout == b""


def test_fault_storm_delivers_every_event_once(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=3000, seed=5, fault_rate=0.12, token_ttl=8, txn_ttl=6.0, max_page_bytes=150_000,
                    rate_limit=40, rate_window=4.0, slow_seconds=0.5, query_delay=0.3)
    cfg = write_config(
        tmp_path, sim.url,
        rate_limit={"requests_per_minute": 600, "max_retries": 6, "backoff_base": "0.1s", "backoff_max": "2s"},
        genesys={"token_refresh_margin": "2s", "read_timeout": "5s"},
        output={"max_line_bytes": 1024 * 1024},
    )
    seen: list[str] = []
    for _ in range(12):
        proc = run_cli("run", "--once", "--config", str(cfg), timeout=600)
        assert_no_traceback(proc.stderr)
        seen += _complete_ids(proc.stdout)
        if proc.returncode == 0:
            break
        assert proc.returncode == 1, proc.stderr.decode()[-2000:]
    assert proc.returncode == 0, "still failing after 12 reruns"
    stats = requests.get(f"{sim.url}/__sim/stats", timeout=5).json()
    counts = Counter(seen)
    assert set(counts) == {e["id"] for e in sim.all_events()}, "lost events"
    assert max(counts.values()) == 1, "duplicates"
    assert stats["retry_after_violations"] == 0
    assert sum(stats["faults"].values()) > 20, stats["faults"]  # the storm really happened
    for kind in ("500", "503", "reset", "truncated", "revoke", "expire", "storm"):
        assert stats["faults"].get(kind, 0) > 0, kind
    assert stats["max_page_size"] <= 500


def test_late_arrivals_delivered_once_by_running_daemon(tmp_path: Path, simulator: Any) -> None:
    # 40 % of the newest events appear 10-20 s after the daemon starts, 135-175 s after their eventDate.
    sim = simulator(events=6000, seed=9, span=900, newest_age=135, late_fraction=0.4, late_max_age=155,
                    late_delay=(10.0, 20.0))
    late_ids = {e.id for e in sim.store.events if e.visible_at > 0}
    assert len(late_ids) >= 10
    cfg = write_config(tmp_path, sim.url, poll={"start_from": "1h", "late_window": "3m", "interval": "1s",
                                                "settle_delay": "1s"})
    out_path = tmp_path / "out.ndjson"
    with open(out_path, "wb") as out:
        daemon = subprocess.Popen([*CLI, "run", "--config", str(cfg)], stdout=out, stderr=subprocess.PIPE)
    expected = {e["id"] for e in sim.all_events()}
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if set(_complete_ids(out_path.read_bytes())) >= expected:
                break
            time.sleep(0.5)
        time.sleep(2)  # a window for any duplicate to show up
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, err.decode()[-2000:]
    assert_no_traceback(err)
    counts = Counter(_complete_ids(out_path.read_bytes()))
    assert set(counts) == expected, f"missing {len(expected - set(counts))} (late: {len(late_ids)})"
    assert max(counts.values()) == 1
    stats = requests.get(f"{sim.url}/__sim/stats", timeout=5).json()
    assert stats["events_served"] <= 3 * len(expected), stats["events_served"]
    # A restart remembers what the late window emitted and repeats nothing.
    again = run_cli("run", "--once", "--config", str(cfg))
    assert again.returncode == 0 and again.stdout == b""


def test_corrupt_state_is_an_error_not_a_restart(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=50)
    cfg = write_config(tmp_path, sim.url)
    (tmp_path / "state.json").write_text("{not json")
    os.chmod(tmp_path / "state.json", 0o600)
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 1
    assert b"corrupt" in proc.stderr and proc.stdout == b""
    assert_no_traceback(proc.stderr)


def test_symlinked_state_refused(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=5)
    cfg = write_config(tmp_path, sim.url)
    (tmp_path / "elsewhere.json").write_text("{}")
    os.symlink(tmp_path / "elsewhere.json", tmp_path / "state.json")
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 1 and b"symlink" in proc.stderr


def test_world_writable_state_dir_refused(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=5)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    cfg = write_config(tmp_path, sim.url, state={"path": str(shared / "state.json")})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 1 and b"world-writable" in proc.stderr

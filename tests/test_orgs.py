"""Many orgs from one deployment, with the real CLI against a simulator serving one org per client id."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipper.simulator import Simulator, org_configs
from shipper.store.file import FileStore

from .conftest import CLI, assert_no_traceback, kill_loop, run_cli

FAST = {"requests_per_minute": 60000, "backoff_base": "0.02s", "backoff_max": "0.2s", "max_retries": 2}


@pytest.fixture
def sim3() -> Iterator[Simulator]:
    with Simulator(orgs=org_configs(3, events=700, span=4 * 3600)) as sim:
        yield sim


def _config(tmp: Path, sim: Simulator, names: tuple[str, ...] = ("prod-eu", "test", "sandbox"),
            secrets: dict[int, str] | None = None, **top: Any) -> Path:
    orgs = [{"name": name, "genesys": {"client_id": f"org{i + 1}-client",
                                       "client_secret": (secrets or {}).get(i, f"org{i + 1}-secret")}}
            for i, name in enumerate(names)]
    doc: dict[str, Any] = {
        "genesys": {"api_url": sim.url, "login_url": sim.url},
        "poll": {"start_from": "5h", "interval": "1s", "settle_delay": "1s", "late_window": "30s", "page_size": 100},
        "rate_limit": FAST,
        "state": {"path": str(tmp / "state.json")},
        "output": {"replay_on_start": 0},  # as tests/conftest.py: replays are tested on their own
        "orgs": orgs,
        **top,
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _records(out: bytes) -> list[dict[str, Any]]:
    records = []
    for line in out.split(b"\n"):
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # empty, or cut by a kill -9
    return records


def _truth(sim: Simulator, names: tuple[str, ...] = ("prod-eu", "test", "sandbox")) -> dict[str, set[str]]:
    return {name: {e["id"] for e in sim.all_events(f"org{i + 1}-client")} for i, name in enumerate(names)}


def test_three_orgs_each_delivered_once_and_tagged(tmp_path: Path, sim3: Simulator) -> None:
    cfg = _config(tmp_path, sim3, metrics={"textfile": str(tmp_path / "m.prom"), "stats_interval": "0s"})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    got: dict[str, list[str]] = {}
    for r in _records(proc.stdout):
        got.setdefault(r["genesys_org"], []).append(r["siem_event_id"])
    truth = _truth(sim3)
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in truth.items()}
    assert {r["audit_stream"] for r in _records(proc.stdout)} == {"prod-eu/standard", "test/standard",
                                                                 "sandbox/standard"}
    assert all(len(v) == len(set(v)) for v in got.values())
    prom = (tmp_path / "m.prom").read_text()
    assert 'genesys_audit_events_emitted_total{org="prod-eu"} 700' in prom
    assert all(f'org="{n}"' in prom for n in ("test", "sandbox"))
    status = run_cli("status", "--config", str(cfg), "--json")
    rows = json.loads(status.stdout)
    assert [(r["org"], r["events_emitted"]) for r in rows] == [("prod-eu", 700), ("test", 700), ("sandbox", 700)]
    table = run_cli("status", "--config", str(cfg)).stdout.decode().splitlines()
    assert table[0].startswith("org") and len(table) == 4
    export = tmp_path / "export.ndjson"
    export.write_bytes(proc.stdout)
    assert run_cli("verify", str(export), "--config", str(cfg)).returncode == 0  # one chain per org


def test_one_org_with_a_bad_secret_does_not_stop_the_others(tmp_path: Path, sim3: Simulator) -> None:
    cfg = _config(tmp_path, sim3, secrets={1: "wrong-secret"})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 1
    assert_no_traceback(proc.stderr)
    truth = _truth(sim3)
    got = Counter(r["genesys_org"] for r in _records(proc.stdout))
    assert got == {"prod-eu": len(truth["prod-eu"]), "sandbox": len(truth["sandbox"])}
    failed = [json.loads(line) for line in proc.stderr.splitlines() if b'"message":"org failed"' in line]
    assert [f["org"] for f in failed] == ["test"] and "client id or secret" in failed[0]["reason"]
    assert b"1 of 3 orgs failed: test" in proc.stderr.splitlines()[-1]


def test_kill_9_during_a_three_org_catch_up_loses_nothing(tmp_path: Path) -> None:
    with Simulator(orgs=org_configs(3, events=3000, span=4 * 3600)) as sim:
        cfg = _config(tmp_path, sim, rate_limit={**FAST, "requests_per_minute": 900})
        outputs, kills = kill_loop(tmp_path, cfg, kills=4, seed=4, wait=(1.0, 2.5), runs=20)
        truth = _truth(sim)
    assert kills >= 2
    counts = Counter((r["genesys_org"], r["siem_event_id"]) for data in outputs for r in _records(data))
    for org, ids in truth.items():
        assert {i for (o, i) in counts if o == org} == ids  # lost 0
        repeats = sum(n - 1 for (o, _), n in counts.items() if o == org)
        assert repeats <= kills * 100  # at most one page per org per kill


def test_a_second_process_ships_only_the_orgs_it_can_lock(tmp_path: Path, sim3: Simulator) -> None:
    cfg = _config(tmp_path, sim3)
    holder = subprocess.Popen([*CLI, "run", "--org", "test", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        _wait_locked(tmp_path / "state.test.json.lock")
        proc = run_cli("run", "--once", "--config", str(cfg))
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        assert Counter(r["genesys_org"] for r in _records(proc.stdout)) == {"prod-eu": 700, "sandbox": 700}
        assert b"another process holds its lock" in proc.stderr
        # Every org locked: exit 3, as with one org.
        others = subprocess.Popen([*CLI, "run", "--org", "prod-eu", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        third = subprocess.Popen([*CLI, "run", "--org", "sandbox", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            _wait_locked(tmp_path / "state.prod-eu.json.lock")
            _wait_locked(tmp_path / "state.sandbox.json.lock")
            assert run_cli("run", "--once", "--config", str(cfg)).returncode == 3
        finally:
            for p in (others, third):
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=20)
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait(timeout=20)


def _wait_locked(lock: Path) -> None:
    deadline = time.monotonic() + 20
    store = FileStore(lock.with_name(lock.name.removesuffix(".lock")))
    while not store.is_locked_elsewhere():
        assert time.monotonic() < deadline, f"{lock} was never locked"
        time.sleep(0.05)


@pytest.mark.parametrize(("broken", "needle"), [
    ({"genesys": {"client_secret": "x"}}, "orgs[1].genesys.client_id"),
    ({"name": "Bad Name", "genesys": {"client_id": "a", "client_secret": "b"}}, "orgs[1].name"),
    ({"name": "a2", "genesys": {"client_id": "a", "client_secret": "b"}, "poll": {"page_size": 9000}},
     "orgs[1].poll.page_size"),
    ({"name": "a3", "genesys": {"client_id": "a", "client_secret": "b"}, "output": {"path": "/tmp/x"}},
     "orgs[1].output.path"),
])
def test_a_config_error_in_one_org_names_it_and_exits_2(tmp_path: Path, sim3: Simulator, broken: dict[str, Any],
                                                         needle: str) -> None:
    cfg = _config(tmp_path, sim3)
    doc = yaml.safe_load(cfg.read_text())
    doc["orgs"][1] = {"name": "test", **broken}
    cfg.write_text(yaml.safe_dump(doc))
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 2, proc.stderr.decode()
    assert needle in proc.stderr.decode().splitlines()[-1]


def test_check_status_and_backfill_per_org(tmp_path: Path, sim3: Simulator) -> None:
    cfg = _config(tmp_path, sim3)
    check = run_cli("check", "--config", str(cfg), "--org", "sandbox")
    assert check.returncode == 0, check.stdout.decode()
    assert b"-- org sandbox" in check.stdout and b"-- org test" not in check.stdout
    assert run_cli("backfill", "--config", str(cfg), "--from", "5h").returncode == 2  # which org?
    back = run_cli("backfill", "--config", str(cfg), "--from", "5h", "--org", "test")
    assert back.returncode == 0, back.stderr.decode()
    assert {r["genesys_org"] for r in _records(back.stdout)} == {"test"}
    assert len(_records(back.stdout)) == 700
    assert run_cli("status", "--config", str(cfg), "--org", "nope").returncode == 2

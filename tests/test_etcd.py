"""Several collectors on a real etcd (Debian's etcd-server, started on loopback by the tests): one
leader per org, fencing, failover, a paused leader, an etcd outage, and the share-out of orgs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipper.config import EtcdConfig
from shipper.core.ledger import fold
from shipper.simulator import Simulator, org_configs
from shipper.store import Delta, State
from shipper.store.etcd import Coordinator, EtcdStore
from shipper.store.etcd_gateway import unb64

from .conftest import CLI, assert_no_traceback, run_cli

ETCD = shutil.which("etcd")
pytestmark = pytest.mark.skipif(ETCD is None, reason="etcd is not on PATH (Debian: apt-get install etcd-server)")
TTL = 3
FAST = {"requests_per_minute": 600, "backoff_base": "0.05s", "backoff_max": "0.5s", "max_retries": 3}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Etcd:
    """A real etcd on loopback, in its own data directory; stop() and start() keep the data."""

    def __init__(self, work: Path) -> None:
        self.data = work / "etcd-data"
        self.client, self.peer = _port(), _port()
        self.url = f"http://127.0.0.1:{self.client}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = open(work / "etcd.log", "ab")  # noqa: SIM115 - closed in stop_for_good

    def start(self) -> None:
        assert ETCD is not None
        self.proc = subprocess.Popen([ETCD, "--data-dir", str(self.data), "--listen-client-urls", self.url,
                                      "--advertise-client-urls", self.url, "--listen-peer-urls",
                                      f"http://127.0.0.1:{self.peer}", "--initial-advertise-peer-urls",
                                      f"http://127.0.0.1:{self.peer}", "--initial-cluster",
                                      f"default=http://127.0.0.1:{self.peer}"], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.client), timeout=0.2):
                    time.sleep(0.3)
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("etcd did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
            self.proc = None


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[Etcd]:
    server = Etcd(tmp_path)
    server.start()
    yield server
    server.stop()
    server.log.close()


def _config(tmp: Path, sim: Simulator, etcd: Etcd, n_orgs: int, prefix: str = "/gas/") -> Path:
    doc: dict[str, Any] = {
        "genesys": {"api_url": sim.url, "login_url": sim.url},
        "poll": {"start_from": "5h", "interval": "1s", "settle_delay": "1s", "late_window": "30s", "page_size": 100},
        "rate_limit": FAST,
        "state": {"backend": "etcd", "etcd": {"endpoints": [etcd.url], "prefix": prefix, "lease_ttl": f"{TTL}s"}},
        "output": {"replay_on_start": 0},
        "orgs": [{"name": f"o{i + 1}", "genesys": {"client_id": f"org{i + 1}-client",
                                                  "client_secret": f"org{i + 1}-secret"}} for i in range(n_orgs)],
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class Collector:
    def __init__(self, cfg: Path, work: Path, name: str) -> None:
        self.out, self.err = work / f"{name}.ndjson", work / f"{name}.log"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen([*CLI, "run", "--config", str(cfg)], stdout=out, stderr=err)

    def records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.out.read_bytes().split(b"\n"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.err.read_bytes().splitlines() if line.startswith(b"{")]

    def led_at(self, org: str) -> list[float]:
        return [_t(e["time"]) for e in self.logs() if e["message"] == "leading org" and e.get("org") == org]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _t(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _truth(sim: Simulator, n: int) -> dict[str, set[str]]:
    return {f"o{i + 1}": {e["id"] for e in sim.all_events(f"org{i + 1}-client")} for i in range(n)}


def _union(collectors: list[Collector]) -> Counter[tuple[str, str]]:
    return Counter((r["genesys_org"], r["siem_event_id"]) for c in collectors for r in c.records())


def _wait_complete(collectors: list[Collector], truth: dict[str, set[str]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    want = {(o, i) for o, ids in truth.items() for i in ids}
    while not want <= set(_union(collectors)):
        assert time.monotonic() < deadline, f"{len(want - set(_union(collectors)))} events never arrived"
        time.sleep(0.3)


def _leaders(etcd: Etcd, prefix: str = "/gas/") -> dict[str, str]:
    co = Coordinator(EtcdConfig(endpoints=[etcd.url], prefix=prefix), [])
    kvs = co.gateway.range(f"{prefix}orgs/", prefix=True)
    return {unb64(kv["key"]).decode().split("/")[-2]: unb64(kv["value"]).decode() for kv in kvs
            if unb64(kv["key"]).decode().endswith("/leader")}


def test_two_collectors_three_orgs_ship_everything_once(tmp_path: Path, etcd: Etcd) -> None:
    with Simulator(orgs=org_configs(3, events=2500, span=4 * 3600)) as sim:
        cfg = _config(tmp_path, sim, etcd, 3)
        a = Collector(cfg, tmp_path, "a")
        time.sleep(1.0)
        b = Collector(cfg, tmp_path, "b")
        try:
            _wait_complete([a, b], _truth(sim, 3), 90)
            leaders = _leaders(etcd)
        finally:
            a.stop()
            b.stop()
    assert set(leaders) == {"o1", "o2", "o3"} and len(set(leaders.values())) == 2  # shared out
    counts = _union([a, b])
    handovers = sum(e["message"].startswith("not leading") for c in (a, b) for e in c.logs())
    assert sum(counts.values()) - len(counts) <= 100 * max(1, handovers)
    export = tmp_path / "export.ndjson"
    export.write_bytes(a.out.read_bytes() + b.out.read_bytes())
    # One chain per org with no conflicting record: no two collectors ever wrote an org at once.
    proc = run_cli("verify", str(export), "--json")
    assert proc.returncode == 0, proc.stdout.decode()[:2000]
    assert_no_traceback(a.err.read_bytes() + b.err.read_bytes())


def test_kill_9_of_a_leader_the_other_takes_over_in_time(tmp_path: Path, etcd: Etcd) -> None:
    with Simulator(orgs=org_configs(1, events=4000, span=4 * 3600)) as sim:
        cfg = _config(tmp_path, sim, etcd, 1)
        a = Collector(cfg, tmp_path, "a")
        time.sleep(1.5)
        b = Collector(cfg, tmp_path, "b")
        try:
            deadline = time.monotonic() + 20
            while len(a.records()) < 600:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            killed = time.time()
            a.proc.send_signal(signal.SIGKILL)
            _wait_complete([a, b], _truth(sim, 1), 90)
        finally:
            a.stop()
            b.stop()
    took_over = [t for t in b.led_at("o1") if t >= killed]
    assert took_over and took_over[0] - killed <= TTL + 1 + 2  # lease_ttl + one poll, and some slack
    counts = _union([a, b])
    assert sum(counts.values()) - len(counts) <= 100


def test_a_paused_leader_is_fenced_off_and_stands_by(tmp_path: Path, etcd: Etcd) -> None:
    with Simulator(orgs=org_configs(1, events=3000, span=4 * 3600, live_rate=5)) as sim:
        cfg = _config(tmp_path, sim, etcd, 1)
        reader = EtcdStore(Coordinator(EtcdConfig(endpoints=[etcd.url], prefix="/gas/"), ["o1"]), "o1")
        positions: list[int] = []
        watching = threading.Event()

        def watch() -> None:
            while not watching.is_set():
                stored = reader.load()
                if stored is not None:
                    positions.append(fold(stored, "etcd").frontier_ms or 0)
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        a = Collector(cfg, tmp_path, "a")
        time.sleep(1.5)
        b = Collector(cfg, tmp_path, "b")
        watcher.start()
        try:
            deadline = time.monotonic() + 20
            while len(a.records()) < 300:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            a.proc.send_signal(signal.SIGSTOP)
            time.sleep(2 * TTL)
            before = len(a.records())
            a.proc.send_signal(signal.SIGCONT)
            # Count what A wrote up to the moment it stood by: it may rightly lead the org again a
            # second later (the assignment can name it once it has registered again).
            deadline = time.monotonic() + TTL + 2
            while not any(e["message"].startswith("not leading this org") for e in a.logs()):
                assert time.monotonic() < deadline, "the resumed leader never stood by"
                time.sleep(0.01)
            after = len(a.records())
            _wait_complete([a, b], _truth(sim, 1), 90)
        finally:
            watching.set()
            a.stop()
            b.stop()
    assert after - before <= 100  # at most the one page it held
    assert b.led_at("o1")
    assert positions == sorted(positions) and len(positions) > 10  # no checkpoint ever moved back
    counts = _union([a, b])
    handovers = sum(e["message"].startswith("not leading") for c in (a, b) for e in c.logs())
    assert sum(counts.values()) - len(counts) <= 100 * handovers
    export = tmp_path / "export.ndjson"
    export.write_bytes(a.out.read_bytes() + b.out.read_bytes())
    proc = run_cli("verify", str(export), "--json")  # no two collectors ever wrote the org at once
    assert proc.returncode == 0, proc.stdout.decode()[:2000]


def test_etcd_down_for_30_seconds_nobody_ships_and_nothing_is_lost(tmp_path: Path, etcd: Etcd) -> None:
    with Simulator(orgs=org_configs(1, events=200, span=3600, live_rate=10)) as sim:
        cfg = _config(tmp_path, sim, etcd, 1)
        a = Collector(cfg, tmp_path, "a")
        try:
            deadline = time.monotonic() + 20
            while len(a.records()) < 200:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            etcd.stop()
            time.sleep(TTL)  # two thirds of the TTL, and a page in flight, at most
            during = len(a.records())
            time.sleep(30 - TTL)
            assert len(a.records()) == during, "a collector shipped while etcd was down"
            etcd.start()
            time.sleep(TTL + 3)
            cut = time.time() - 3
            _wait_complete([a], {"o1": {e["id"] for e in sim.all_events("org1-client")
                                        if _t(e["eventDate"]) < cut}}, 60)
        finally:
            a.stop()
    assert any("etcd unreachable" in e["message"] for e in a.logs())


def test_four_collectors_share_twenty_orgs_and_cover_a_dead_one(tmp_path: Path, etcd: Etcd) -> None:
    with Simulator(orgs=org_configs(20, events=30, span=3600)) as sim:
        cfg = _config(tmp_path, sim, etcd, 20)
        collectors = [Collector(cfg, tmp_path, f"c{i}") for i in range(4)]
        try:
            deadline = time.monotonic() + 60
            while True:
                leaders = _leaders(etcd)
                share = Counter(leaders.values())
                if len(leaders) == 20 and len(share) == 4 and all(4 <= n <= 6 for n in share.values()):
                    break
                assert time.monotonic() < deadline, f"shares {share}"
                time.sleep(0.3)
            victim = next(iter(share))
            dead = next(c for c in collectors if str(c.proc.pid) in victim)
            orphans = {o for o, m in leaders.items() if m == victim}
            killed = time.monotonic()
            dead.proc.send_signal(signal.SIGKILL)
            while True:
                leaders = _leaders(etcd)
                if all(o in leaders and leaders[o] != victim for o in orphans):
                    break
                assert time.monotonic() - killed < TTL + 1 + 4, f"orphans still led by {victim}: {leaders}"
                time.sleep(0.2)
        finally:
            for c in collectors:
                c.stop()
    assert Counter(leaders.values()).most_common(1)[0][1] <= 7


def test_once_with_etcd_down_is_one_line_and_exit_1(tmp_path: Path, etcd: Etcd) -> None:
    with Simulator(orgs=org_configs(1, events=10)) as sim:
        cfg = _config(tmp_path, sim, etcd, 1)
        etcd.stop()
        proc = run_cli("run", "--once", "--config", str(cfg), timeout=60)
        etcd.start()
    assert proc.returncode == 1
    assert_no_traceback(proc.stderr)
    assert b"no endpoint answered" in proc.stderr.splitlines()[-2] + proc.stderr.splitlines()[-1]


@pytest.mark.parametrize(("etcd_section", "needle"), [
    ({"endpoints": ["http://127.0.0.1:99999"]}, b"state.etcd.endpoints[0]"),
    ({"endpoints": ["http://10.1.2.3:2379"]}, b"state.etcd.endpoints[0]"),
    ({"endpoints": ["https://127.0.0.1:2379"], "ca_file": "/nonexistent/ca.pem"}, b"state.etcd.ca_file"),
])
def test_bad_etcd_settings_are_exit_2(tmp_path: Path, etcd_section: dict[str, Any], needle: bytes) -> None:
    with Simulator(orgs=org_configs(1, events=1)) as sim:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(yaml.safe_dump({
            "genesys": {"api_url": sim.url, "login_url": sim.url, "client_id": "org1-client",
                        "client_secret": "org1-secret"},
            "state": {"backend": "etcd", "etcd": etcd_section}}))
        proc = run_cli("run", "--once", "--config", str(cfg), timeout=30)
    assert proc.returncode == 2, proc.stderr.decode()
    assert needle in proc.stderr


def test_migrate_a_file_state_into_etcd_and_back(tmp_path: Path, etcd: Etcd) -> None:
    with Simulator(orgs=org_configs(1, events=400, span=3600)) as sim:
        doc = {"genesys": {"api_url": sim.url, "login_url": sim.url, "client_id": "org1-client",
                           "client_secret": "org1-secret"},
               "poll": {"start_from": "2h", "settle_delay": "1s"}, "rate_limit": FAST,
               "output": {"replay_on_start": 0},
               "state": {"path": str(tmp_path / "state.json"),
                         "etcd": {"endpoints": [etcd.url], "prefix": "/mig/", "lease_ttl": f"{TTL}s"}}}
        file_cfg, etcd_cfg = tmp_path / "file.yaml", tmp_path / "etcd.yaml"
        file_cfg.write_text(yaml.safe_dump(doc))
        etcd_cfg.write_text(yaml.safe_dump({**doc, "state": {**doc["state"], "backend": "etcd"}}))
        first = run_cli("run", "--once", "--config", str(file_cfg))
        assert first.returncode == 0 and len(first.stdout.splitlines()) == 400
        moved = run_cli("migrate-state", "--config", str(etcd_cfg), "--to", "etcd")
        assert moved.returncode == 0, moved.stderr.decode()
        again = run_cli("migrate-state", "--config", str(etcd_cfg), "--to", "etcd")
        assert again.returncode == 2 and b"--force" in again.stderr
        second = run_cli("run", "--once", "--config", str(etcd_cfg))
        assert second.returncode == 0 and second.stdout == b""  # resumed where the file left off
        status = json.loads(run_cli("status", "--config", str(etcd_cfg), "--json").stdout)
        assert status["events_emitted"] == 400 and status["state_file"] == "etcd /mig/orgs/default/"
        os.remove(tmp_path / "state.json")
        back = run_cli("migrate-state", "--config", str(file_cfg), "--to", "file")
        assert back.returncode == 0, back.stderr.decode()
        third = run_cli("run", "--once", "--config", str(file_cfg))
        assert third.returncode == 0 and third.stdout == b""


def test_a_state_over_etcds_request_limit_compacts_and_reads_back(etcd: Etcd) -> None:
    # etcd refuses requests over 1.5 MiB by default: 150k remembered ids are a 3.3 MB snapshot.
    co = Coordinator(EtcdConfig(endpoints=[etcd.url], prefix="/big/"), ["o1"])
    store = EtcdStore(co, "o1")
    try:
        store.acquire()
        seen = os.urandom(16 * 150_000)
        store.compact(State(frontier_ms=1_000, recheck_ms=500, seen=seen))
        store.commit(Delta(frontier_ms=2_000, recheck_ms=900, new_ids=os.urandom(16)), lambda: State())
        store.compact(State(frontier_ms=3_000, recheck_ms=1_000, seen=seen[16:]))  # replaces the first
        stored = store.load()
    finally:
        store.release()
        co.stop()
    assert stored is not None and stored.snapshot.seen == seen[16:] and stored.snapshot.frontier_ms == 3_000
    assert stored.journal == []
    left = co.gateway.range("/big/orgs/o1/snap/", prefix=True)
    generations = {unb64(kv["key"]).decode().split("/")[-2] for kv in left}
    assert len(generations) == 1 and len(left) >= 5  # in parts, and only the live generation is left


def test_a_long_journal_reads_back_in_commit_order(etcd: Etcd) -> None:
    co = Coordinator(EtcdConfig(endpoints=[etcd.url], prefix="/order/"), ["o1"])
    store = EtcdStore(co, "o1")
    try:
        store.acquire()
        store.compact(State(frontier_ms=0, recheck_ms=0))
        for n in range(1, 120):
            store.commit(Delta(frontier_ms=n * 1000, recheck_ms=n * 500, emitted=n), lambda: State())
        stored = store.load()
    finally:
        store.release()
        co.stop()
    assert stored is not None
    assert [d.emitted for d in stored.journal] == list(range(1, 120))
    state = fold(stored, "etcd")
    assert (state.frontier_ms, state.emitted) == (119_000, 119)

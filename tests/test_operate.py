"""Operator experience: check, status, backfill, logs, metrics, proxy."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from .conftest import CLI, assert_no_traceback, event_id, parse_lines, run_cli, state_bytes, write_config


def test_check_ok_with_good_credentials(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=50, newest_age=10)
    cfg = write_config(tmp_path, sim.url)
    proc = run_cli("check", "--config", str(cfg))
    out = proc.stdout.decode()
    assert proc.returncode == 0, out + proc.stderr.decode()
    for step in ("config", "token", "permission", "state", "clock"):
        assert f"ok    {step}:" in out


def test_check_wrong_secret_fails_without_echo(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=5)
    cfg = write_config(tmp_path, sim.url, genesys={"client_secret": "Not-The-Secret-42"})
    proc = run_cli("check", "--config", str(cfg))
    assert proc.returncode == 1
    assert "FAIL  token: " in proc.stdout.decode() and "401" in proc.stdout.decode()
    assert b"Not-The-Secret-42" not in proc.stdout + proc.stderr
    assert_no_traceback(proc.stderr)


def test_check_reports_missing_permission(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=5, forbid_audits=True)
    cfg = write_config(tmp_path, sim.url)
    proc = run_cli("check", "--config", str(cfg))
    assert proc.returncode == 1
    assert "audits:audit:view" in proc.stdout.decode()


def test_check_config_error_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("poll:\n  page_size: 9000\n")
    assert run_cli("check", "--config", str(bad)).returncode == 2


def test_status_text_and_json(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=300)
    cfg = write_config(tmp_path, sim.url)
    before = run_cli("status", "--config", str(cfg), "--json")
    assert json.loads(before.stdout)["position"] is None
    assert run_cli("run", "--once", "--config", str(cfg)).returncode == 0
    doc = json.loads(run_cli("status", "--config", str(cfg), "--json").stdout)
    assert doc["events_emitted"] == 300
    assert doc["lag_seconds"] < 120 and doc["last_success"] and doc["locked_by_other_instance"] is False
    assert doc["last_error"] is None
    text = run_cli("status", "--config", str(cfg)).stdout.decode()
    assert "position" in text and "events emitted" in text


def test_backfill_reexports_range_without_touching_live_state(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=800, span=4 * 3600, newest_age=60)
    cfg = write_config(tmp_path, sim.url)
    assert run_cli("run", "--once", "--config", str(cfg)).returncode == 0
    live = state_bytes(tmp_path / "state.json")
    events = sim.all_events()
    lo, hi = events[200]["eventDate"], events[600]["eventDate"]
    proc = run_cli("backfill", "--config", str(cfg), "--from", lo, "--to", hi)
    assert proc.returncode == 0, proc.stderr.decode()
    got = [event_id(r) for r in parse_lines(proc.stdout)]
    want = [e["id"] for e in events if lo <= e["eventDate"] < hi]
    assert sorted(got) == sorted(want)
    assert state_bytes(tmp_path / "state.json") == live
    # Its own state: the same backfill again resumes at its end and prints nothing.
    again = run_cli("backfill", "--config", str(cfg), "--from", lo, "--to", hi)
    assert again.returncode == 0 and again.stdout == b""
    # A relative range resumes too: the state file is keyed by the arguments as written.
    rel = run_cli("backfill", "--config", str(cfg), "--from", "2h")
    assert len(parse_lines(rel.stdout)) > 0
    rel_again = run_cli("backfill", "--config", str(cfg), "--from", "2h")
    assert rel_again.returncode == 0 and rel_again.stdout == b""


def test_backfill_bad_range_exits_2(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=5)
    cfg = write_config(tmp_path, sim.url)
    proc = run_cli("backfill", "--config", str(cfg), "--from", "1h", "--to", "2h")
    assert proc.returncode == 2 and b"--to must be after --from" in proc.stderr


def test_logs_are_json_lines_off_tty(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=100, fault_rate=0.3, faults=("503",))
    cfg = write_config(tmp_path, sim.url)
    proc = run_cli("--log-level", "debug", "run", "--once", "--config", str(cfg))
    assert proc.returncode == 0
    logs = [json.loads(line) for line in proc.stderr.decode().splitlines()]
    assert all({"time", "level", "message"} <= set(doc) for doc in logs)
    retries = [doc for doc in logs if doc["message"] == "retrying"]
    assert retries and all(doc["reason"].startswith("503") and "wait_s" in doc for doc in retries)


def test_logs_are_text_on_a_tty(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=20)
    cfg = write_config(tmp_path, sim.url)
    master, slave = pty.openpty()
    proc = subprocess.Popen([*CLI, "run", "--once", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=slave)
    os.close(slave)
    chunks = b""
    deadline = time.time() + 30
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks += data
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(master)
    text = chunks.decode()
    assert "INFO" in text and "token obtained" in text
    assert '"level"' not in text


def test_metrics_textfile(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=400)
    prom = tmp_path / "shipper.prom"
    cfg = write_config(tmp_path, sim.url, metrics={"textfile": str(prom), "stats_interval": "0s"})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0
    text = prom.read_text()
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if not line.startswith("#")}
    assert values["genesys_audit_events_emitted_total"] == 400
    assert values["genesys_audit_pages_total"] >= 4
    assert values['genesys_audit_requests_total{status="200"}'] >= 5
    for name in ("genesys_audit_throttled_total", "genesys_audit_retries_total", "genesys_audit_lag_seconds",
                 "genesys_audit_last_success_timestamp_seconds", "genesys_audit_quarantined_total",
                 "genesys_audit_gaps_total"):
        assert name in values
    assert any('"message":"stats"' in line for line in proc.stderr.decode().splitlines())


class _ForwardProxy:
    """A minimal HTTP forward proxy on loopback that counts what passes through it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.seen: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        from urllib.parse import urlsplit

        import requests

        with conn, conn.makefile("rb") as rf:
            while True:
                line = rf.readline()
                if not line:
                    return
                method, target, _ = line.decode().split(" ", 2)
                headers = {}
                while (h := rf.readline().decode()) not in ("\r\n", "\n", ""):
                    k, v = h.split(":", 1)
                    headers[k.strip()] = v.strip()
                body = rf.read(int(headers.get("Content-Length", 0)))
                self.seen.append(f"{method} {urlsplit(target).path}")
                headers.pop("Proxy-Connection", None)
                resp = requests.request(method, target, headers=headers, data=body, allow_redirects=False)
                payload = resp.content
                conn.sendall(f"HTTP/1.1 {resp.status_code} X\r\nContent-Length: {len(payload)}\r\n"
                             f"Content-Type: application/json\r\n\r\n".encode() + payload)

    def close(self) -> None:
        self.sock.close()


def test_genesys_proxy_is_used(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=50)
    proxy = _ForwardProxy()
    try:
        cfg = write_config(tmp_path, sim.url, genesys={"proxy": proxy.url})
        proc = run_cli("run", "--once", "--config", str(cfg), env={"NO_PROXY": "", "no_proxy": ""})
        assert proc.returncode == 0, proc.stderr.decode()[-1500:]
        assert len(parse_lines(proc.stdout)) == 50
        assert "POST /oauth/token" in proxy.seen and "POST /api/v2/audits/query" in proxy.seen
    finally:
        proxy.close()


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    import shutil

    import pytest

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_tls_verified_with_ca_bundle_and_never_skipped(tmp_path: Path) -> None:
    from shipper.simulator import SimConfig, Simulator

    cert, key = _self_signed(tmp_path)
    with Simulator(SimConfig(events=40), tls=(cert, key)) as sim:
        assert sim.url.startswith("https://")
        trusted = write_config(tmp_path, sim.url, genesys={"ca_bundle": cert})
        proc = run_cli("run", "--once", "--config", str(trusted))
        assert proc.returncode == 0, proc.stderr.decode()[-1500:]
        assert len(parse_lines(proc.stdout)) == 40
        (tmp_path / "state.json").unlink()
        untrusted = write_config(tmp_path, sim.url, rate_limit={"max_retries": 1})
        proc = run_cli("run", "--once", "--config", str(untrusted), env={"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""})
        assert proc.returncode == 1 and proc.stdout == b""
        assert b"TLS verification failed" in proc.stderr and b"genesys.ca_bundle" in proc.stderr
        assert_no_traceback(proc.stderr)

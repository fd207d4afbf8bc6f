"""output.replay_on_start (exec mode) and output.http (acknowledged delivery), with the real CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import assert_no_traceback, parse_lines, read_state, run_cli, write_config

FAST = {"requests_per_minute": 60000, "backoff_base": "0.02s", "backoff_max": "0.1s", "max_retries": 3}


def test_replay_writes_the_last_page_again_byte_for_byte(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=450)
    cfg = write_config(tmp_path, sim.url, poll={"page_size": 100}, rate_limit=FAST,
                       output={"replay_on_start": None})  # the default: one page on stdout
    first = run_cli("run", "--once", "--config", str(cfg))
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    lines = first.stdout.splitlines()
    assert len(lines) == 450
    second = run_cli("run", "--once", "--config", str(cfg))
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    again = second.stdout.splitlines()
    assert again and again == lines[-len(again):]  # the tail again, identical to the byte
    assert len(again) == 100  # replay_on_start defaults to one page: poll.page_size events
    assert b"wrote the last events again" in second.stderr
    export = tmp_path / "export.ndjson"
    export.write_bytes(first.stdout + second.stdout)
    proc = run_cli("verify", str(export), "--config", str(cfg), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["streams"][0]["duplicates"] == len(again)


def test_replay_is_skipped_when_the_api_answers_differently(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=120)
    cfg = write_config(tmp_path, sim.url, poll={"page_size": 100}, rate_limit=FAST,
                       output={"replay_on_start": None})
    assert run_cli("run", "--once", "--config", str(cfg)).returncode == 0
    last = sim.store.events[-1]
    last.expanded = last.expanded.replace(b'"level":"', b'"level":"X')  # the API now says something else
    second = run_cli("run", "--once", "--config", str(cfg))
    assert second.returncode == 0
    assert second.stdout == b""
    assert b"replay at start skipped" in second.stderr


def test_replay_can_be_turned_off_and_is_off_for_files(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=120)
    cfg = write_config(tmp_path, sim.url, rate_limit=FAST, output={"replay_on_start": 0})
    assert run_cli("run", "--once", "--config", str(cfg)).returncode == 0
    assert run_cli("run", "--once", "--config", str(cfg)).stdout == b""
    out = tmp_path / "audit.ndjson"
    (tmp_path / "f").mkdir()
    cfg = write_config(tmp_path / "f", sim.url, rate_limit=FAST, output={"path": str(out), "replay_on_start": None})
    assert run_cli("run", "--once", "--config", str(cfg)).returncode == 0
    assert run_cli("run", "--once", "--config", str(cfg)).returncode == 0
    assert len(out.read_bytes().splitlines()) == 120


# -- output.http -----------------------------------------------------------------------------------
class Receiver:
    """An HTTP input on loopback that records what it accepts; `script` lists status codes to answer
    first (then 201)."""

    def __init__(self) -> None:
        self.pages: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.script.pop(0) if receiver.script else 201
                if status < 300:
                    receiver.pages.append(body)
                    receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/genesys"

    def ids(self) -> list[str]:
        return [r["siem_event_id"] for page in self.pages for r in parse_lines(page)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def test_http_output_posts_pages_and_retries_until_acknowledged(tmp_path: Path, simulator: Any,
                                                                receiver: Receiver) -> None:
    sim = simulator(events=700)
    token = tmp_path / "token"
    token.write_text("s3cr3t-ingest-token\n")
    receiver.script = [503, 503, 429]
    cfg = write_config(tmp_path, sim.url, poll={"page_size": 100}, rate_limit=FAST,
                       output={"http": {"url": receiver.url, "token_file": str(token)}})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout == b""
    assert sorted(receiver.ids()) == sorted(e["id"] for e in sim.all_events())
    assert receiver.headers[0]["Authorization"] == "Bearer s3cr3t-ingest-token"
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert proc.stderr.count(b'"what":"output.http"') >= 3  # each retry logged with its reason
    assert b"s3cr3t-ingest-token" not in proc.stderr
    # No replay in this mode: an acknowledged page is stored on the other side.
    again = run_cli("run", "--once", "--config", str(cfg))
    assert again.returncode == 0 and len(receiver.ids()) == 700


def test_a_receiver_that_stays_down_fails_the_run_and_moves_nothing(tmp_path: Path, simulator: Any,
                                                                    receiver: Receiver) -> None:
    sim = simulator(events=300)
    receiver.script = [503] * 20
    cfg = write_config(tmp_path, sim.url, poll={"page_size": 100}, rate_limit=FAST,
                       output={"http": {"url": receiver.url}})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 1
    assert_no_traceback(proc.stderr)
    assert b"output.http" in proc.stderr.splitlines()[-1] and b"checkpoint did not move" in proc.stderr
    state = read_state(tmp_path / "state.json")
    assert state is None or state.emitted == 0
    receiver.script = []
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 0
    assert sorted(receiver.ids()) == sorted(e["id"] for e in sim.all_events())


def test_a_page_too_large_for_the_receiver_is_one_clear_line(tmp_path: Path, simulator: Any,
                                                             receiver: Receiver) -> None:
    sim = simulator(events=50)
    receiver.script = [413]
    cfg = write_config(tmp_path, sim.url, rate_limit=FAST, output={"http": {"url": receiver.url}})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 1
    assert b"buffer_max_size" in proc.stderr.splitlines()[-1]


@pytest.mark.parametrize(("http", "needle"), [
    ({"url": "ftp://127.0.0.1/x"}, b"output.http.url"),
    ({"url": "http://collector.example.com/x"}, b"output.http.url"),
    ({"url": "http://127.0.0.1:9/x", "token_file": "/nonexistent/token"}, b"output.http.token_file"),
])
def test_bad_http_output_settings_are_exit_2(tmp_path: Path, simulator: Any, http: dict[str, Any],
                                             needle: bytes) -> None:
    sim = simulator(events=5)
    cfg = write_config(tmp_path, sim.url, output={"http": http})
    proc = run_cli("run", "--once", "--config", str(cfg))
    assert proc.returncode == 2, proc.stderr.decode()
    assert needle in proc.stderr

"""Shared fixtures: a real simulator on loopback, config files, and the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipper.core.ledger import fold
from shipper.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimConfig, Simulator
from shipper.store import State
from shipper.store.file import FileStore

CLI = [sys.executable, "-m", "shipper"]


def write_config(tmp: Path, sim_url: str, **sections: dict[str, Any]) -> Path:
    """A config pointing at the simulator; keyword sections are merged over the defaults."""
    cfg: dict[str, Any] = {
        "genesys": {"api_url": sim_url, "login_url": sim_url, "client_id": DEFAULT_CLIENT_ID,
                    "client_secret": DEFAULT_CLIENT_SECRET},
        # Pages of 100 (the default is the API's 500): several pages even in small tests.
        "poll": {"start_from": "8h", "interval": "1s", "settle_delay": "1s", "late_window": "30s", "page_size": 100},
        "rate_limit": {"requests_per_minute": 6000, "backoff_base": "0.05s", "backoff_max": "1s"},
        "state": {"path": str(tmp / "state.json")},
        # Tests of other things expect a rerun to print only what is new: the replay at start
        # (one page by default on stdout) has its own tests.
        "output": {"replay_on_start": 0},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return path


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
            input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], capture_output=True, timeout=timeout, input=input,
                          env={**os.environ, **(env or {})})


def parse_lines(out: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.decode("utf-8").splitlines() if line.strip()]


def event_id(record: dict[str, Any]) -> str:
    return record.get("siem_event_id") or record["id"]


def state_bytes(path: Path) -> bytes:
    """Every byte the state keeps on disk: the snapshot and its journal."""
    journal = path.with_name(path.name + ".journal")
    return path.read_bytes() + (journal.read_bytes() if journal.exists() else b"")


def read_state(path: Path) -> State | None:
    """The state as the program would resume from it (snapshot plus journal), read without the lock."""
    stored = FileStore(path).load()
    return fold(stored, str(path)) if stored is not None else None


def assert_no_traceback(stderr: bytes) -> None:
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")[-3000:]


def kill_loop(tmp: Path, cfg: Path, *, kills: int, seed: int, wait: tuple[float, float], runs: int = 40,
              only_killed_fail: bool = False) -> tuple[list[bytes], int]:
    """`run --once` again and again: each run, until `kills` were done, is killed with -9 after a
    random `wait`; the loop ends at a run that exits 0 after the last kill. Returns every run's
    stdout and the kills done. `only_killed_fail`: a run that was not killed must exit 0."""
    rng = random.Random(seed)
    outputs: list[bytes] = []
    done = 0
    for run in range(runs):
        out_path = tmp / f"out-{run}.ndjson"
        with open(out_path, "wb") as out:
            proc = subprocess.Popen([*CLI, "run", "--once", "--config", str(cfg)], stdout=out, stderr=subprocess.PIPE)
            if done < kills:
                try:
                    proc.wait(timeout=rng.uniform(*wait))
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    done += 1
            _, err = proc.communicate(timeout=300)
        outputs.append(out_path.read_bytes())
        if proc.returncode == 0:
            assert_no_traceback(err)
            if done >= kills:
                break
        elif only_killed_fail:
            assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    return outputs, done


@pytest.fixture
def simulator() -> Iterator[Any]:
    """Factory: simulator(**SimConfig fields) starts a real server that stops after the test."""
    started: list[Simulator] = []

    def make(**kw: Any) -> Simulator:
        sim = Simulator(SimConfig(**kw)).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()

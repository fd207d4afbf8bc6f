"""Hostile state, readers, disks and configs: one clear line and the documented exit code, never a
traceback, never an event lost past the checkpoint."""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipper.config import config_from_mapping, load_config
from shipper.errors import ConfigError

from .conftest import CLI, assert_no_traceback, event_id, run_cli, write_config

FAST = {"max_retries": 2, "backoff_base": "0.02s", "backoff_max": "0.1s", "requests_per_minute": 60000}


def _ids(out: bytes) -> list[str]:
    ids = []
    for line in out.split(b"\n"):
        with contextlib.suppress(ValueError):
            if line.strip():
                ids.append(event_id(json.loads(line)))
    return ids


def _last_line(stderr: bytes) -> str:
    assert_no_traceback(stderr)
    lines = [line for line in stderr.decode().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# -- state and positions ------------------------------------------------------------------------
@pytest.mark.parametrize("ahead_ms", [86_400_000, 10 * 365 * 86_400_000])
def test_a_position_from_the_future_is_refused(tmp_path: Path, simulator: Any, ahead_ms: int) -> None:
    sim = simulator(events=50)
    cfg = write_config(tmp_path, sim.url, rate_limit=FAST)
    future = int(time.time() * 1000) + ahead_ms
    (tmp_path / "state.json").write_text(json.dumps({"version": 2, "frontier_ms": future, "recheck_ms": future}))
    os.chmod(tmp_path / "state.json", 0o600)
    proc = run_cli("run", "--once", "--config", str(cfg), timeout=60)
    assert proc.returncode == 1
    assert "is in the future" in _last_line(proc.stderr)
    assert proc.stdout == b""


def test_a_start_from_in_the_future_is_a_config_error(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=10)
    cfg = write_config(tmp_path, sim.url, poll={"start_from": "9999-01-01T00:00:00Z"})
    proc = run_cli("run", "--once", "--config", str(cfg), timeout=60)
    assert proc.returncode == 2
    assert "poll.start_from" in _last_line(proc.stderr) and "future" in _last_line(proc.stderr)


def test_state_in_a_sticky_world_writable_directory_is_refused(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=10)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    cfg = write_config(tmp_path, sim.url, state={"path": str(shared / "state.json")})
    proc = run_cli("run", "--once", "--config", str(cfg), timeout=60)
    assert proc.returncode == 1 and "world-writable" in _last_line(proc.stderr)


# -- readers and outputs ----------------------------------------------------------------------------
def test_a_reader_that_stops_reading_cannot_hold_sigterm(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=3000, large_fraction=0.3, huge_events=0)
    cfg = write_config(tmp_path, sim.url, rate_limit=FAST)
    proc = subprocess.Popen([*CLI, "run", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(4)  # far more than a pipe buffer is waiting: the shipper is blocked on its reader
    assert proc.poll() is None
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)  # reads the pipe only now
    assert time.monotonic() - started < 3 + 3
    assert proc.returncode == 0, err.decode()[-2000:]
    assert_no_traceback(err)
    rest = run_cli("run", "--once", "--config", str(cfg), timeout=120)
    assert rest.returncode == 0
    ids = set(_ids(out)) | set(_ids(rest.stdout))
    assert ids == {e["id"] for e in sim.all_events()}


def test_max_runtime_holds_with_a_reader_that_stopped(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=3000, large_fraction=0.3, huge_events=0)
    cfg = write_config(tmp_path, sim.url, rate_limit=FAST)
    started = time.monotonic()
    proc = subprocess.Popen([*CLI, "run", "--once", "--max-runtime", "4s", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while proc.poll() is None and time.monotonic() - started < 15:
        time.sleep(0.1)  # the pipe is never read while it runs
    assert proc.poll() is not None and time.monotonic() - started < 4 + 2.5
    assert proc.returncode == 0


@pytest.mark.parametrize("verb", ["run", "check", "status"])
def test_a_closed_stdout_is_one_line_and_exit_2(tmp_path: Path, simulator: Any, verb: str) -> None:
    sim = simulator(events=20)
    cfg = write_config(tmp_path, sim.url, rate_limit=FAST)
    extra = " --once" if verb == "run" else ""
    proc = subprocess.run(f"{' '.join(CLI)} {verb}{extra} --config {cfg} >&-", shell=True, capture_output=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr.decode()
    assert "stdout is closed" in _last_line(proc.stderr)


def test_a_full_stdout_moves_no_checkpoint(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=300)
    cfg = write_config(tmp_path, sim.url, rate_limit=FAST)
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([*CLI, "run", "--once", "--config", str(cfg)], stdout=full, stderr=subprocess.PIPE,
                              timeout=60)
    assert proc.returncode == 1 and "no space left" in _last_line(proc.stderr)
    with open("/dev/full", "wb") as full:
        status = subprocess.run([*CLI, "status", "--config", str(cfg)], stdout=full, stderr=subprocess.PIPE,
                                timeout=60)
    assert status.returncode == 1 and "cannot write" in _last_line(status.stderr)
    again = run_cli("run", "--once", "--config", str(cfg), timeout=60)
    assert sorted(_ids(again.stdout)) == sorted(e["id"] for e in sim.all_events())


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))


def test_a_state_disk_that_fills_up_is_one_line_and_leaves_no_temp_file(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=2000)
    cfg = write_config(tmp_path, sim.url, rate_limit=FAST, poll={"page_size": 100})
    # stdout is a pipe, which the file size limit does not cover: only the state disk is "full".
    proc = subprocess.run([*CLI, "run", "--once", "--config", str(cfg)], capture_output=True, timeout=60,
                          preexec_fn=_limit_file_size)
    assert proc.returncode == 1
    assert "cannot" in _last_line(proc.stderr) and "state" in _last_line(proc.stderr)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    again = run_cli("run", "--once", "--config", str(cfg), timeout=60)
    assert again.returncode == 0
    ids = _ids(proc.stdout) + _ids(again.stdout)
    assert set(ids) == {e["id"] for e in sim.all_events()}


def test_a_read_only_state_directory_is_one_line(simulator: Any) -> None:
    sim = simulator(events=20)
    home = Path(tempfile.mkdtemp(prefix="gas-ro-", dir="/tmp"))  # readable by the unprivileged child
    os.chmod(home, 0o755)
    state_dir = home / "ro"
    state_dir.mkdir(mode=0o755)
    cfg = write_config(home, sim.url, state={"path": str(state_dir / "state.json")}, rate_limit=FAST)
    os.chmod(cfg, 0o644)
    if os.geteuid() == 0:
        code = _run_as_nobody(["run", "--once", "--config", str(cfg)], home)
    else:
        os.chmod(state_dir, 0o555)
        proc = run_cli("run", "--once", "--config", str(cfg), timeout=60)
        code = (proc.returncode, proc.stderr.decode())
    shutil.rmtree(home, ignore_errors=True)
    assert code[0] == 1, code[1]
    assert "permission denied" in code[1].lower() and "Traceback" not in code[1]


def _run_as_nobody(args: list[str], workdir: Path) -> tuple[int, str]:
    """The real CLI entry point in a forked child whose user cannot write the state directory."""
    from shipper import cli

    err_path = workdir / "child.err"
    pid = os.fork()
    if pid == 0:
        try:
            fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            os.dup2(fd, 2)
            os.setgid(65534)
            os.setuid(65534)
            sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), write_through=True)
            os._exit(cli.main(args))
        finally:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err_path.read_text()


def test_sighup_reopens_the_output_file_and_does_not_kill(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=100, live_rate=20)
    out = tmp_path / "audit.ndjson"
    cfg = write_config(tmp_path, sim.url, output={"path": str(out)}, poll={"interval": "0.5s"}, rate_limit=FAST)
    proc = subprocess.Popen([*CLI, "run", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while len(_ids(out.read_bytes() if out.exists() else b"")) < 100 and time.monotonic() < deadline:
            time.sleep(0.1)
        rotated = tmp_path / "audit.ndjson.1"
        out.rename(rotated)  # what logrotate does
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while not (out.exists() and _ids(out.read_bytes())) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, "SIGHUP must not kill the daemon"
        assert out.exists() and _ids(out.read_bytes())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert b"output file reopened" in err
    finally:
        if proc.poll() is None:
            proc.kill()
    ids = _ids(rotated.read_bytes()) + _ids(out.read_bytes())
    assert len(ids) == len(set(ids)) and len(ids) >= 100


# -- config ------------------------------------------------------------------------------------------
def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(path, env={})


def test_duplicate_keys_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 3: key 'interval' appears twice"):
        _load(tmp_path, "poll:\n  interval: 10s\n  interval: 20s\n")


def test_billion_laughs_ends_at_once(tmp_path: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    started = time.monotonic()
    with pytest.raises(ConfigError, match="expands to more than"):
        _load(tmp_path, "\n".join(levels) + "\n")
    assert time.monotonic() - started < 5


def test_a_fifo_as_config_or_secret_file_does_not_hang(tmp_path: Path, simulator: Any) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = run_cli("check", "--config", str(fifo), timeout=20)
    assert proc.returncode == 2 and "not a regular file" in _last_line(proc.stderr)
    sim = simulator(events=1)
    cfg = write_config(tmp_path, sim.url, genesys={"client_secret": None, "client_secret_file": str(fifo)})
    text = yaml.safe_load(cfg.read_text())
    text["genesys"].pop("client_secret")
    cfg.write_text(yaml.safe_dump(text))
    proc = run_cli("run", "--once", "--config", str(cfg), timeout=20)
    assert proc.returncode == 2 and "client_secret_file" in _last_line(proc.stderr)


@pytest.mark.parametrize(("section", "values", "needle"), [
    ("poll", {"interval": float("nan")}, "poll.interval"),
    ("rate_limit", {"backoff_base": -5}, "rate_limit.backoff_base"),
    ("genesys", {"api_url": "https://api.example.com:99999", "login_url": "https://l.example.com"},
     "genesys.api_url"),
    ("genesys", {"proxy": "::garbage::"}, "genesys.proxy"),
    ("genesys", {"api_url": "https://user:hunter2pass@api.example.com", "login_url": "https://l.example.com"},
     "must not carry credentials"),
])
def test_bad_values_are_config_errors(section: str, values: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping({section: values})
    assert needle in str(err.value)
    assert "hunter2pass" not in str(err.value)


def test_bad_url_port_is_exit_2_not_a_runtime_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("genesys:\n  api_url: http://127.0.0.1:99999\n  login_url: http://127.0.0.1:99999\n"
                    "  client_id: x\n  client_secret: y\n")
    proc = run_cli("run", "--once", "--config", str(path), timeout=20)
    assert proc.returncode == 2 and "genesys.api_url" in _last_line(proc.stderr)


def test_an_unquoted_iso_start_from_is_accepted(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "poll:\n  start_from: 2026-01-15T00:00:00Z\n")
    assert str(cfg.poll.start_from).startswith("2026-01-15T00:00:00")


def test_a_secret_typed_into_region_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping({"genesys": {"region": "s3cr3t-Pa55w0rd-value"}})
    assert "s3cr3t" not in str(err.value) and "genesys.region" in str(err.value)

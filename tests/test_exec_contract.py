"""The exec contract: the real CLI, started exactly the way the templates make Fluent Bit and Vector start it,
against the real simulator on loopback.

- Fluent Bit 5.1: `/bin/sh -c "<command>"` in its own process group, SIGTERM to the group.
- Vector 0.57: an argv array (no shell), SIGTERM to the child only.
- Interval / scheduled mode: `--once --max-runtime` runs, one after the other.

Checked every time: stdout holds only complete JSON lines (one object each) and every simulator event
id exactly once across the runs; stderr holds only JSON log lines (time, level, message); the exit
code is 0 within 10 s of SIGTERM; no shipper process is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipper.errors import ShipperError
from shipper.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimConfig, Simulator

from .conftest import read_state

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc: Linux")

REPO = Path(__file__).resolve().parents[1]
HOST_CONFIG = "/etc/genesys-audit-shipper/config.yaml"
STOP_WITHIN = 10.0
LOG_LEVELS = {"debug", "info", "warning", "error"}


# ---------------------------------------------------------------------------------------------
# The commands, read from the templates themselves


def fluent_bit_commands() -> tuple[str, str]:
    """(daemon command, commented interval alternative) of fluent-bit.conf.example's exec input."""
    text = (REPO / "fluent-bit.conf.example").read_text()
    daemon = re.findall(r"(?m)^\s+command\s+(.+?)\s*$", text)
    interval = re.findall(r"(?m)^\s*#\s*command\s+(.+?)\s*$", text)
    assert len(daemon) == 1 and interval, "fluent-bit.conf.example: expected one command and its alternative"
    return daemon[0], interval[0]


def vector_commands() -> tuple[list[str], list[str]]:
    """(streaming argv, commented scheduled argv) of vector.toml.example's exec source."""
    text = (REPO / "vector.toml.example").read_text()
    streaming = tomllib.loads(text)["sources"]["genesys_audit"]["command"]
    section = re.search(r"(?ms)^\[sources\.genesys_audit\]$(.*?)(?=^\[)", text)
    assert section is not None
    scheduled = re.findall(r"(?m)^#\s*(command = \[.+\])\s*$", section.group(1))
    assert len(scheduled) == 1, "vector.toml.example: expected one commented scheduled command"
    return streaming, tomllib.loads(scheduled[0])["command"]


def with_config(command: str | list[str], config: Path) -> Any:
    if isinstance(command, str):
        assert HOST_CONFIG in command
        return command.replace(HOST_CONFIG, shlex.quote(str(config)))
    assert HOST_CONFIG in command
    return [str(config) if arg == HOST_CONFIG else arg for arg in command]


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimConfig(events=300, span=3600, newest_age=30)).start()
    yield simulator
    simulator.stop()


def write_config(tmp_path: Path, url: str, **extra: dict[str, Any]) -> Path:
    cfg: dict[str, Any] = {
        "genesys": {"api_url": url, "login_url": url, "client_id": DEFAULT_CLIENT_ID,
                    "client_secret": DEFAULT_CLIENT_SECRET},
        "state": {"path": str(tmp_path / "state.json")},
        "poll": {"start_from": "2h", "interval": "1s", "settle_delay": "1s", "late_window": "10s"},
        "output": {"replay_on_start": 0},  # each restart must print only what is new here
    }
    for section, values in extra.items():
        cfg.setdefault(section, {}).update(values)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def host_env(tmp_path: Path) -> dict[str, str]:
    """The environment a host gives the command: `genesys-audit-shipper` must be on PATH."""
    bindir = Path(sys.executable).parent
    if not (bindir / "genesys-audit-shipper").exists():
        bindir = tmp_path / "bin"
        bindir.mkdir()
        script = bindir / "genesys-audit-shipper"
        script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m shipper "$@"\n')
        script.chmod(0o755)
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}


class HostRun:
    """A child with stdout and stderr read line by line, the way a host reads them."""

    def __init__(self, argv: list[str], env: dict[str, str], *, new_session: bool = False) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                     start_new_session=new_session)
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self._readers = [threading.Thread(target=self._read, args=(s, d), daemon=True)
                         for s, d in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(stream: Any, sink: list[bytes]) -> None:
        for line in iter(stream.readline, b""):
            sink.append(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None and not condition():
                raise AssertionError(f"exited ({self.proc.returncode}) before {what}: {self.stderr_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout}s: {self.stderr_text()}")
            time.sleep(0.02)

    def finish(self, timeout: float) -> int:
        """Wait for the exit and for both streams to reach EOF."""
        code = self.proc.wait(timeout=timeout)
        for t in self._readers:
            t.join(timeout=5)
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self._own_group():
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
        self.proc.wait(timeout=10)

    def _own_group(self) -> bool:
        try:
            return os.getpgid(self.proc.pid) == self.proc.pid
        except ProcessLookupError:
            return False

    def records(self) -> list[dict[str, Any]]:
        return stdout_records(self.out)

    def stderr_text(self) -> str:
        return b"".join(self.err).decode(errors="replace")[-2000:]


def stdout_records(lines: list[bytes]) -> list[dict[str, Any]]:
    """Every stdout line is one complete JSON object."""
    records = []
    for line in lines:
        assert line.endswith(b"\n"), f"incomplete line on stdout: {line[:200]!r}"
        doc = json.loads(line)
        assert isinstance(doc, dict), f"not a JSON object: {line[:200]!r}"
        records.append(doc)
    return records


def assert_json_logs(lines: list[bytes]) -> None:
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            raise AssertionError(f"stderr line is not JSON: {line[:300]!r}") from None
        assert isinstance(doc, dict), line
        assert {"time", "level", "message"} <= doc.keys(), line
        assert doc["level"] in LOG_LEVELS, line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["time"]), line


def event_ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["siem_event_id"] for r in records]


def assert_each_event_once(sim: Simulator, *runs: list[dict[str, Any]]) -> None:
    ids = [i for records in runs for i in event_ids(records)]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, f"{len(duplicates)} event ids emitted twice"
    assert set(ids) == {e["id"] for e in sim.all_events()}


def last_success(state: Path) -> str | None:
    try:
        got = read_state(state)
    except ShipperError:
        return None
    return got.last_success if got is not None else None


def shipper_processes(config: Path) -> list[int]:
    """Live processes whose command line names this test's config file."""
    needle = str(config).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


def assert_no_shipper_left(config: Path) -> None:
    deadline = time.monotonic() + 2
    while (left := shipper_processes(config)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not left, f"shipper process(es) left behind: {left}"


def child_of(parent: int, config: Path) -> int | None:
    """The shipper that /bin/sh started (sh without `exec` stays the parent), if any."""
    for pid in shipper_processes(config):
        with contextlib.suppress(OSError):
            stat = (Path("/proc") / str(pid) / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                return pid
    return None


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """Orphans of our children become our children, so we can read a grandchild's exit code."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_child_subreaper = 36
    if libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        pytest.skip("prctl(PR_SET_CHILD_SUBREAPER) is not available")
    try:
        yield
    finally:
        libc.prctl(pr_set_child_subreaper, 0, 0, 0, 0)


def reap(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    raise AssertionError(f"process {pid} did not exit within {timeout}s")


# ---------------------------------------------------------------------------------------------
# Daemon mode: SIGTERM mid catch-up, restart, SIGTERM when idle


def daemon_two_runs(sim: Simulator, config: Path, start: Callable[[], HostRun],
                    stop: Callable[[HostRun], int]) -> None:
    state = config.with_name("state.json")
    # Run 1: stopped in the middle of the catch-up.
    first = start()
    try:
        first.wait_for(lambda: len(first.out) >= 100, 30, "100 records")
        assert stop(first) == 0
    finally:
        if first.proc.poll() is None:
            first.kill()
    assert_no_shipper_left(config)
    run1 = first.records()
    assert_json_logs(first.err)
    # Run 2: resumes from the checkpoint, catches up, completes one more (empty) cycle.
    second = start()
    try:
        missing = len(sim.all_events()) - len(run1)
        second.wait_for(lambda: len(second.out) >= missing, 30, f"the {missing} remaining records")
        caught_up = last_success(state)
        second.wait_for(lambda: last_success(state) != caught_up, 10, "another completed cycle")
        assert stop(second) == 0
    finally:
        if second.proc.poll() is None:
            second.kill()
    assert_no_shipper_left(config)
    assert_json_logs(second.err)
    assert_each_event_once(sim, run1, second.records())


def sigterm(run: HostRun, *, group: bool) -> int:
    started = time.monotonic()
    if group:
        os.killpg(run.pid, signal.SIGTERM)
    else:
        run.proc.send_signal(signal.SIGTERM)
    code = run.finish(timeout=STOP_WITHIN)
    assert time.monotonic() - started < STOP_WITHIN
    return code


def test_fluent_bit_daemon_via_sh_process_group(sim: Simulator, tmp_path: Path, host_env: dict[str, str]) -> None:
    """fluent-bit.conf.example's command (`exec genesys-audit-shipper run ...`) under /bin/sh -c."""
    config = write_config(tmp_path, sim.url)
    command = with_config(fluent_bit_commands()[0], config)
    assert command.startswith("exec "), "without exec, sh stays between Fluent Bit and the shipper"
    daemon_two_runs(sim, config, lambda: HostRun(["/bin/sh", "-c", command], host_env, new_session=True),
                    lambda run: sigterm(run, group=True))


def test_plain_sh_command_in_process_group(sim: Simulator, tmp_path: Path, host_env: dict[str, str]) -> None:
    """`/bin/sh -c "genesys-audit-shipper run ..."` without exec: sh (dash) dies of the SIGTERM, the shipper exits 0."""
    config = write_config(tmp_path, sim.url)
    command = with_config(fluent_bit_commands()[0], config).removeprefix("exec ")

    def stop(run: HostRun) -> int:
        shipper = child_of(run.pid, config)
        if shipper is None:  # this sh exec'd the simple command by itself (bash does)
            return sigterm(run, group=True)
        started = time.monotonic()
        os.killpg(run.pid, signal.SIGTERM)
        assert run.proc.wait(timeout=STOP_WITHIN) == -signal.SIGTERM  # what the host sees from sh
        code = reap(shipper, STOP_WITHIN - (time.monotonic() - started))
        run.finish(timeout=5)
        return code

    with subreaper():
        daemon_two_runs(sim, config, lambda: HostRun(["/bin/sh", "-c", command], host_env, new_session=True), stop)


def test_vector_daemon_argv_sigterm_to_child(sim: Simulator, tmp_path: Path, host_env: dict[str, str]) -> None:
    """vector.toml.example's command array, no shell, SIGTERM to the child only."""
    config = write_config(tmp_path, sim.url)
    argv = with_config(vector_commands()[0], config)
    daemon_two_runs(sim, config, lambda: HostRun(argv, host_env), lambda run: sigterm(run, group=False))


# ---------------------------------------------------------------------------------------------
# Interval / scheduled mode


def test_interval_once_runs(sim: Simulator, tmp_path: Path, host_env: dict[str, str]) -> None:
    """Fluent Bit's interval command, then Vector's scheduled argv: the second run has nothing to add."""
    config = write_config(tmp_path, sim.url)
    fb_interval = with_config(fluent_bit_commands()[1], config)
    vector_scheduled = with_config(vector_commands()[1], config)
    runs = []
    for argv, new_session in ((["/bin/sh", "-c", fb_interval], True), (vector_scheduled, False)):
        started = time.monotonic()
        run = HostRun(argv, host_env, new_session=new_session)
        try:
            assert run.finish(timeout=30) == 0, run.stderr_text()
        finally:
            if run.proc.poll() is None:
                run.kill()
        assert time.monotonic() - started < 30
        assert_json_logs(run.err)
        assert_no_shipper_left(config)
        runs.append(run.records())
    assert len(runs[0]) == len(sim.all_events())
    assert runs[1] == [], "the second --once run printed records again"
    assert_each_event_once(sim, *runs)


# ---------------------------------------------------------------------------------------------
# Shutdown and failure paths a host depends on


def test_sigterm_during_a_slow_api_answer(tmp_path: Path, host_env: dict[str, str]) -> None:
    with Simulator(SimConfig(events=300, span=3600, newest_age=30, fault_rate=1.0, faults=("slow",),
                             slow_seconds=12)) as slow:
        config = write_config(tmp_path, slow.url)
        run = HostRun(with_config(vector_commands()[0], config), host_env)
        try:
            run.wait_for(lambda: b"token obtained" in b"".join(run.err), 10, "a token")
            time.sleep(0.3)  # the first audit query is now waiting for its slow answer
            assert sigterm(run, group=False) == 0
        finally:
            if run.proc.poll() is None:
                run.kill()


def test_shipper_exits_when_its_reader_is_gone(sim: Simulator, tmp_path: Path, host_env: dict[str, str]) -> None:
    config = write_config(tmp_path, sim.url)
    proc = subprocess.Popen(with_config(vector_commands()[0], config), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=host_env)
    try:
        assert proc.stdout is not None
        for _ in range(len(sim.all_events())):
            assert proc.stdout.readline()
        state = config.with_name("state.json")
        caught_up, deadline = last_success(state), time.monotonic() + 10
        while last_success(state) == caught_up and time.monotonic() < deadline:
            time.sleep(0.02)  # wait until it is idle between cycles, past its last write
        assert last_success(state) != caught_up
        proc.stdout.close()  # the host is gone; nothing new to write for a while
        assert proc.wait(timeout=STOP_WITHIN) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.parametrize("case", ["config error", "API unreachable"])
def test_fatal_errors_are_json_log_lines(case: str, tmp_path: Path, host_env: dict[str, str]) -> None:
    if case == "config error":
        config = write_config(tmp_path, "http://127.0.0.1:9", poll={"intervall": "1s"})
    else:
        config = write_config(tmp_path, "http://127.0.0.1:9", rate_limit={"max_retries": 0})
    result = subprocess.run(with_config(vector_commands()[1], config), capture_output=True, timeout=30,
                            env=host_env)
    assert result.returncode in (1, 2)
    assert result.stdout == b""
    assert_json_logs(result.stderr.splitlines(keepends=True))


# ---------------------------------------------------------------------------------------------
# The helpers above can fail


def test_stdout_check_rejects_bad_lines() -> None:
    for bad in ([b'{"a": 1}'], [b"[1, 2]\n"], [b'{"a": 1}{"b": 2}\n'], [b"not json\n"]):
        with pytest.raises((AssertionError, ValueError)):
            stdout_records(bad)


def test_stderr_check_rejects_non_json_and_missing_fields() -> None:
    for bad in ([b"genesys-audit-shipper: error: x\n"], [b'{"level": "info", "message": "x"}\n'],
                [b'{"time": "2026-01-15T00:00:00.000Z", "level": "loud", "message": "x"}\n']):
        with pytest.raises(AssertionError):
            assert_json_logs(bad)


def test_each_event_once_check_rejects_duplicates_and_gaps(sim: Simulator) -> None:
    events = [{"siem_event_id": e["id"]} for e in sim.all_events()]
    with pytest.raises(AssertionError, match="twice"):
        assert_each_event_once(sim, events, events[:1])
    with pytest.raises(AssertionError):
        assert_each_event_once(sim, events[1:])


def test_orphan_check_sees_a_live_process(tmp_path: Path) -> None:
    marker = tmp_path / "config.yaml"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", str(marker)])
    try:
        deadline = time.monotonic() + 10
        while not shipper_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.01)  # until the child has exec'd
        with pytest.raises(AssertionError, match="left behind"):
            assert_no_shipper_left(marker)
    finally:
        proc.kill()
        proc.wait()

"""Shared helpers for the benchmarks: simulator process, config files, child rusage, tables."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
PY = sys.executable
BIN = Path(PY).parent
SHIPPER = [str(BIN / "genesys-audit-shipper")] if (BIN / "genesys-audit-shipper").exists() else [PY, "-m", "shipper"]
GUIDE = [PY, str(HERE / "guide_poller.py")]
CLIENT_ID, CLIENT_SECRET = "demo-client", "demo-secret"
UNPACED_RPM = 1_000_000  # "no client pacing": 60 µs between requests
# Children run as from an installed wheel: bytecode cached (in a prefix outside the work tree, so
# nothing is written next to the sources). This machine exports PYTHONDONTWRITEBYTECODE=1, which
# with the editable install would recompile the shipper's ~20 modules on every start (~25 ms CPU).
PYCACHE = Path(tempfile.gettempdir()) / "genesys-bench-pycache"
CHILD_ENV: dict[str, str | None] = {"PYTHONDONTWRITEBYTECODE": None, "PYTHONPYCACHEPREFIX": str(PYCACHE)}
NO_BYTECODE_ENV: dict[str, str | None] = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": None}


def child_env(overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for k, v in {**CHILD_ENV, **(overrides or {})}.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


# -- simulator in its own process -------------------------------------------------------------
class SimProcess:
    def __init__(self, **fields: Any) -> None:
        self.fields = fields
        started = time.monotonic()
        self.proc = subprocess.Popen([PY, str(HERE / "sim_server.py"), json.dumps(fields)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("http://"):
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise RuntimeError(f"simulator did not start: {line!r} {err[-2000:]}")
        self.url = line
        self.startup_s = time.monotonic() - started

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/__sim/stats", timeout=10) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- configs -----------------------------------------------------------------------------------
def write_config(tmp: Path, sim_url: str, **sections: dict[str, Any]) -> Path:
    """Same defaults as tests/conftest.py, with client pacing off unless a section sets it."""
    cfg: dict[str, Any] = {
        "genesys": {"api_url": sim_url, "login_url": sim_url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        "poll": {"start_from": "8h", "interval": "1s", "settle_delay": "1s", "late_window": "30s", "page_size": 100},
        "rate_limit": {"requests_per_minute": UNPACED_RPM, "backoff_base": "0.05s", "backoff_max": "1s"},
        "state": {"path": str(tmp / "state.json")},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return path


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# -- children with their own rusage ------------------------------------------------------------
@dataclass
class ChildRun:
    rc: int
    wall: float
    user: float
    sys: float
    maxrss_kb: int
    stderr_tail: str = ""
    stderr: str = ""

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def run_child(cmd: Sequence[str], *, stdout_path: str | os.PathLike[str] = os.devnull,
              timeout: float = 600, env: dict[str, str | None] | None = None) -> ChildRun:
    """Run cmd through measure.py and return the command's own rusage (wall, CPU, peak RSS).

    The small launcher keeps the command's ru_maxrss from inheriting this process's RSS.
    """
    with open(stdout_path, "wb") as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".json") as result:
        proc = subprocess.Popen([PY, str(HERE / "measure.py"), result.name, *cmd], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, env=child_env(env), start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RuntimeError(f"{cmd[0]} ran over {timeout:.0f} s") from None
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
        try:
            m = json.loads(Path(result.name).read_text())
        except ValueError:
            raise RuntimeError(f"measure.py failed (exit {proc.returncode}): {text[-2000:]}") from None
    return ChildRun(m["rc"], m["wall"], m["user"], m["sys"], m["maxrss_kb"], text[-3000:], text)


def check(run: ChildRun, what: str) -> None:
    if run.rc != 0:
        raise RuntimeError(f"{what} exited {run.rc}: {run.stderr_tail}")


def count_lines(path: str | os.PathLike[str]) -> int:
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
    return n


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# -- output ------------------------------------------------------------------------------------
def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [f"\n## {title}\n", "| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in cells[1:]:
        cols = (c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(r, widths, strict=True))
        lines.append("| " + " | ".join(cols) + " |")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.1f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.3f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _numeric(s: str) -> bool:
    return bool(s) and (s[0].isdigit() or (s[0] in "-." and len(s) > 1)) and not s.endswith(("PASS", "FAIL"))

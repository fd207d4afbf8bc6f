"""The verbs that ship: run, demo and backfill."""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from .. import logs
from ..app import OrgRuntime, build_org, build_sink
from ..config import Config, config_from_mapping, load_config, resolve_start
from ..errors import ConfigError, Interrupted, OutputClosed
from ..lifecycle import Lifecycle
from ..output.writer import Writer
from ..schemas import SCHEMAS
from ..simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimConfig, Simulator
from ..telemetry.metrics import Metrics


def _ship(cfg: Config, lifecycle: Lifecycle, *, once: bool, state_path: str | None = None,
          backfill: tuple[int, int] | None = None) -> int:
    """Run one org's engine in a worker until it ends or a stop; raise what made it fail."""
    writer = Writer(build_sink(cfg, lifecycle), lifecycle)
    rt: OrgRuntime | None = None
    try:
        rt = build_org(cfg, lifecycle, writer, state_path=state_path, progress=True)
        rt.store.acquire()
        engine = rt.engine
        if backfill is not None:
            engine.load(start_ms=backfill[0])
            work = lambda: engine.backfill(backfill[1])  # noqa: E731
        else:
            engine.load()
            work = lambda: engine.run(once=once)  # noqa: E731
        metrics = Metrics({"": rt.counters}, cfg.metrics.textfile, cfg.metrics.stats_interval)
        outcomes = lifecycle.run_workers({"": work}, tick=metrics.maybe_report)
        metrics.flush()
        for exc in outcomes.values():
            if exc is not None and not isinstance(exc, (Interrupted, OutputClosed)):
                raise exc
        return 0
    finally:
        writer.close()
        if rt is not None:
            rt.store.release()
            rt.client.close()


def cmd_run(args: argparse.Namespace, lifecycle: Lifecycle) -> int:
    cfg = load_config(args.config)
    if args.max_runtime:
        lifecycle.set_max_runtime(args.max_runtime)
    return _ship(cfg, lifecycle, once=args.once)


def cmd_demo(args: argparse.Namespace, lifecycle: Lifecycle) -> int:
    if args.schema not in SCHEMAS or args.schema == "custom":
        names = ", ".join(s for s in SCHEMAS if s != "custom")
        raise ConfigError(f"--schema {args.schema!r} is unknown: use one of {names}")
    sim = Simulator(SimConfig(events=args.events, span=2 * 3600, newest_age=30, live_rate=1.0)).start()
    logs.info("demo: simulator started", url=sim.url)
    try:
        with tempfile.TemporaryDirectory(prefix="genesys-demo-") as tmp:
            cfg = config_from_mapping({
                "genesys": {"api_url": sim.url, "login_url": sim.url, "client_id": DEFAULT_CLIENT_ID,
                            "client_secret": DEFAULT_CLIENT_SECRET},
                "poll": {"start_from": "3h", "interval": "2s", "settle_delay": "1s", "late_window": "20s"},
                "state": {"path": f"{tmp}/state.json"},
                "output": {"schema": args.schema},
            }, "demo")
            return _ship(cfg, lifecycle, once=args.once)
    finally:
        sim.stop()


def backfill_state_path(state_path: str, start: str, end: str) -> str:
    """Keyed by the arguments as written, so rerunning the same command (even `--from 7d`) resumes."""
    tag = hashlib.sha256(f"{start}\0{end}".encode()).hexdigest()[:10]
    return f"{state_path}.backfill-{tag}.json"


def cmd_backfill(args: argparse.Namespace, lifecycle: Lifecycle) -> int:
    cfg = load_config(args.config)
    now = datetime.now(timezone.utc)
    try:
        start = resolve_start(args.start, now)
        end = resolve_start(args.end, now)
    except ValueError:
        raise ConfigError(
            f"--from {args.start!r} / --to {args.end!r}: use ISO-8601 times or lookbacks such as 7d"
        ) from None
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    if end_ms <= start_ms:
        raise ConfigError(f"--to must be after --from (got {args.start!r} .. {args.end!r})")
    path = args.backfill_state or backfill_state_path(cfg.state.path, args.start, args.end)
    if Path(path).absolute() == Path(cfg.state.path).absolute():
        raise ConfigError("--state must not be the live state.path: backfill never touches the live checkpoint")
    return _ship(cfg, lifecycle, once=True, state_path=path, backfill=(start_ms, end_ms))

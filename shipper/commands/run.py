"""The verbs that ship: run, demo and backfill."""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import logs
from ..app import OrgRuntime, build_coordinator, build_org, build_sink
from ..config import resolve_start
from ..core.supervisor import OrgJob, run_orgs, summarize
from ..errors import ConfigError
from ..lifecycle import Lifecycle
from ..orgs import Deployment, Org, deployment_from_mapping, load_deployment
from ..output.writer import Writer
from ..schemas import SCHEMAS
from ..simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimConfig, Simulator, org_configs
from ..telemetry.metrics import Metrics

Work = Callable[[OrgRuntime], Callable[[], None]]


def _ship(dep: Deployment, orgs: list[Org], lifecycle: Lifecycle, work: Work, *, once: bool,
          state_path: Callable[[Org], str | None] = lambda _o: None,
          start_ms: int | None = None) -> int:
    """Run the orgs' engines in workers until they end or a stop; raise what the exit code must say."""
    writer = Writer(build_sink(dep.defaults, lifecycle), lifecycle)
    gate = threading.BoundedSemaphore(dep.max_parallel)
    runtimes: list[OrgRuntime] = []
    shared = dep.defaults.state.backend == "etcd" and state_path(orgs[0]) is None
    coordinator = build_coordinator(dep.defaults, dep.org_names) if shared else None
    try:
        for org in orgs:
            runtimes.append(build_org(org.cfg, lifecycle, writer, name=org.name, state_path=state_path(org),
                                      progress=not dep.named, gate=gate, coordinator=coordinator))
        jobs = [OrgJob(rt.name, rt.engine, rt.store.acquire, rt.store.release,
                       lambda rt=rt: rt.engine.load(start_ms), work(rt),
                       getattr(rt.store, "standby_s", float(rt.cfg.poll.interval))) for rt in runtimes]
        metrics = Metrics({rt.name: rt.counters for rt in runtimes}, dep.defaults.metrics.textfile,
                          dep.defaults.metrics.stats_interval)
        outcomes = run_orgs(jobs, lifecycle, once=once, named=dep.named, shared=shared, tick=metrics.maybe_report)
        metrics.flush()
        summarize(outcomes, dep.named)
        return 0
    finally:
        writer.close()
        for rt in runtimes:
            rt.store.release()
            rt.client.close()
        if coordinator is not None:
            coordinator.stop()


def cmd_run(args: argparse.Namespace, lifecycle: Lifecycle) -> int:
    dep = load_deployment(args.config)
    if args.max_runtime:
        lifecycle.set_max_runtime(args.max_runtime)
    return _ship(dep, dep.org(args.org), lifecycle, lambda rt: lambda: rt.engine.run(once=args.once), once=args.once)


def cmd_demo(args: argparse.Namespace, lifecycle: Lifecycle) -> int:
    if args.schema not in SCHEMAS or args.schema == "custom":
        names = ", ".join(s for s in SCHEMAS if s != "custom")
        raise ConfigError(f"--schema {args.schema!r} is unknown: use one of {names}")
    if not 1 <= args.orgs <= 100:
        raise ConfigError("--orgs must be between 1 and 100")
    common: dict[str, Any] = {"events": args.events, "span": 2 * 3600, "newest_age": 30, "live_rate": 1.0}
    sims = org_configs(args.orgs, **common) if args.orgs > 1 else [SimConfig(**common)]
    sim = Simulator(orgs=sims).start()
    logs.info("demo: simulator started", url=sim.url, orgs=args.orgs)
    try:
        with tempfile.TemporaryDirectory(prefix="genesys-demo-") as tmp:
            dep = deployment_from_mapping(_demo_config(sim.url, sims, args.schema, tmp), "demo")
            return _ship(dep, dep.orgs, lifecycle, lambda rt: lambda: rt.engine.run(once=args.once), once=args.once)
    finally:
        sim.stop()


def _demo_config(url: str, sims: list[SimConfig], schema: str, tmp: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "genesys": {"api_url": url, "login_url": url, "client_id": DEFAULT_CLIENT_ID,
                    "client_secret": DEFAULT_CLIENT_SECRET},
        "poll": {"start_from": "3h", "interval": "2s", "settle_delay": "1s", "late_window": "20s"},
        "state": {"path": f"{tmp}/state.json"},
        "output": {"schema": schema},
    }
    if len(sims) > 1:
        doc["orgs"] = [{"name": f"org{i + 1}", "genesys": {"client_id": s.client_id, "client_secret": s.client_secret}}
                       for i, s in enumerate(sims)]
    return doc


def backfill_state_path(state_path: str, start: str, end: str) -> str:
    """Keyed by the arguments as written, so rerunning the same command (even `--from 7d`) resumes."""
    tag = hashlib.sha256(f"{start}\0{end}".encode()).hexdigest()[:10]
    return f"{state_path}.backfill-{tag}.json"


def cmd_backfill(args: argparse.Namespace, lifecycle: Lifecycle) -> int:
    dep = load_deployment(args.config)
    if dep.named and args.org is None:
        raise ConfigError("backfill: this config has several orgs; name one with --org NAME")
    orgs = dep.org(args.org)
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
    live = orgs[0].cfg.state.path
    path = args.backfill_state or backfill_state_path(live, args.start, args.end)
    if Path(path).absolute() == Path(live).absolute():
        raise ConfigError("--state must not be the live state.path: backfill never touches the live checkpoint")
    return _ship(dep, orgs, lifecycle, lambda rt: lambda: rt.engine.backfill(end_ms), once=True,
                 state_path=lambda _o: path, start_ms=start_ms)

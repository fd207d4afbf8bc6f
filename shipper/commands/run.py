"""The verbs that ship: run, demo and backfill."""

from __future__ import annotations

import argparse
import hashlib
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from ..app import OrgRuntime, build_coordinator, build_org, build_sink
from ..config import resolve_start
from ..core.supervisor import OrgJob, run_orgs, summarize
from ..errors import ConfigError
from ..lifecycle import Lifecycle
from ..orgs import Deployment, Org, load_deployment
from ..output.writer import Writer
from ..telemetry.metrics import Metrics

Work = Callable[[OrgRuntime], Callable[[], None]]


def ship(dep: Deployment, orgs: list[Org], lifecycle: Lifecycle, work: Work, *, once: bool,
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
    return ship(dep, dep.org(args.org), lifecycle, lambda rt: lambda: rt.engine.run(once=args.once), once=args.once)


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
    return ship(dep, orgs, lifecycle, lambda rt: lambda: rt.engine.backfill(end_ms), once=True,
                 state_path=lambda _o: path, start_ms=start_ms)

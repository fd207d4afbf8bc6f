"""Wiring: config -> HTTP client and token -> source -> pipeline -> checkpoint store -> writer ->
engine. Nothing else builds these objects, and nothing here does any work itself."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from . import __version__
from .config import Config, require_credentials
from .core.checkpoint import Checkpoint
from .core.engine import Engine
from .core.pipeline import Pipeline
from .lifecycle import Lifecycle
from .net.auth import TokenProvider
from .net.http import HttpClient
from .output.http_sink import HttpSink
from .output.sinks import RotatingFileSink, Sink, StdoutSink
from .output.writer import Writer
from .proof.chain import load_key
from .sources import build_source
from .store.etcd import Coordinator, EtcdStore
from .store.file import FileStore
from .telemetry.counters import Counters
from .telemetry.progress import ProgressLine


def build_client(cfg: Config, lifecycle: Lifecycle, counters: Counters | None = None,
                 max_retries: int | None = None) -> tuple[HttpClient, TokenProvider]:
    """The HTTP client, authorized by its TokenProvider."""
    client_id, secret = require_credentials(cfg)
    g, rl = cfg.genesys, cfg.rate_limit
    client = HttpClient(
        requests_per_minute=rl.requests_per_minute,
        max_retries=rl.max_retries if max_retries is None else max_retries,
        backoff_base=rl.backoff_base, backoff_max=rl.backoff_max, connect_timeout=g.connect_timeout,
        read_timeout=g.read_timeout, proxy=g.proxy, ca_bundle=g.ca_bundle, stop=lifecycle.stop,
        counters=counters, user_agent=f"genesys-audit-shipper/{__version__}",
    )
    tokens = TokenProvider(f"{cfg.login_base}/oauth/token", client_id, secret, client, margin=g.token_refresh_margin)
    client.authorize(tokens.token, tokens.invalidate)
    return client, tokens


def build_sink(cfg: Config, lifecycle: Lifecycle) -> Sink:
    out = cfg.output
    if out.http:
        return HttpSink(cfg, lifecycle)
    if out.path:
        return RotatingFileSink(out.path, out.rotate_bytes, out.keep_files)
    return StdoutSink(lifecycle)


Store = FileStore | EtcdStore


def build_coordinator(cfg: Config, org_names: list[str]) -> Coordinator | None:
    """The etcd membership of this process, when the state lives in etcd (one for every org)."""
    return Coordinator(cfg.state.etcd, org_names) if cfg.state.backend == "etcd" else None


def build_store(cfg: Config, state_path: str | None = None, *, org: str = "",
                coordinator: Coordinator | None = None) -> Store:
    if state_path is None and cfg.state.backend == "etcd":
        assert coordinator is not None, "an etcd store needs the process's coordinator"
        return EtcdStore(coordinator, org)
    return FileStore(state_path or cfg.state.path)


@dataclass
class OrgRuntime:
    """Everything one org ships with."""

    name: str
    cfg: Config
    counters: Counters
    client: HttpClient
    tokens: TokenProvider
    store: Store
    engine: Engine


def build_org(cfg: Config, lifecycle: Lifecycle, writer: Writer, *, name: str = "", state_path: str | None = None,
              progress: bool = False, clock: Callable[[], float] | None = None,
              gate: AbstractContextManager[object] | None = None,
              coordinator: Coordinator | None = None) -> OrgRuntime:
    counters = Counters()
    client, tokens = build_client(cfg, lifecycle, counters)
    store = build_store(cfg, state_path, org=name, coordinator=coordinator)
    server_clock = clock or client.server_now
    checkpoint = Checkpoint(store, counters, server_clock)
    reporter = ProgressLine() if progress and sys.stderr.isatty() else None
    key = load_key(cfg.output.chain_key_file) if cfg.output.chain == "hmac-sha256" and cfg.output.chain_key_file else None
    pipeline = Pipeline(cfg, key, org=name)
    engine = Engine(cfg=cfg, source=build_source(cfg, client), pipeline=pipeline, checkpoint=checkpoint,
                    writer=writer, quarantine=writer.quarantine(cfg.output.quarantine), lifecycle=lifecycle,
                    clock=server_clock, progress=reporter, org=name, sync_clock=tokens.token, gate=gate)
    return OrgRuntime(name, cfg, counters, client, tokens, store, engine)

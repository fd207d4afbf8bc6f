"""The HTTP server: one route per endpoint, each behind the gate that endpoint had at Genesys
(rate limit, its own set of seeded faults, token, permission), and `Simulator`, the object tests use."""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .config import FAULT_KINDS, SimConfig
from .events import EventStore
from .events_cursor import handle_events_cursor
from .exchange import Exchange
from .gate import gate
from .query import handle_download, handle_results, handle_status, handle_submit
from .realtime import handle_realtime
from .servicemapping import handle_servicemapping
from .state import LoggedRequest, Orgs, OrgState, SimStats, Transaction
from .stats import handle_stats
from .token import handle_token

COUNT_PATH = ""  # Route.stat: count the request under its path key (see stat_key)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[Exchange], None]
    faults: tuple[str, ...] | None  # the seeded faults this endpoint can suffer; None: not gated
    stat: str | None = COUNT_PATH  # the stats.paths key; COUNT_PATH: from the path; None: not counted


def _route(method: str, path: str, handler: Callable[[Exchange], None], faults: tuple[str, ...] | None,
           stat: str | None = COUNT_PATH) -> Route:
    return Route(method, re.compile(path), handler, faults, stat)


ROUTES = (
    _route("POST", r"/oauth/token", handle_token, None, stat=None),  # counted under the org of its client id
    _route("POST", r"/api/v2/audits/query", handle_submit, ("500", "502", "503", "504", "reset", "slow", "revoke", "storm")),
    _route("POST", r"/api/v2/audits/query/realtime", handle_realtime, FAULT_KINDS),
    _route("GET", r"/__sim/stats", handle_stats, None, stat=None),
    _route("GET", r"/download/([^/]+)", handle_download, None, stat="GET download"),
    _route("GET", r"/api/v2/audits/query/servicemapping", handle_servicemapping, ("500", "503")),
    _route("GET", r"/api/v2/audits/query/realtime/servicemapping", handle_servicemapping, ("500", "503")),
    _route("GET", r"/api/v2/auditlogs/events", handle_events_cursor, FAULT_KINDS),
    _route("GET", r"/api/v2/audits/query/([^/]+)", handle_status, ("500", "503", "reset", "revoke")),
    _route("GET", r"/api/v2/audits/query/([^/]+)/results", handle_results, FAULT_KINDS),
)


def stat_key(method: str, path: str) -> str:
    """The stats.paths key: the last path segment under /audits/query/, else the whole path."""
    if method == "GET" and path.endswith("/realtime/servicemapping"):
        return "GET realtime/servicemapping"
    return f"{method} {path.rsplit('/', 1)[-1] if 'query/' in path else path}"


def find_route(method: str, path: str) -> tuple[Route, tuple[str, ...]] | None:
    for route in ROUTES:
        if route.method == method:
            m = route.pattern.fullmatch(path)
            if m:
                return route, m.groups()
    return None


def dispatch(handler: SimHandler, method: str) -> None:
    parts = urlsplit(handler.path)
    n = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(n) if n else b""
    auth = handler.headers.get("Authorization", "")
    org = handler.orgs.for_token(auth[7:] if auth.startswith("Bearer ") else None)
    qs = parse_qs(parts.query)
    org.request_log.append(LoggedRequest(method, parts.path, qs, body))
    ex = handler.exchange = Exchange(handler, handler.orgs, org, parts.path, qs, body)
    found = find_route(method, parts.path)
    if found is None:
        org.count_path(stat_key(method, parts.path))
        return ex.error(404, "not.found", f"no route {parts.path}")
    route, ex.params = found
    if route.stat is not None:
        org.count_path(route.stat or stat_key(method, parts.path))
    if route.faults is not None and gate(ex, route.faults):
        return None
    route.handler(ex)


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, each answer would wait ~40 ms for
    # the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "GenesysSim/1.0"
    orgs: Orgs  # set on each simulator's own subclass
    exchange: Exchange | None = None  # the request being answered

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header, on the answering org's clock (`clock_offset`)."""
        if timestamp is None:
            timestamp = self.exchange.org.now() if self.exchange else time.time()
        return super().date_time_string(timestamp)

    def log_message(self, fmt: str, *args: Any) -> None:
        if not self.orgs.default.cfg.quiet:
            sys.stderr.write("sim: " + fmt % args + "\n")

    def do_GET(self) -> None:  # noqa: N802
        dispatch(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        dispatch(self, "POST")


class Simulator:
    """A real HTTP server on 127.0.0.1 serving one or several orgs (see the package docstring)."""

    def __init__(self, cfg: SimConfig | None = None, port: int = 0, tls: tuple[str, str] | None = None,
                 orgs: list[SimConfig] | None = None) -> None:
        if orgs and cfg is not None:
            raise ValueError("give either cfg (one org) or orgs (one SimConfig per org), not both")
        self.started = time.time()
        self.orgs = Orgs(list(orgs) if orgs else [cfg or SimConfig()], self.started)
        handler = type("Handler", (SimHandler,), {"orgs": self.orgs})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls:
            import ssl  # only TLS tests need it

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.orgs.base_url = self.url
        self.thread: threading.Thread | None = None

    # -- the default org (the only one unless `orgs` was given) -------------------------------
    @property
    def cfg(self) -> SimConfig:
        return self.orgs.default.cfg

    @property
    def store(self) -> EventStore:
        return self.orgs.default.store

    @property
    def stats(self) -> SimStats:
        return self.orgs.default.stats

    @property
    def tokens(self) -> dict[str, float]:
        """The default org's live tokens (token -> expiry); clear() revokes them."""
        return self.orgs.default.tokens

    @property
    def txns(self) -> dict[str, Transaction]:
        return self.orgs.default.txns

    def org(self, client_id: str | None = None) -> OrgState:
        """One org's state (cfg, store, stats, tokens, txns) by client id; None: the default org."""
        return self.orgs.get(client_id)

    def stats_doc(self, client_id: str | None = None) -> dict[str, Any]:
        return self.orgs.get(client_id).stats_doc()

    def all_events(self, client_id: str | None = None) -> list[dict[str, Any]]:
        """Every event the simulator will ever serve to that org (for tests)."""
        return self.orgs.get(client_id).all_events()

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def start(self) -> Simulator:
        # serve_forever checks for shutdown every poll_interval: stop() waits up to that long.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

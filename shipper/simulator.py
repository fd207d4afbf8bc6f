"""A Genesys Cloud audit API simulator: a real HTTP server on 127.0.0.1 (stdlib only).

Serves OAuth client credentials, the async audit query API (202 states, cursor pages, 302
downloadUrl, 404 for expired transactions, 400 for too-large pages), the realtime query API, the
guide's events-cursor contract and the service mapping. Events are deterministic for a seed.
Seeded faults: 5xx, connection resets, slow answers, truncated bodies, revoked tokens (401),
expired transactions, 429 storms with Retry-After.

    python -m shipper.simulator --port 8089 --events 5000
"""

from __future__ import annotations

import argparse
import base64
import bisect
import collections
import json
import random
import socket
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ORG_ID = "6b2e8a9c-0d3f-4e1a-9b7c-5d4e3f2a1b0c"
SERVICES: dict[str, dict[str, list[str]]] = {
    "Directory": {"User": ["Create", "Update", "Delete", "View"], "Group": ["Create", "Update", "Delete"]},
    "Authorization": {"Role": ["Create", "Update", "Delete"], "Grant": ["Add", "Remove"]},
    "OAuth": {"OAuthClient": ["Create", "Update", "Delete"]},
    "Routing": {"Queue": ["Create", "Update", "Delete"], "Skill": ["Add", "Remove"]},
    "Architect": {"Flow": ["Publish", "Update", "Checkout", "View"]},
    "Telephony": {"Trunk": ["Update", "Create"]},
    "Quality": {"Evaluation": ["Create", "View"]},
    "Workforce Management": {"Schedule": ["Publish", "Update"]},
}
_FLAT = [(s, e, a) for s, ents in SERVICES.items() for e, acts in ents.items() for a in acts]
NAMES = [
    "Ada Lovelace", "Zoë Ångström", "José \"Pepe\" Núñez", "O'Brien \\ Backslash", "名前 太郎",
    "Line\nBreak", "Émile Zola", "Grace Hopper", "Tab\tName", "Ünïcødé ✓ 🚀",
]
DEFAULT_CLIENT_ID = "demo-client"
DEFAULT_CLIENT_SECRET = "demo-secret"
FAULT_KINDS = ("500", "502", "503", "504", "reset", "slow", "truncated", "revoke", "expire", "storm")


@dataclass
class SimConfig:
    seed: int = 1
    events: int = 3000
    span: float = 6 * 3600.0
    newest_age: float = 120.0
    base_time: float | None = None
    burst_every: int = 400
    burst_size: tuple[int, int] = (50, 300)
    large_fraction: float = 0.01
    huge_events: int = 2
    token_ttl: int = 86400
    txn_ttl: float = 3600.0
    query_delay: float = 0.05
    max_page_bytes: int = 2_000_000
    rate_limit: int = 0
    rate_window: float = 60.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    slow_seconds: float = 1.0
    late_fraction: float = 0.0
    late_newest: int = 0
    late_max_age: float = 0.0
    late_delay: tuple[float, float] = (10.0, 20.0)
    live_rate: float = 0.0
    # Realtime only: this many new events arrive while a client pages, `arrivals_per_request` per
    # request, stamped with the last timestamp served and sorted before the events already there.
    realtime_arrivals: int = 0
    arrivals_per_request: int = 2
    malformed: int = 0
    forbid_audits: bool = False
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    quiet: bool = True


def _iso(ms: int) -> str:
    s, r = divmod(ms, 1000)
    return datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{r:03d}Z"


def _parse_iso(text: str) -> int:
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return round(dt.timestamp() * 1000)


@dataclass
class Event:
    ts: int
    id: str
    doc: dict[str, Any]
    expanded: bytes
    plain: bytes
    visible_at: float = 0.0


def make_event(rng: random.Random, ts: int, cfg: SimConfig, big: int = 0) -> dict[str, Any]:
    service, entity_type, action = rng.choice(_FLAT)
    user_no = rng.randrange(len(NAMES) * 3)
    name = NAMES[user_no % len(NAMES)]
    ev_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    user_id = str(uuid.UUID(int=user_no * 7919 + 11, version=4))
    entity_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    changes = [{"property": "name", "oldValues": [f"old-{rng.randrange(1000)}"], "newValues": [name]}]
    if big:
        chunk = "flow step ‘é’ \"quoted\" \\ " * (big // 24 + 1)
        changes.append({"property": "script", "oldValues": [], "newValues": [chunk[:big]]})
    return {
        "id": ev_id,
        "userHomeOrgId": ORG_ID,
        "user": {"id": user_id, "name": name, "selfUri": f"/api/v2/users/{user_id}"},
        "client": {"id": "c1a2b3c4-0000-4000-8000-00000000c11e", "selfUri": "/api/v2/oauth/clients/c1"},
        "remoteIp": [f"198.51.100.{user_no % 250 + 1}"],
        "serviceName": service,
        "level": "USER" if rng.random() < 0.9 else "SYSTEM",
        "eventDate": _iso(ts),
        "message": {
            "localizableMessageCode": f"{service}.{entity_type}.{action}".upper().replace(" ", "_"),
            "message": f"{name} did {action} on {entity_type}",
            "messageWithParams": "{0} did {1} on {2}",
            "messageParams": {"0": name, "1": action, "2": entity_type},
        },
        "action": action,
        "entity": {"id": entity_id, "name": f"{entity_type} {rng.randrange(100)} “x”",
                   "selfUri": f"/api/v2/x/{entity_id}"},
        "entityType": entity_type,
        "status": "SUCCESS" if rng.random() < 0.93 else rng.choice(["FAILURE", "WARNING"]),
        "application": "Genesys Cloud",
        "initiatingAction": {"transactionId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                             "actionContext": "UI"},
        "transactionInitiator": True,
        "propertyChanges": changes,
        "context": {"source": "sim", "burst": "no"},
        "entityChanges": [],
    }


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class EventStore:
    """Sorted, pre-encoded events; `visible_at` hides late arrivals until their time comes."""

    def __init__(self, cfg: SimConfig, started: float) -> None:
        self.cfg = cfg
        self.started = started
        base = cfg.base_time if cfg.base_time is not None else started
        self.newest_ms = int((base - cfg.newest_age) * 1000)
        self.oldest_ms = self.newest_ms - int(cfg.span * 1000)
        rng = random.Random(cfg.seed)
        n = cfg.events
        stamps: list[int] = []
        while len(stamps) < n:
            ts = rng.randint(self.oldest_ms, self.newest_ms)
            if cfg.burst_every and len(stamps) % cfg.burst_every == 0:
                stamps.extend([ts] * min(n - len(stamps), rng.randint(*cfg.burst_size)))
            else:
                stamps.append(ts)
        stamps.sort()
        large = set(rng.sample(range(n), min(n, int(n * cfg.large_fraction)))) if n else set()
        huge = set(rng.sample(range(n), min(n, cfg.huge_events))) if n else set()
        self.events: list[Event] = []
        for i, ts in enumerate(stamps):
            big = 120_000 if i in huge else rng.randint(4200, 9000) if i in large else 0
            doc = make_event(rng, ts, cfg, big)
            self.events.append(self._wrap(ts, doc))
        if cfg.malformed:
            for i in rng.sample(range(n), min(n, cfg.malformed)):
                ev = self.events[i]
                bad = dict(ev.doc, eventDate="not-a-date")
                self.events[i] = Event(ev.ts, ev.id, bad, _encode(bad), _encode(bad))
        if cfg.late_fraction and (cfg.late_newest or cfg.late_max_age):
            if cfg.late_max_age:
                cut = int((started - cfg.late_max_age) * 1000)
                newest = [e for e in self.events if e.ts >= cut]
            else:
                newest = self.events[-cfg.late_newest:]
            for ev in rng.sample(newest, int(len(newest) * cfg.late_fraction)):
                ev.visible_at = started + rng.uniform(*cfg.late_delay)
        self.ts = [e.ts for e in self.events]
        self.live_rng = random.Random(cfg.seed + 1)
        self.live_count = 0
        self.arrival_rng = random.Random(cfg.seed + 2)
        self.arrived = 0
        self.lock = threading.Lock()

    @staticmethod
    def _wrap(ts: int, doc: dict[str, Any]) -> Event:
        plain_doc = dict(doc, user={k: v for k, v in doc["user"].items() if k != "name"})
        return Event(ts, doc["id"], doc, _encode(doc), _encode(plain_doc))

    def extend_live(self, now: float) -> None:
        """Append live events up to `now` (demo mode: a steady trickle of new audits)."""
        if not self.cfg.live_rate:
            return
        with self.lock:
            due = int((now - self.started) * self.cfg.live_rate)
            while self.live_count < due:
                ts = int((self.started + self.live_count / self.cfg.live_rate) * 1000)
                self.live_count += 1
                ev = self._wrap(ts, make_event(self.live_rng, ts, self.cfg))
                ev.visible_at = ts / 1000 + 0.2
                idx = bisect.bisect_right(self.ts, ts)
                self.ts.insert(idx, ts)
                self.events.insert(idx, ev)

    def arrive(self, ts: int, count: int) -> int:
        """Insert up to `count` new events at `ts`, ahead of that millisecond's existing events
        (where a reader paging by number has already passed). Returns how many arrived."""
        with self.lock:
            count = min(count, self.cfg.realtime_arrivals - self.arrived)
            idx = bisect.bisect_left(self.ts, ts)
            for _ in range(count):
                ev = self._wrap(ts, make_event(self.arrival_rng, ts, self.cfg))
                self.ts.insert(idx, ts)
                self.events.insert(idx, ev)
            self.arrived += max(0, count)
        return max(0, count)

    def select(self, start_ms: int, end_ms: int, now: float, match: Any = None) -> list[Event]:
        self.extend_live(now)
        with self.lock:
            lo = bisect.bisect_left(self.ts, start_ms)
            hi = bisect.bisect_left(self.ts, end_ms)
            chosen = self.events[lo:hi]
        return [e for e in chosen if e.visible_at <= now and (match is None or match(e.doc))]


def _matcher(service: str | None, filters: list[dict[str, str]]) -> Any:
    if not service and not filters:
        return None
    keys = {"EntityType": lambda d: d.get("entityType"), "Action": lambda d: d.get("action"),
            "UserId": lambda d: (d.get("user") or {}).get("id"), "EntityId": lambda d: (d.get("entity") or {}).get("id"),
            "ClientId": lambda d: (d.get("client") or {}).get("id")}

    def match(doc: dict[str, Any]) -> bool:
        if service and doc.get("serviceName") != service:
            return False
        return all(keys.get(f.get("property", ""), lambda d: None)(doc) == f.get("value") for f in filters)

    return match


def guide_shape(doc: dict[str, Any]) -> dict[str, Any]:
    """The guide's events-cursor shape of a real event."""
    return {
        "id": doc["id"],
        "date": doc["eventDate"],
        "actorId": (doc.get("user") or {}).get("id"),
        "actorName": (doc.get("user") or {}).get("name"),
        "eventType": f"{doc['serviceName']}.{doc['entityType']}.{doc['action']}".lower(),
        "entityId": (doc.get("entity") or {}).get("id"),
        "entityType": doc.get("entityType"),
        "data": {k: doc[k] for k in ("propertyChanges", "remoteIp", "status", "level", "message") if k in doc},
    }


@dataclass
class Transaction:
    id: str
    created: float
    events: list[Event]
    interval: str
    expired: bool = False


@dataclass
class SimStats:
    token_requests: int = 0
    requests: int = 0
    throttled: int = 0
    retry_after_violations: int = 0
    max_page_size: int = 0
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    paths: collections.Counter[str] = field(default_factory=collections.Counter)
    events_served: int = 0


class Simulator:
    def __init__(self, cfg: SimConfig | None = None, port: int = 0, tls: tuple[str, str] | None = None) -> None:
        self.cfg = cfg or SimConfig()
        self.started = time.time()
        self.store = EventStore(self.cfg, self.started)
        self.rng = random.Random(self.cfg.seed * 7 + 3)
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}
        self.txns: dict[str, Transaction] = {}
        self.downloads: dict[str, list[Event]] = {}
        self.stats = SimStats()
        self.recent: collections.deque[float] = collections.deque()
        self.blocked_until = 0.0
        self.storm_until = 0.0
        self.realtime_last_ts: int | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(self))
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def start(self) -> Simulator:
        # serve_forever checks for shutdown every poll_interval: stop() waits up to that long.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats_doc(self) -> dict[str, Any]:
        s = self.stats
        return {
            "token_requests": s.token_requests, "requests": s.requests, "throttled": s.throttled,
            "retry_after_violations": s.retry_after_violations, "max_page_size": s.max_page_size,
            "faults": dict(s.faults), "paths": dict(s.paths), "events_served": s.events_served,
            "events_total": len(self.store.events), "realtime_arrived": self.store.arrived,
        }

    def all_events(self) -> list[dict[str, Any]]:
        """Every event the simulator will ever serve (for tests)."""
        return [e.doc for e in self.store.events]

    # -- gatekeeping: rate limit and faults ----------------------------------------------------
    def admit(self) -> tuple[int, float] | None:
        """(429, retry_after) if the request is throttled, else None. Counts violations."""
        now = time.monotonic()
        with self.lock:
            self.stats.requests += 1
            if now < self.blocked_until:
                self.stats.retry_after_violations += 1
                self.stats.throttled += 1
                return 429, max(1.0, self.blocked_until - now)
            if now < self.storm_until:
                self.stats.throttled += 1
                wait = float(self.rng.randint(1, 2))
                self.blocked_until = now + wait
                return 429, wait
            limit, window = self.cfg.rate_limit, self.cfg.rate_window
            if limit:
                while self.recent and self.recent[0] <= now - window:
                    self.recent.popleft()
                if len(self.recent) >= limit:
                    self.stats.throttled += 1
                    wait = float(int(self.recent[0] + window - now) + 1)
                    self.blocked_until = now + wait
                    return 429, wait
                self.recent.append(now)
        return None

    def pick_fault(self, allowed: tuple[str, ...]) -> str | None:
        with self.lock:
            if not self.cfg.fault_rate or self.rng.random() >= self.cfg.fault_rate:
                return None
            kinds = [k for k in self.cfg.faults if k in allowed]
            if not kinds:
                return None
            kind = self.rng.choice(kinds)
            self.stats.faults[kind] += 1
            if kind == "storm":
                self.storm_until = time.monotonic() + 3.0
            if kind == "revoke":
                self.tokens.clear()
            return kind


def _make_handler(sim: Simulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle on, each answer would wait ~40 ms for
        # the client's delayed ACK.
        disable_nagle_algorithm = True
        server_version = "GenesysSim/1.0"

        def log_message(self, fmt: str, *args: Any) -> None:
            if not sim.cfg.quiet:
                sys.stderr.write("sim: " + fmt % args + "\n")

        # -- helpers --
        def _send(self, status: int, body: bytes | dict[str, Any] | list[Any], headers: dict[str, str] | None = None,
                  truncate: bool = False) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            if truncate:
                data = data[: max(1, len(data) // 2)]
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
            self._send(status, {"message": message, "code": code, "status": status,
                                "contextId": str(uuid.uuid4()), "details": [], "errors": []}, headers)

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _reset(self) -> None:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def _authorized(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                return False
            with sim.lock:
                exp = sim.tokens.get(auth[7:])
            return exp is not None and exp > time.time()

        def _gate(self, fault_kinds: tuple[str, ...]) -> tuple[bool, bool]:
            """Run rate limit and faults. Returns (handled, truncate)."""
            throttled = sim.admit()
            if throttled:
                _, wait = throttled
                self._error(429, "too.many.requests.retry.after",
                            f"Rate limit exceeded the maximum. Retry the request in [{int(wait)}] seconds",
                            {"Retry-After": str(int(wait))})
                return True, False
            kind = sim.pick_fault(fault_kinds)
            if kind in ("500", "502", "503", "504"):
                self._error(int(kind), "internal.server.error" if kind == "500" else "service.unavailable",
                            "simulated fault")
                return True, False
            if kind == "reset":
                self._reset()
                return True, False
            if kind == "slow":
                time.sleep(sim.cfg.slow_seconds)
            if kind == "storm":
                self._error(429, "too.many.requests.retry.after", "Rate limit storm", {"Retry-After": "1"})
                with sim.lock:
                    sim.blocked_until = max(sim.blocked_until, time.monotonic() + 1.0)
                return True, False
            if kind == "revoke" or not self._authorized():
                self._error(401, "bad.credentials", "Invalid login credentials.")
                return True, False
            if sim.cfg.forbid_audits:
                self._error(403, "missing.permissions", "Missing permission audits:audit:view")
                return True, False
            return False, kind == "truncated"

        # -- routes --
        def do_POST(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            sim.stats.paths[f"POST {path.split('/')[-1] if 'query/' in path else path}"] += 1
            body = self._body()
            if path == "/oauth/token":
                return self._token(body)
            if path == "/api/v2/audits/query":
                handled, _ = self._gate(("500", "502", "503", "504", "reset", "slow", "revoke", "storm"))
                if not handled:
                    self._submit(body)
                return None
            if path == "/api/v2/audits/query/realtime":
                handled, trunc = self._gate(FAULT_KINDS)
                if not handled:
                    self._realtime(body, parse_qs(urlsplit(self.path).query), trunc)
                return None
            return self._error(404, "not.found", f"no route {path}")

        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            path, qs = parts.path, parse_qs(parts.query)
            if path == "/__sim/stats":
                return self._send(200, sim.stats_doc())
            if path.startswith("/download/"):
                sim.stats.paths["GET download"] += 1
                key = path.rsplit("/", 1)[1]
                with sim.lock:
                    evs = sim.downloads.pop(key, None)
                if evs is None:
                    return self._error(404, "not.found", "download expired")
                return self._send(200, b"[" + b",".join(e.plain for e in evs) + b"]")
            key = path.rsplit("/", 1)[-1] if "query/" in path else path
            if path.endswith("/realtime/servicemapping"):
                key = "realtime/servicemapping"
            sim.stats.paths[f"GET {key}"] += 1
            if path.endswith("/servicemapping"):
                handled, _ = self._gate(("500", "503"))
                if not handled:
                    self._send(200, {"services": [
                        {"name": s, "entities": [{"name": e, "actions": a} for e, a in ents.items()]}
                        for s, ents in SERVICES.items()]})
                return None
            if path == "/api/v2/auditlogs/events":
                handled, trunc = self._gate(FAULT_KINDS)
                if not handled:
                    self._events_cursor(qs, trunc)
                return None
            if path.startswith("/api/v2/audits/query/"):
                rest = path[len("/api/v2/audits/query/"):].split("/")
                if len(rest) == 1:
                    handled, _ = self._gate(("500", "503", "reset", "revoke"))
                    if not handled:
                        self._status(rest[0])
                    return None
                if len(rest) == 2 and rest[1] == "results":
                    handled, trunc = self._gate(FAULT_KINDS)
                    if not handled:
                        self._results(rest[0], qs, trunc)
                    return None
            return self._error(404, "not.found", f"no route {path}")

        def _token(self, body: bytes) -> None:
            with sim.lock:
                sim.stats.token_requests += 1
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            cid, secret = form.get("client_id"), form.get("client_secret")
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                try:
                    cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                except ValueError:
                    return self._error(400, "bad.request", "malformed Basic header")
            if form.get("grant_type") != "client_credentials":
                return self._send(400, {"error": "unsupported_grant_type"})
            if cid != sim.cfg.client_id or secret != sim.cfg.client_secret:
                return self._send(401, {"error": "invalid_client", "description": "authentication failed"})
            token = base64.urlsafe_b64encode(random.randbytes(24)).decode().rstrip("=")
            with sim.lock:
                sim.tokens[token] = time.time() + sim.cfg.token_ttl
            self._send(200, {"access_token": token, "token_type": "bearer", "expires_in": sim.cfg.token_ttl})

        def _interval(self, text: str) -> tuple[int, int] | None:
            try:
                a, b = text.split("/")
                return _parse_iso(a), _parse_iso(b)
            except (ValueError, AttributeError):
                return None

        def _submit(self, body: bytes) -> None:
            try:
                req = json.loads(body)
            except ValueError:
                return self._error(400, "bad.request", "body is not JSON")
            iv = self._interval(req.get("interval", ""))
            if iv is None or iv[1] < iv[0]:
                return self._error(400, "invalid.interval", "interval must be start/end ISO-8601")
            if iv[1] - iv[0] > 31 * 86_400_000:
                return self._error(400, "bad.request", "The search interval must not exceed 31 days")
            sort = (req.get("sort") or [{}])[0]
            events = sim.store.select(iv[0], iv[1], time.time(), _matcher(req.get("serviceName"), req.get("filters") or []))
            if sort.get("sortOrder", "ascending").lower() == "descending":
                events = events[::-1]
            txn = Transaction(str(uuid.uuid4()), time.time(), events, req["interval"])
            with sim.lock:
                sim.txns[txn.id] = txn
            self._send(202, {"id": txn.id, "state": "Running", "startDate": _iso(int(txn.created * 1000)),
                             "interval": txn.interval})

        def _txn(self, tid: str) -> Transaction | None:
            with sim.lock:
                txn = sim.txns.get(tid)
            if txn is None or txn.expired or time.time() - txn.created > sim.cfg.txn_ttl:
                return None
            return txn

        def _status(self, tid: str) -> None:
            txn = self._txn(tid)
            if txn is None:
                return self._error(404, "not.found", f"transaction {tid} not found")
            done = time.time() - txn.created >= sim.cfg.query_delay
            self._send(200 if done else 202, {"id": txn.id, "state": "Succeeded" if done else "Running",
                                              "interval": txn.interval})

        def _results(self, tid: str, qs: dict[str, list[str]], truncate: bool) -> None:
            txn = self._txn(tid)
            if txn is not None and sim.pick_fault(("expire",)) == "expire":
                txn.expired = True
                txn = None
            if txn is None:
                return self._error(404, "not.found", f"transaction {tid} not found or expired")
            try:
                size = int(qs.get("pageSize", ["25"])[0])
                offset = int(qs.get("cursor", ["0"])[0] or 0)
            except ValueError:
                return self._error(400, "bad.request", "bad pageSize or cursor")
            with sim.lock:
                sim.stats.max_page_size = max(sim.stats.max_page_size, size)
            if not 1 <= size <= 500:
                return self._error(400, "bad.request", "pageSize must be 1-500")
            chunk = txn.events[offset: offset + size]
            nxt = offset + size if offset + size < len(txn.events) else None
            payload = b",".join(e.expanded for e in chunk)
            head = {"id": txn.id, "pageSize": size}
            if nxt is not None:
                head["cursor"] = str(nxt)
            if len(payload) > sim.cfg.max_page_bytes:
                if qs.get("allowRedirect", ["false"])[0] == "true":
                    key = uuid.uuid4().hex
                    with sim.lock:
                        sim.downloads[key] = chunk
                        sim.stats.events_served += len(chunk)
                    url = f"{sim.url}/download/{key}"
                    return self._send(302, dict(head, downloadUrl=url), {"Location": url})
                return self._error(400, "response.entity.too.large", "The response is too large; use a smaller pageSize")
            with sim.lock:
                sim.stats.events_served += len(chunk)
            prefix = json.dumps(head)[:-1].encode() + b',"entities":['
            self._send(200, prefix + payload + b"]}", truncate=truncate)

        def _realtime(self, body: bytes, qs: dict[str, list[str]], truncate: bool) -> None:
            try:
                req = json.loads(body)
            except ValueError:
                return self._error(400, "bad.request", "body is not JSON")
            iv = self._interval(req.get("interval", ""))
            if iv is None:
                return self._error(400, "invalid.interval", "interval must be start/end ISO-8601")
            if iv[0] < (time.time() - 14 * 86400) * 1000:
                return self._error(400, "bad.request", "realtime queries cover only the last 14 days")
            size = int(req.get("pageSize", 25))
            number = int(req.get("pageNumber", 1))
            with sim.lock:
                sim.stats.max_page_size = max(sim.stats.max_page_size, size)
            if not 1 <= size <= 500 or number < 1:
                return self._error(400, "bad.request", "pageSize must be 1-500 and pageNumber >= 1")
            last = sim.realtime_last_ts
            if sim.cfg.realtime_arrivals and last is not None and iv[0] <= last < iv[1]:
                sim.store.arrive(last, sim.cfg.arrivals_per_request)
            events = sim.store.select(iv[0], iv[1], time.time(), _matcher(req.get("serviceName"), req.get("filters") or []))
            chunk = events[(number - 1) * size: number * size]
            with sim.lock:
                sim.stats.events_served += len(chunk)
                if chunk:
                    sim.realtime_last_ts = chunk[-1].ts
            head = {"pageSize": size, "pageNumber": number, "total": len(events),
                    "pageCount": (len(events) + size - 1) // size}
            prefix = json.dumps(head)[:-1].encode() + b',"entities":['
            # Like the real API, user names only with expand=user.
            expand = "user" in ",".join(qs.get("expand", [])).split(",")
            payload = b",".join(e.expanded if expand else e.plain for e in chunk)
            self._send(200, prefix + payload + b"]}", truncate=truncate)

        def _events_cursor(self, qs: dict[str, list[str]], truncate: bool) -> None:
            if "page" in qs:
                return self._error(400, "bad.request", "page-based navigation is not supported; use cursor")
            try:
                a, b = _parse_iso(qs["dateFrom"][0]), _parse_iso(qs["dateTo"][0])
                size = int(qs.get("size", ["100"])[0])
            except (KeyError, ValueError):
                return self._error(400, "bad.request", "dateFrom, dateTo (ISO-8601) and size are required")
            with sim.lock:
                sim.stats.max_page_size = max(sim.stats.max_page_size, size)
            if not 1 <= size <= 100:
                return self._error(400, "bad.request", "size must be 1-100")
            types = set(qs.get("eventType", []))
            events = sim.store.select(a, b, time.time())
            if types:
                events = [e for e in events if guide_shape(e.doc)["eventType"] in types]
            cursor = qs.get("cursor", [None])[0]
            offset = 0
            if cursor:
                try:
                    c_from, c_off = cursor.split(":")
                    offset = int(c_off)
                    if int(c_from) != a:
                        raise ValueError
                except ValueError:
                    return self._error(400, "cursor.mismatch", "cursor mismatch or invalid state")
                if sim.pick_fault(("expire",)) == "expire":
                    return self._error(400, "cursor.mismatch", "cursor invalidated by maintenance")
            chunk = events[offset: offset + size]
            with sim.lock:
                sim.stats.events_served += len(chunk)
            doc: dict[str, Any] = {"entities": [guide_shape(e.doc) for e in chunk]}
            if offset + size < len(events):
                doc["nextPageCursor"] = f"{a}:{offset + size}"
            self._send(200, _encode(doc), truncate=truncate)

    return Handler


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shipper.simulator", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=8089)
    p.add_argument("--events", type=int, default=3000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--span", type=float, default=6 * 3600, help="seconds of history")
    p.add_argument("--live-rate", type=float, default=1.0, help="new events per second")
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--rate-limit", type=int, default=0, help="requests per --rate-window (0: none)")
    p.add_argument("--rate-window", type=float, default=60.0)
    p.add_argument("--token-ttl", type=int, default=86400)
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args(argv)
    sim = Simulator(SimConfig(seed=a.seed, events=a.events, span=a.span, live_rate=a.live_rate,
                              fault_rate=a.fault_rate, rate_limit=a.rate_limit, rate_window=a.rate_window,
                              token_ttl=a.token_ttl, quiet=not a.verbose), port=a.port)
    print(f"simulator listening on {sim.url}  (client id {DEFAULT_CLIENT_ID!r}, secret {DEFAULT_CLIENT_SECRET!r})",
          file=sys.stderr, flush=True)
    try:
        sim.server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

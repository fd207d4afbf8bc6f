"""Server-side state: one `OrgState` per simulated org, and `Orgs`, the registry the endpoints share."""

from __future__ import annotations

import base64
import collections
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .codec import Event
from .config import SimConfig
from .events import EventStore


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
    # What the hostile modes served: wrong shapes per endpoint, cursor loops, expired and shuffled
    # transactions, repeated ids, forced 429s, hostile events (`<kind>_served`).
    hostile: collections.Counter[str] = field(default_factory=collections.Counter)


@dataclass(frozen=True)
class LoggedRequest:
    """One request as it arrived (for contract tests: what did the client send?)."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes


@dataclass
class Transaction:
    id: str
    created: float  # time.time() when submitted (real clock: ages and delays)
    events: list[Event]
    interval: str
    expired: bool = False
    pages_served: int = 0
    echo: dict[str, Any] = field(default_factory=dict)  # serviceName, filters, sort as asked


class OrgState:
    """One org: its config, events, tokens, transactions, rate-limit budget, fault dice and stats."""

    def __init__(self, cfg: SimConfig, started: float) -> None:
        self.cfg = cfg
        self.store = EventStore(cfg, started + cfg.clock_offset)
        self.rng = random.Random(cfg.seed * 7 + 3)
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}
        self.txns: dict[str, Transaction] = {}
        self.stats = SimStats()
        # The rate limiter's state (see gate.py).
        self.recent: collections.deque[float] = collections.deque()
        self.blocked_until = 0.0
        self.storm_until = 0.0
        self.realtime_last_ts: int | None = None
        # The last requests whose bearer token is this org's (or with no known token: the default org's).
        self.request_log: collections.deque[LoggedRequest] = collections.deque(maxlen=200)
        # Hostile modes' state (hostile.py).
        self.shape_seen: collections.Counter[str] = collections.Counter()
        self.served_log: list[Event] = []
        self.hostile_rng = random.Random(cfg.seed + 4)

    def now(self) -> float:
        """The server's clock: real time shifted by `clock_offset`. Event times, their
        visibility, the realtime 14-day edge, startDate and the Date header follow it."""
        return time.time() + self.cfg.clock_offset

    def server_ms(self, real: float) -> int:
        """A real time.time() instant on the server's clock, in epoch ms."""
        return int((real + self.cfg.clock_offset) * 1000)

    # -- tokens and transactions --------------------------------------------------------------
    def issue_token(self) -> str:
        token = base64.urlsafe_b64encode(random.randbytes(24)).decode().rstrip("=")
        with self.lock:
            self.tokens[token] = time.time() + self.cfg.token_ttl
        return token

    def authorized(self, token: str) -> bool:
        with self.lock:
            exp = self.tokens.get(token)
        return exp is not None and exp > time.time()

    def add_txn(self, events: list[Event], interval: str, echo: dict[str, Any]) -> Transaction:
        txn = Transaction(str(uuid.uuid4()), time.time(), events, interval, echo=echo)
        with self.lock:
            self.txns[txn.id] = txn
        return txn

    def txn(self, tid: str) -> Transaction | None:
        """A live transaction, or None when unknown, expired or older than `txn_ttl`."""
        with self.lock:
            txn = self.txns.get(tid)
        if txn is None or txn.expired or time.time() - txn.created > self.cfg.txn_ttl:
            return None
        return txn

    # -- bookkeeping --------------------------------------------------------------------------
    def count_path(self, key: str) -> None:
        self.stats.paths[key] += 1

    def page_size(self, size: int) -> None:
        with self.lock:
            self.stats.max_page_size = max(self.stats.max_page_size, size)

    def served(self, events: list[Event]) -> None:
        with self.lock:
            self.stats.events_served += len(events)
            if self.store.hostile:
                self.stats.hostile.update(f"{e.kind}_served" for e in events if e.kind)

    def count_hostile(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.stats.hostile[key] += n

    def stats_doc(self) -> dict[str, Any]:
        s = self.stats
        return {
            "token_requests": s.token_requests, "requests": s.requests, "throttled": s.throttled,
            "retry_after_violations": s.retry_after_violations, "max_page_size": s.max_page_size,
            "faults": dict(s.faults), "paths": dict(s.paths), "events_served": s.events_served,
            "events_total": len(self.store.events), "realtime_arrived": self.store.arrived,
            "hostile": dict(s.hostile),
        }

    def all_events(self) -> list[dict[str, Any]]:
        """Every event this org will ever serve (for tests)."""
        return [e.doc for e in self.store.events]


class Orgs:
    """Every org by client id (the first is the default), which org issued each token, and the
    pending downloads of 302 answers."""

    def __init__(self, configs: list[SimConfig], started: float) -> None:
        if not configs:
            raise ValueError("a simulator needs at least one org")
        self.by_client: dict[str, OrgState] = {}
        for cfg in configs:
            if cfg.client_id in self.by_client:
                raise ValueError(f"two orgs use client id {cfg.client_id!r}")
            self.by_client[cfg.client_id] = OrgState(cfg, started)
        self.default = next(iter(self.by_client.values()))
        if len(self.by_client) > 1:
            self._check_disjoint()
        self.lock = threading.Lock()
        self.token_orgs: dict[str, OrgState] = {}
        self.downloads: dict[str, tuple[OrgState, list[Event]]] = {}
        self.base_url = ""

    def _check_disjoint(self) -> None:
        """Orgs never share an event id (same seed twice would): tests rely on it."""
        seen: dict[str, str] = {}
        for org in self.by_client.values():
            for ev in org.store.events:
                if not ev.id:
                    continue  # hostile events with an empty id
                other = seen.setdefault(ev.id, org.cfg.client_id)
                if other != org.cfg.client_id:
                    raise ValueError(f"orgs {other!r} and {org.cfg.client_id!r} share event id {ev.id}: "
                                     "give them different seeds (org_configs does)")

    def __iter__(self) -> Iterator[OrgState]:
        return iter(self.by_client.values())

    def get(self, client_id: str | None) -> OrgState:
        """The org of a client id (the default one for None); KeyError names unknown ids."""
        if client_id is None:
            return self.default
        try:
            return self.by_client[client_id]
        except KeyError:
            raise KeyError(f"no org with client id {client_id!r}; known: {sorted(self.by_client)}") from None

    def issue_token(self, org: OrgState) -> str:
        token = org.issue_token()
        with self.lock:
            self.token_orgs[token] = org
        return token

    def for_token(self, token: str | None) -> OrgState:
        """The org that issued a token (even a revoked one); the default org for anything else."""
        if token:
            with self.lock:
                org = self.token_orgs.get(token)
            if org is not None:
                return org
        return self.default

    def put_download(self, org: OrgState, events: list[Event]) -> str:
        key = uuid.uuid4().hex
        with self.lock:
            self.downloads[key] = (org, events)
        return f"{self.base_url}/download/{key}"

    def take_download(self, key: str) -> tuple[OrgState, list[Event]] | None:
        with self.lock:
            return self.downloads.pop(key, None)

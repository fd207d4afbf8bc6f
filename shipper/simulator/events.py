"""Seeded audit events: the generator, the sorted store one org serves from, and the guide's shape."""

from __future__ import annotations

import bisect
import random
import threading
import uuid
from collections.abc import Callable
from typing import Any

from .codec import Event, encode, iso
from .config import SimConfig
from .hostile_events import spoil

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
Matcher = Callable[[dict[str, Any]], bool]


def make_event(rng: random.Random, ts: int, cfg: SimConfig, big: int = 0) -> dict[str, Any]:
    """One AuditLogMessage at `ts` (epoch ms); `big` adds a script of that many characters."""
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
        "userHomeOrgId": cfg.org_id,
        "user": {"id": user_id, "name": name, "selfUri": f"/api/v2/users/{user_id}"},
        "client": {"id": "c1a2b3c4-0000-4000-8000-00000000c11e", "selfUri": "/api/v2/oauth/clients/c1"},
        "remoteIp": [f"198.51.100.{user_no % 250 + 1}"],
        "serviceName": service,
        "level": "USER" if rng.random() < 0.9 else "SYSTEM",
        "eventDate": iso(ts),
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


def wrap(ts: int, doc: dict[str, Any]) -> Event:
    """Pre-encode a doc with and without the user's name (names only come with expand=user)."""
    plain_doc = dict(doc, user={k: v for k, v in doc["user"].items() if k != "name"})
    return Event(ts, doc["id"], doc, encode(doc), encode(plain_doc))


class EventStore:
    """Sorted, pre-encoded events; `visible_at` hides late arrivals until their time comes.

    `started` is the server's clock at start (shifted by `SimConfig.clock_offset`): every time
    the store sees is server time."""

    def __init__(self, cfg: SimConfig, started: float) -> None:
        self.cfg = cfg
        self.started = started
        base = cfg.base_time if cfg.base_time is not None else started
        self.newest_ms = int((base - cfg.newest_age) * 1000)
        self.oldest_ms = self.newest_ms - int(cfg.span * 1000)
        rng = random.Random(cfg.seed)
        self.events: list[Event] = self._generate(rng)
        if cfg.malformed:
            n = len(self.events)
            for i in rng.sample(range(n), min(n, cfg.malformed)):
                ev = self.events[i]
                bad = dict(ev.doc, eventDate="not-a-date")
                self.events[i] = Event(ev.ts, ev.id, bad, encode(bad), encode(bad))
        if cfg.late_fraction and (cfg.late_newest or cfg.late_max_age):
            self._hold_back_late(rng)
        self.hostile = spoil(self.events, cfg)  # any hostile events (hostile_events.py)?
        self.ts = [e.ts for e in self.events]
        self.live_rng = random.Random(cfg.seed + 1)
        self.live_count = 0
        self.arrival_rng = random.Random(cfg.seed + 2)
        self.arrived = 0
        self.lock = threading.Lock()

    def _generate(self, rng: random.Random) -> list[Event]:
        cfg, n = self.cfg, self.cfg.events
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
        events = []
        for i, ts in enumerate(stamps):
            big = 120_000 if i in huge else rng.randint(4200, 9000) if i in large else 0
            events.append(wrap(ts, make_event(rng, ts, cfg, big)))
        return events

    def _hold_back_late(self, rng: random.Random) -> None:
        cfg = self.cfg
        if cfg.late_max_age:
            cut = int((self.started - cfg.late_max_age) * 1000)
            newest = [e for e in self.events if e.ts >= cut]
        else:
            newest = self.events[-cfg.late_newest:]
        for ev in rng.sample(newest, int(len(newest) * cfg.late_fraction)):
            ev.visible_at = self.started + rng.uniform(*cfg.late_delay)

    def extend_live(self, now: float) -> None:
        """Append live events up to `now` (demo mode: a steady trickle of new audits)."""
        if not self.cfg.live_rate:
            return
        with self.lock:
            due = int((now - self.started) * self.cfg.live_rate)
            while self.live_count < due:
                ts = int((self.started + self.live_count / self.cfg.live_rate) * 1000)
                self.live_count += 1
                ev = wrap(ts, make_event(self.live_rng, ts, self.cfg))
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
                ev = wrap(ts, make_event(self.arrival_rng, ts, self.cfg))
                self.ts.insert(idx, ts)
                self.events.insert(idx, ev)
            self.arrived += max(0, count)
        return max(0, count)

    def select(self, start_ms: int, end_ms: int, now: float, match: Matcher | None = None) -> list[Event]:
        """Events in [start_ms, end_ms) visible at server time `now`, that `match` accepts."""
        self.extend_live(now)
        with self.lock:
            lo = bisect.bisect_left(self.ts, start_ms)
            hi = bisect.bisect_left(self.ts, end_ms)
            chosen = self.events[lo:hi]
        return [e for e in chosen if e.visible_at <= now and (match is None or match(e.doc))]


_FILTER_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "EntityType": lambda d: d.get("entityType"),
    "Action": lambda d: d.get("action"),
    "UserId": lambda d: (d.get("user") or {}).get("id"),
    "EntityId": lambda d: (d.get("entity") or {}).get("id"),
    "ClientId": lambda d: (d.get("client") or {}).get("id"),
}


def _unknown(doc: dict[str, Any]) -> Any:
    """A filter property the simulator does not know (TrusteeOrganizationId) matches nothing."""
    return None


def matcher(service: str | None, filters: list[dict[str, str]]) -> Matcher | None:
    """The server-side filter of a query body (serviceName and AuditQueryFilter list)."""
    if not service and not filters:
        return None

    getters = [(_FILTER_KEYS.get(f.get("property", ""), _unknown), f.get("value")) for f in filters]

    def match(doc: dict[str, Any]) -> bool:
        if service and doc.get("serviceName") != service:
            return False
        return all(get(doc) == value for get, value in getters)

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

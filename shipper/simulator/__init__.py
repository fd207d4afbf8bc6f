"""A Genesys Cloud audit API simulator: a real HTTP server on 127.0.0.1 (stdlib only).

Serves OAuth client credentials, the async audit query API (202 states, cursor pages, 302
downloadUrl, 404 for expired transactions, 400 for too-large pages), the realtime query API, the
guide's events-cursor contract and the service mapping. Events are deterministic for a seed.
Seeded faults: 5xx, connection resets, slow answers, truncated bodies, revoked tokens (401),
expired transactions, 429 storms with Retry-After.

    python -m shipper.simulator --port 8089 --events 5000

Layout: `config` (SimConfig), `events` (generator, EventStore), `state` (per-org state),
`gate` (rate limit, faults, auth), `server` (routing, Simulator) and one module per endpoint:
`token`, `query`, `realtime`, `servicemapping`, `events_cursor`, `stats`.
"""

from __future__ import annotations

from .codec import Event
from .config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FAULT_KINDS, ORG_ID, SimConfig, org_configs
from .events import NAMES, SERVICES, EventStore, guide_shape, make_event
from .server import Simulator
from .state import OrgState, SimStats, Transaction

__all__ = [
    "DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "FAULT_KINDS", "NAMES", "ORG_ID", "SERVICES", "Event", "EventStore",
    "OrgState", "SimConfig", "SimStats", "Simulator", "Transaction", "guide_shape", "make_event", "org_configs",
]

"""A Genesys Cloud audit API simulator: a real HTTP server on 127.0.0.1 (stdlib only).

Serves OAuth client credentials, the async audit query API (202 states, cursor pages, 302
downloadUrl, 404 for expired transactions, 400 for too-large pages), the realtime query API, the
guide's events-cursor contract and the service mapping. Events are deterministic for a seed.
Seeded faults: 5xx, connection resets, slow answers, truncated bodies, revoked tokens (401),
expired transactions, 429 storms with Retry-After.

    python -m shipper.simulator --port 8089 --events 5000

Several orgs
------------
`Simulator(orgs=[cfg1, cfg2, ...])` serves one org per SimConfig, keyed by its `client_id` (the
first is the default org; `Simulator(cfg)` is one org, as before). `org_configs(n, **common)`
makes n of them: client ids `org1-client`..., secrets `org1-secret`..., seeds 1000 apart and
their own `org_id`. Each org has its own events (its `userHomeOrgId`; ids never shared), tokens,
transactions, rate-limit budget, faults, hostile modes and stats. A token identifies its org:
every answer comes from that org only (another org's transaction id is 404). Per org:
`sim.org(client_id)` (cfg, store, stats, tokens, txns), `sim.all_events(client_id)`,
`sim.stats_doc(client_id)`, `GET /__sim/stats?client_id=X`. Without a client id, these and
`sim.cfg`, `sim.store`, `sim.stats`, `sim.tokens` are the default org's. Each org also keeps
its last 200 requests as they arrived (`sim.org().request_log`), for tests of what a client sends.

Hostile modes (SimConfig fields, all off by default; `stats["hostile"]` counts what was served)
----------------------------------------------------------------------------------------------
Wrong-shaped 200 answers, after `shape_after` (int, default 0) well-formed ones per endpoint:
- `token_shape`: "empty" ({}) or "no_access_token".
- `submit_shape`, `status_shape`: "empty", "no_id" or "no_state".
- `results_shape`, `realtime_shape`: "empty" ({}), "renamed" (the list under "results" instead
  of "entities") or "null" ("entities": null).
Pagination and transactions:
- `cursor_loop` ("empty" | "repeat"): a results page asked for by cursor answers that same cursor
  again, with no events or with the same page; the first page always has a cursor. The same for
  the events-cursor contract's `nextPageCursor`.
- `txn_pages` (int): a transaction expires after serving that many pages (1: 404 on the call
  after the first page).
- `shuffle` (bool): results come in a seeded random order, not the ascending one asked for
  (async: per transaction; realtime: per query).
- `repeat_older_than` (seconds), `repeat_count` (int, 3): each results or realtime page starts
  with up to `repeat_count` events served before whose eventDate is older than that age.
Clock and throttling:
- `clock_offset` (seconds): the server's clock runs this far ahead (negative: behind). Event
  times, their visibility, the realtime 14-day edge, `startDate` and the `Date` header follow it.
- `throttle_first` (int): the first that many API requests answer 429.
- `retry_after` (str): the Retry-After value (and the message's [N]) of every 429, verbatim,
  e.g. "nan", "1e9", "-5".
Hostile events (replace seeded-random events of the store; `all_events()` shows a marker where
the doc cannot hold the real content, see hostile_events.py):
- `nested_events` (int), `nested_depth` (int, 1500): an object nested that deep in propertyChanges.
- `invalid_utf8_events` (int): invalid UTF-8 bytes inside message.message.
- `empty_id_events` (int): `"id": ""`.
- `bad_date_events` (int): eventDate "", an impossible date, a word, a number or null.
- `malformed` (int, older): eventDate "not-a-date".

Layout: `config` (SimConfig, org_configs), `codec` (times, JSON, Event), `events` (generator,
EventStore, guide_shape), `hostile_events`, `state` (OrgState, Orgs), `exchange` (one request),
`gate` (rate limit, faults, auth), `hostile` (wrong shapes, repeats, shuffle), `server` (routes,
Simulator) and one module per endpoint: `token`, `query` (submit, status, results, download),
`realtime`, `servicemapping`, `events_cursor`, `stats`.
"""

from __future__ import annotations

from .codec import Event
from .config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FAULT_KINDS, ORG_ID, SHAPES, SimConfig, org_configs
from .events import NAMES, SERVICES, EventStore, guide_shape, make_event
from .server import Simulator
from .state import LoggedRequest, OrgState, SimStats, Transaction

__all__ = [
    "DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "FAULT_KINDS", "NAMES", "ORG_ID", "SERVICES", "SHAPES", "Event",
    "EventStore", "LoggedRequest", "OrgState", "SimConfig", "SimStats", "Simulator", "Transaction", "guide_shape",
    "make_event", "org_configs",
]

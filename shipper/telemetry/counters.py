"""The counters of one org: the one struct that the state, the metrics textfile and the stats
line all read. Only the owners named in each comment add to them."""

from __future__ import annotations

from collections import Counter

import msgspec


class Counters(msgspec.Struct, kw_only=True):
    # Persisted in the state (cumulative across runs); the engine adds to them.
    emitted: int = 0
    quarantined: int = 0
    gaps: int = 0
    # This run only; the engine adds to them.
    pages: int = 0
    duplicates: int = 0
    filtered: int = 0
    shrunk: int = 0
    repaired: int = 0
    out_of_window: int = 0
    # This run only; the HTTP client adds to them.
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    by_status: Counter[str] = msgspec.field(default_factory=Counter)
    # Gauges, in epoch seconds; the engine sets them.
    lag_s: float = 0.0
    last_success_s: float = 0.0

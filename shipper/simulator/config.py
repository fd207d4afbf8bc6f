"""SimConfig: everything one simulated org does, and the constants tests import."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace
from typing import Any

ORG_ID = "6b2e8a9c-0d3f-4e1a-9b7c-5d4e3f2a1b0c"
DEFAULT_CLIENT_ID = "demo-client"
DEFAULT_CLIENT_SECRET = "demo-secret"
FAULT_KINDS = ("500", "502", "503", "504", "reset", "slow", "truncated", "revoke", "expire", "storm")
# Hostile answers: the wrong-shaped 200s each endpoint can give (SimConfig.<endpoint>_shape).
SHAPES: dict[str, tuple[str, ...]] = {
    "token": ("empty", "no_access_token"),
    "submit": ("empty", "no_id", "no_state"),
    "status": ("empty", "no_id", "no_state"),
    "results": ("empty", "renamed", "null"),
    "realtime": ("empty", "renamed", "null"),
}
CURSOR_LOOPS = ("empty", "repeat")


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
    org_id: str = ORG_ID  # every event's userHomeOrgId
    quiet: bool = True
    # -- hostile modes, all off by default: what each does is in the package docstring --------
    token_shape: str | None = None
    submit_shape: str | None = None
    status_shape: str | None = None
    results_shape: str | None = None
    realtime_shape: str | None = None
    shape_after: int = 0
    cursor_loop: str | None = None
    txn_pages: int = 0
    shuffle: bool = False
    repeat_older_than: float = 0.0
    repeat_count: int = 3
    clock_offset: float = 0.0
    nested_events: int = 0
    nested_depth: int = 1500
    invalid_utf8_events: int = 0
    empty_id_events: int = 0
    bad_date_events: int = 0
    throttle_first: int = 0
    retry_after: str | None = None

    def __post_init__(self) -> None:
        for endpoint, shapes in SHAPES.items():
            shape = getattr(self, f"{endpoint}_shape")
            if shape is not None and shape not in shapes:
                raise ValueError(f"{endpoint}_shape={shape!r}: use one of {shapes}")
        if self.cursor_loop is not None and self.cursor_loop not in CURSOR_LOOPS:
            raise ValueError(f"cursor_loop={self.cursor_loop!r}: use one of {CURSOR_LOOPS}")
        if self.nested_depth < 1:
            raise ValueError("nested_depth must be at least 1")

    def shape(self, endpoint: str) -> str | None:
        """The wrong shape configured for an endpoint's 200 answers (see SHAPES), or None."""
        value: str | None = getattr(self, f"{endpoint}_shape")
        return value


ORG_SEED_STEP = 1000  # seeds this far apart: no org's event, live or arrival generator repeats another's


def org_configs(n: int, **common: Any) -> list[SimConfig]:
    """`n` orgs for `Simulator(orgs=...)`: client ids `org1-client`..., secrets `org1-secret`...,
    seeds `seed`, `seed + 1000`, ... (so their events differ) and their own org ids. Every other
    keyword is a SimConfig field all of them share; change one org with dataclasses.replace."""
    for own in ("client_id", "client_secret", "org_id"):
        if own in common:
            raise TypeError(f"org_configs sets {own} per org; change it afterwards with dataclasses.replace")
    base = SimConfig(**common)
    return [
        replace(base, client_id=f"org{i}-client", client_secret=f"org{i}-secret", seed=base.seed + (i - 1) * ORG_SEED_STEP,
                org_id=str(uuid.UUID(int=random.Random(f"org{i}").getrandbits(128), version=4)))
        for i in range(1, n + 1)
    ]

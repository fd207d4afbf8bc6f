"""HTTP client: pacing, backoff bounds, Retry-After floors, 401 refresh; token refresh timing."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from shipper.errors import ApiError, AuthError
from shipper.net.auth import TokenProvider
from shipper.net.http import HttpClient, backoff_delay, parse_retry_after, retry_after_delay


def test_backoff_is_full_jitter_and_capped() -> None:
    rng = random.Random(7)
    for attempt in range(12):
        bound = min(8.0, 0.5 * 2**attempt)
        delays = [backoff_delay(attempt, 0.5, 8.0, rng) for _ in range(200)]
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > bound * 0.8  # spread over the whole range, not a constant


def test_retry_after_is_a_floor_with_at_most_30_percent_jitter() -> None:
    rng = random.Random(3)
    waits = [retry_after_delay(10, rng) for _ in range(500)]
    assert min(waits) >= 10 and max(waits) <= 13
    assert max(waits) - min(waits) > 1


def test_parse_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7
    assert parse_retry_after(None) is None
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    when = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(when, now=now.timestamp()) == pytest.approx(42)
    assert parse_retry_after("garbage") is None


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _provider(sim: Any, clock: FakeClock, secret: str = "demo-secret") -> TokenProvider:
    return TokenProvider(f"{sim.url}/oauth/token", "demo-client", secret, HttpClient(requests_per_minute=60000),
                         margin=500, clock=clock)


def test_token_refreshes_once_margin_remains(simulator: Any) -> None:
    sim = simulator(events=1, token_ttl=1000)
    clock = FakeClock()
    tokens = _provider(sim, clock)
    first = tokens.token()
    clock.t += 499  # 501 s of life left: keep it
    assert tokens.token() == first
    clock.t += 2  # 499 s left: less than the margin, refresh
    second = tokens.token()
    assert second != first
    assert sim.stats.token_requests == 2


def test_short_lived_token_refreshes_at_half_life(simulator: Any) -> None:
    sim = simulator(events=1, token_ttl=60)
    clock = FakeClock()
    tokens = _provider(sim, clock)
    first = tokens.token()
    clock.t += 29
    assert tokens.token() == first
    clock.t += 2
    assert tokens.token() != first


def test_bad_credentials_raise_auth_error(simulator: Any) -> None:
    sim = simulator(events=1)
    client = HttpClient(requests_per_minute=60000)
    tokens = TokenProvider(f"{sim.url}/oauth/token", "demo-client", "nope", client, margin=500)
    with pytest.raises(AuthError, match="client id or secret"):
        tokens.token()


def _client(sim: Any, **kw: Any) -> HttpClient:
    client = HttpClient(requests_per_minute=kw.pop("rpm", 60000), backoff_base=0.01, backoff_max=0.05,
                        rng=random.Random(1), **kw)
    tokens = TokenProvider(f"{sim.url}/oauth/token", "demo-client", "demo-secret", client)
    client.authorize(tokens.token, tokens.invalidate)
    return client


def test_401_refreshes_token_once_and_retries(simulator: Any) -> None:
    sim = simulator(events=1)
    client = _client(sim)
    client.request("GET", f"{sim.url}/api/v2/audits/query/servicemapping")
    sim.tokens.clear()  # revoked server-side
    resp = client.request("GET", f"{sim.url}/api/v2/audits/query/servicemapping")
    assert resp.status_code == 200
    assert sim.stats.token_requests == 2


def test_retries_5xx_then_gives_up_cleanly(simulator: Any) -> None:
    sim = simulator(events=1, fault_rate=1.0, faults=("503",))
    client = _client(sim, max_retries=3)
    with pytest.raises(ApiError, match="giving up after 3 retries"):
        client.request("GET", f"{sim.url}/api/v2/audits/query/servicemapping")
    assert client.counters.retries == 3
    assert client.counters.by_status["503"] == 4


def test_connection_reset_is_retried(simulator: Any) -> None:
    sim = simulator(events=1, fault_rate=1.0, faults=("reset",))
    client = _client(sim, max_retries=2)
    with pytest.raises(ApiError, match="ConnectionError"):
        client.request("GET", f"{sim.url}/api/v2/audits/query/some-transaction")
    assert client.counters.by_status["error"] == 3


def test_429_waits_for_retry_after_and_never_early(simulator: Any) -> None:
    sim = simulator(events=1, rate_limit=3, rate_window=2.0)
    client = _client(sim)
    for _ in range(8):
        client.request("GET", f"{sim.url}/api/v2/audits/query/servicemapping")
    assert client.counters.throttled >= 1
    assert sim.stats.retry_after_violations == 0


def test_pacing_spaces_requests(simulator: Any) -> None:
    import time

    sim = simulator(events=1)
    client = _client(sim, rpm=600)  # one every 0.1 s
    started = time.monotonic()
    for _ in range(6):
        client.request("GET", f"{sim.url}/api/v2/audits/query/servicemapping")
    assert time.monotonic() - started >= 0.5


def test_stop_interrupts_a_long_wait(simulator: Any) -> None:
    from shipper.errors import Interrupted

    sim = simulator(events=1)
    stop = threading.Event()
    client = _client(sim, stop=stop)
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(Interrupted):
        client.sleep(30)

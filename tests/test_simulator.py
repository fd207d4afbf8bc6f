"""The simulator itself: several orgs in one server, and each hostile mode doing what it says.

These talk plain HTTP to a real simulator on loopback (no shipper code), so a failure here is a
simulator bug, not a shipper one.
"""

from __future__ import annotations

import dataclasses
import email.utils
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from shipper.simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, ORG_ID, SimConfig, Simulator, org_configs
from shipper.simulator.codec import iso


@pytest.fixture
def serve() -> Iterator[Any]:
    """serve(cfg) or serve(orgs=[...]): a started simulator, stopped after the test."""
    started: list[Simulator] = []

    def make(cfg: SimConfig | None = None, **kw: Any) -> Simulator:
        sim = Simulator(cfg, **kw).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


def token(sim: Simulator, client_id: str, secret: str) -> requests.Response:
    return requests.post(f"{sim.url}/oauth/token", data={"grant_type": "client_credentials"},
                         auth=(client_id, secret), timeout=5)


def bearer(sim: Simulator, cfg: SimConfig) -> dict[str, str]:
    resp = token(sim, cfg.client_id, cfg.client_secret)
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def interval(hours: float = 8, ahead: float = 60) -> str:
    now = time.time()
    return f"{iso(int((now - hours * 3600) * 1000))}/{iso(int((now + ahead) * 1000))}"


def submit(sim: Simulator, headers: dict[str, str], **fields: Any) -> requests.Response:
    body = {"interval": interval(), "sort": [{"name": "Timestamp", "sortOrder": "ascending"}], **fields}
    return requests.post(f"{sim.url}/api/v2/audits/query", json=body, headers=headers, timeout=5)


def results(sim: Simulator, headers: dict[str, str], txn: str, cursor: str | None = None,
            size: int = 100) -> requests.Response:
    params: dict[str, Any] = {"pageSize": size, "expand": "user"}
    if cursor:
        params["cursor"] = cursor
    return requests.get(f"{sim.url}/api/v2/audits/query/{txn}/results", params=params, headers=headers,
                        timeout=5, allow_redirects=False)


def query_all(sim: Simulator, headers: dict[str, str], size: int = 100, max_pages: int = 1000) -> list[dict[str, Any]]:
    """Submit, wait, and read every page of one transaction."""
    txn = submit(sim, headers).json()["id"]
    while requests.get(f"{sim.url}/api/v2/audits/query/{txn}", headers=headers, timeout=5).status_code == 202:
        time.sleep(0.01)
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(max_pages):
        page = results(sim, headers, txn, cursor, size)
        assert page.status_code == 200, page.text
        out += page.json()["entities"]
        cursor = page.json().get("cursor")
        if not cursor:
            return out
    raise AssertionError(f"more than {max_pages} pages")


def stats(sim: Simulator, client_id: str | None = None) -> dict[str, Any]:
    params = {"client_id": client_id} if client_id else {}
    return requests.get(f"{sim.url}/__sim/stats", params=params, timeout=5).json()


# -- several orgs ------------------------------------------------------------------------------
def test_org_configs_gives_each_org_its_own_identity() -> None:
    orgs = org_configs(3, events=10, seed=4, query_delay=0.0)
    assert [o.client_id for o in orgs] == ["org1-client", "org2-client", "org3-client"]
    assert [o.client_secret for o in orgs] == ["org1-secret", "org2-secret", "org3-secret"]
    assert len({o.seed for o in orgs}) == 3 and orgs[0].seed == 4
    assert len({o.org_id for o in orgs}) == 3 and ORG_ID not in {o.org_id for o in orgs}
    assert all(o.events == 10 and o.query_delay == 0.0 for o in orgs)
    with pytest.raises(TypeError, match="client_id"):
        org_configs(2, client_id="x")


def test_each_org_serves_only_its_own_events(serve: Any) -> None:
    orgs = org_configs(3, events=120, query_delay=0.0)
    sim = serve(orgs=orgs)
    seen: dict[str, set[str]] = {}
    for cfg in orgs:
        got = query_all(sim, bearer(sim, cfg))
        assert {e["userHomeOrgId"] for e in got} == {cfg.org_id}
        seen[cfg.client_id] = {e["id"] for e in got}
        assert seen[cfg.client_id] == {e["id"] for e in sim.all_events(cfg.client_id)}
        assert len(got) == 120
    a, b, c = seen.values()
    assert not (a & b) and not (a & c) and not (b & c)
    # The default org is the first: the single-org API still answers for it.
    assert sim.cfg is orgs[0] and sim.all_events() == sim.all_events("org1-client")
    assert sim.org("org2-client").cfg is orgs[1]
    with pytest.raises(KeyError, match="nope"):
        sim.org("nope")


def test_a_token_identifies_its_org(serve: Any) -> None:
    orgs = org_configs(2, events=60, query_delay=0.0)
    sim = serve(orgs=orgs)
    h1, h2 = bearer(sim, orgs[0]), bearer(sim, orgs[1])
    txn = submit(sim, h1).json()["id"]
    assert results(sim, h1, txn).status_code == 200
    other = results(sim, h2, txn)
    assert other.status_code == 404, "org 2's token read org 1's transaction"
    # Credentials are per org: org 1's id with org 2's secret fails.
    assert token(sim, "org1-client", "org2-secret").status_code == 401
    assert token(sim, "org3-client", "org3-secret").status_code == 401
    # Requests are counted for the org whose token made them.
    assert stats(sim, "org1-client")["paths"]["GET results"] == 1
    assert stats(sim, "org2-client")["paths"]["GET results"] == 1
    assert stats(sim, "org2-client")["token_requests"] == 1
    # The default org (org 1) also counts org 1's failed attempt and the unknown client's.
    assert stats(sim)["token_requests"] == 3
    assert requests.get(f"{sim.url}/__sim/stats", params={"client_id": "nope"}, timeout=5).status_code == 404


def test_rate_limits_faults_and_revocations_are_per_org(serve: Any) -> None:
    limited = dataclasses.replace(org_configs(1, events=5)[0], rate_limit=2, rate_window=60.0)
    faulty = dataclasses.replace(org_configs(2, events=5)[1], fault_rate=1.0, faults=("503",))
    calm = dataclasses.replace(org_configs(3, events=5)[2], fault_rate=1.0, faults=("revoke",))
    sim = serve(orgs=[limited, faulty, calm])
    mapping = f"{sim.url}/api/v2/audits/query/servicemapping"
    h = {c.client_id: bearer(sim, c) for c in (limited, faulty, calm)}
    codes = [requests.get(mapping, headers=h["org1-client"], timeout=5).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert requests.get(mapping, headers=h["org2-client"], timeout=5).status_code == 503  # org 1's budget is not org 2's
    status = f"{sim.url}/api/v2/audits/query/some-transaction"  # where `revoke` can strike
    assert requests.get(status, headers=h["org3-client"], timeout=5).status_code == 401
    assert sim.org("org3-client").tokens == {}
    assert sim.org("org2-client").tokens, "revoking org 3's tokens revoked org 2's"
    assert stats(sim, "org1-client")["throttled"] == 1
    assert stats(sim, "org2-client")["faults"] == {"503": 1}
    assert stats(sim, "org3-client")["faults"] == {"revoke": 1}


@pytest.mark.parametrize("order", ["ascending", "descending"])
def test_both_queries_honour_the_sort_order(serve: Any, order: str) -> None:
    sim = serve(SimConfig(events=40, query_delay=0.0))
    h = bearer(sim, sim.cfg)
    want = [e["id"] for e in sim.all_events()]
    want = want if order == "ascending" else want[::-1]
    sort = [{"name": "Timestamp", "sortOrder": order}]
    txn = submit(sim, h, sort=sort).json()["id"]
    assert [e["id"] for e in results(sim, h, txn).json()["entities"]] == want
    body: dict[str, Any] = {"interval": interval(), "pageNumber": 1, "pageSize": 100, "sort": sort}
    page = requests.post(f"{sim.url}/api/v2/audits/query/realtime", json=body, headers=h, timeout=5).json()
    assert [e["id"] for e in page["entities"]] == want


def test_orgs_must_differ(serve: Any) -> None:
    with pytest.raises(ValueError, match="client id"):
        Simulator(orgs=[SimConfig(events=1), SimConfig(events=1)])
    with pytest.raises(ValueError, match="share event id"):
        Simulator(orgs=[SimConfig(events=5), SimConfig(events=5, client_id="other")])
    with pytest.raises(ValueError, match="not both"):
        Simulator(SimConfig(), orgs=org_configs(2))


def test_one_org_as_before(serve: Any) -> None:
    sim = serve(SimConfig(events=30, query_delay=0.0))
    assert sim.cfg.client_id == DEFAULT_CLIENT_ID and sim.org() is sim.org(DEFAULT_CLIENT_ID)
    got = query_all(sim, bearer(sim, sim.cfg), size=7)
    assert [e["id"] for e in got] == [e["id"] for e in sim.all_events()]
    assert {e["userHomeOrgId"] for e in got} == {ORG_ID}
    assert stats(sim) == sim.stats_doc() and sim.stats.paths["GET results"] == 5


# -- hostile modes -----------------------------------------------------------------------------
def page_of(sim: Simulator, headers: dict[str, str], **cfg_free: Any) -> tuple[str, requests.Response]:
    txn = submit(sim, headers).json()["id"]
    return txn, results(sim, headers, txn, **cfg_free)


def test_hostile_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="results_shape"):
        SimConfig(results_shape="weird")
    with pytest.raises(ValueError, match="cursor_loop"):
        SimConfig(cursor_loop="forever")


@pytest.mark.parametrize(("shape", "want"), [("empty", set()), ("no_access_token", {"token_type", "expires_in"})])
def test_token_shape(serve: Any, shape: str, want: set[str]) -> None:
    sim = serve(SimConfig(events=1, token_shape=shape, shape_after=1))
    first = token(sim, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).json()
    assert "access_token" in first  # shape_after=1: one good answer first
    assert set(token(sim, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).json()) == want
    assert stats(sim)["hostile"] == {"token_shape": 1}


@pytest.mark.parametrize("shape", ["empty", "no_id", "no_state"])
def test_submit_and_status_shapes(serve: Any, shape: str) -> None:
    sim = serve(SimConfig(events=5, submit_shape=shape, status_shape=shape, query_delay=0.0))
    h = bearer(sim, sim.cfg)
    answer = submit(sim, h)
    assert answer.status_code == 202
    missing = {"empty": {"id", "state", "interval"}, "no_id": {"id"}, "no_state": {"state"}}[shape]
    assert not missing & set(answer.json()), answer.json()
    txn = next(iter(sim.txns))
    status = requests.get(f"{sim.url}/api/v2/audits/query/{txn}", headers=h, timeout=5)
    assert status.status_code == 200 and not missing & set(status.json()), status.json()
    assert stats(sim)["hostile"] == {"submit_shape": 1, "status_shape": 1}


@pytest.mark.parametrize(("shape", "entities"), [("empty", None), ("renamed", "results"), ("null", "entities")])
def test_results_and_realtime_shapes(serve: Any, shape: str, entities: str | None) -> None:
    sim = serve(SimConfig(events=30, results_shape=shape, realtime_shape=shape, shape_after=1, query_delay=0.0))
    h = bearer(sim, sim.cfg)
    txn, first = page_of(sim, h, size=10)
    body: dict[str, Any] = {"interval": interval(), "pageNumber": 1, "pageSize": 10}
    realtime = [requests.post(f"{sim.url}/api/v2/audits/query/realtime", json=body, headers=h, timeout=5).json()
                for _ in range(2)]
    assert len(first.json()["entities"]) == 10 and len(realtime[0]["entities"]) == 10  # shape_after=1
    wrong = [results(sim, h, txn, first.json()["cursor"], size=10).json(), realtime[1]]
    for doc, head in zip(wrong, ({"id", "pageSize", "cursor"}, {"pageSize", "pageNumber", "total", "pageCount"}),
                         strict=True):
        if entities is None:
            assert doc == {}
        else:
            assert set(doc) == head | {entities}, doc
            assert (doc["entities"] is None) if shape == "null" else (len(doc["results"]) == 10)
    assert stats(sim)["hostile"] == {"results_shape": 1, "realtime_shape": 1}


@pytest.mark.parametrize("loop", ["empty", "repeat"])
def test_results_cursor_loop(serve: Any, loop: str) -> None:
    sim = serve(SimConfig(events=15, cursor_loop=loop, query_delay=0.0))
    h = bearer(sim, sim.cfg)
    txn, first = page_of(sim, h, size=10)
    cursor = first.json()["cursor"]
    pages = [results(sim, h, txn, cursor, size=10).json() for _ in range(3)]
    assert [p["cursor"] for p in pages] == [cursor] * 3
    ids = [[e["id"] for e in p["entities"]] for p in pages]
    assert ids == ([[]] * 3 if loop == "empty" else [ids[0]] * 3) and (loop == "empty" or len(ids[0]) == 5)
    # Even a one-page transaction starts the loop.
    one = serve(SimConfig(events=3, cursor_loop=loop, query_delay=0.0))
    assert "cursor" in page_of(one, bearer(one, one.cfg), size=10)[1].json()
    assert stats(sim)["hostile"] == {"cursor_loop": 3}


@pytest.mark.parametrize("loop", ["empty", "repeat"])
def test_events_cursor_loop(serve: Any, loop: str) -> None:
    sim = serve(SimConfig(events=15, cursor_loop=loop))
    h = bearer(sim, sim.cfg)
    a, b = interval().split("/")
    url = f"{sim.url}/api/v2/auditlogs/events"
    first = requests.get(url, params={"dateFrom": a, "dateTo": b, "size": "10"}, headers=h, timeout=5).json()
    cursor = first["nextPageCursor"]
    for _ in range(2):
        page = requests.get(url, params={"dateFrom": a, "dateTo": b, "size": "10", "cursor": cursor},
                            headers=h, timeout=5).json()
        assert page["nextPageCursor"] == cursor
        assert len(page["entities"]) == (0 if loop == "empty" else 5)


def test_transaction_expires_after_its_first_page(serve: Any) -> None:
    sim = serve(SimConfig(events=30, txn_pages=1, query_delay=0.0))
    h = bearer(sim, sim.cfg)
    txn, first = page_of(sim, h, size=10)
    assert first.status_code == 200 and first.json()["cursor"]
    again = results(sim, h, txn, first.json()["cursor"], size=10)
    assert again.status_code == 404 and again.json()["code"] == "not.found"
    assert stats(sim)["hostile"] == {"txn_pages_expired": 1}


def test_shuffle_breaks_the_sort_order_but_serves_everything(serve: Any) -> None:
    sim = serve(SimConfig(events=200, burst_every=0, shuffle=True, query_delay=0.0))
    got = query_all(sim, bearer(sim, sim.cfg), size=50)
    dates = [e["eventDate"] for e in got]
    assert dates != sorted(dates)
    assert sorted(e["id"] for e in got) == sorted(e["id"] for e in sim.all_events())
    assert stats(sim)["hostile"] == {"shuffled": 1}


def test_pages_repeat_ids_older_than_the_given_age(serve: Any) -> None:
    sim = serve(SimConfig(events=300, span=3600, newest_age=0, repeat_older_than=600, repeat_count=3, query_delay=0.0))
    got = query_all(sim, bearer(sim, sim.cfg), size=50)
    ids = [e["id"] for e in got]
    repeats = len(ids) - len(set(ids))
    assert repeats == 15  # 3 on each of the 5 pages after the first
    cut = iso(int((time.time() - 600) * 1000))
    counted: dict[str, int] = {}
    for e in got:
        counted[e["id"]] = counted.get(e["id"], 0) + 1
    assert all(e["eventDate"] < cut for e in got if counted[e["id"]] > 1)
    assert set(ids) == {e["id"] for e in sim.all_events()}
    assert stats(sim)["hostile"] == {"repeated_ids": 15}


def test_clock_offset_shifts_date_header_events_and_the_realtime_edge(serve: Any) -> None:
    offset = 2 * 86400.0
    sim = serve(SimConfig(events=20, newest_age=60, clock_offset=offset, query_delay=0.0))
    h = bearer(sim, sim.cfg)
    resp = requests.get(f"{sim.url}/api/v2/audits/query/servicemapping", headers=h, timeout=5)
    server_now = email.utils.parsedate_to_datetime(resp.headers["Date"]).timestamp()
    assert abs(server_now - (time.time() + offset)) < 5
    assert abs(sim.store.newest_ms / 1000 - (time.time() + offset - 60)) < 5
    assert max(e["eventDate"] for e in sim.all_events()) > iso(int((time.time() + offset - 7 * 3600) * 1000))
    # An interval ending at the client's "now" misses what the server's clock made newer.
    txn = submit(sim, h, interval=interval(ahead=0)).json()
    assert txn["startDate"] > iso(int((time.time() + offset - 5) * 1000))
    assert results(sim, h, txn["id"]).json()["entities"] == []
    # 13 days back on our clock is 15 on the server's: beyond the realtime edge.
    body: dict[str, Any] = {"interval": interval(hours=13 * 24), "pageNumber": 1, "pageSize": 10}
    edge = requests.post(f"{sim.url}/api/v2/audits/query/realtime", json=body, headers=h, timeout=5)
    assert edge.status_code == 400 and "14 days" in edge.json()["message"]


def test_hostile_events_reach_the_wire_as_they_are(serve: Any) -> None:
    cfg = SimConfig(events=40, base_time=time.time(), nested_events=1, nested_depth=1200, invalid_utf8_events=1,
                    empty_id_events=1, bad_date_events=5, query_delay=0.0)
    sim = serve(cfg)
    h = bearer(sim, cfg)
    _, page = page_of(sim, h, size=100)
    raw = page.content
    assert b'{"d":' * 1200 + b"null" + b"}" * 1200 in raw
    assert b"\xff" in raw and b"\xed\xa0\x80" in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert raw.count(b'"id":""') == 1
    for bad in (b'"eventDate":""', b'"eventDate":"yesterday"', b'"eventDate":null', b'"eventDate":1768435200000'):
        assert bad in raw
    kinds = {"nested_served": 1, "invalid_utf8_served": 1, "empty_id_served": 1, "bad_date_served": 5}
    assert stats(sim)["hostile"] == kinds
    a, b = interval().split("/")
    cursor_page = requests.get(f"{sim.url}/api/v2/auditlogs/events", params={"dateFrom": a, "dateTo": b, "size": "100"},
                               headers=h, timeout=5).content
    assert b'{"d":' * 1200 in cursor_page and b"\xff" in cursor_page
    # The same events as without hostility, only spoiled: the same positions and (other) ids.
    plain = Simulator(SimConfig(events=40, base_time=cfg.base_time))
    assert [e.ts for e in plain.store.events] == [e.ts for e in sim.store.events]
    assert sum(a.id != b.id for a, b in zip(plain.store.events, sim.store.events, strict=True)) == 1
    plain.stop()


@pytest.mark.parametrize("value", ["nan", "1e9", "-5"])
def test_retry_after_value_and_throttle_first(serve: Any, value: str) -> None:
    sim = serve(SimConfig(events=1, throttle_first=2, retry_after=value))
    h = bearer(sim, sim.cfg)
    url = f"{sim.url}/api/v2/audits/query/servicemapping"
    answers = [requests.get(url, headers=h, timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert [a.headers.get("Retry-After") for a in answers[:2]] == [value, value]
    assert f"[{value}]" in answers[0].json()["message"]
    assert stats(sim)["hostile"] == {"throttle_first": 2, "retry_after": 2}
    assert stats(sim)["retry_after_violations"] == 0

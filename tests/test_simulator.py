"""The simulator itself: several orgs in one server, and each hostile mode doing what it says.

These talk plain HTTP to a real simulator on loopback (no shipper code), so a failure here is a
simulator bug, not a shipper one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from shipper.simulator import DEFAULT_CLIENT_ID, ORG_ID, SimConfig, Simulator, org_configs
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


def submit(sim: Simulator, headers: dict[str, str], **body: Any) -> requests.Response:
    body = {"interval": interval(), "sort": [{"name": "Timestamp", "sortOrder": "ascending"}], **body}
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

"""A guide-style poller: the baseline the shipper is compared with (not part of the product).

Written the way the seed guide's sample code works: `requests`, `response.json()`, the SIEM
mapping built as a dict, `json.dumps` per record, exponential backoff with Retry-After + 0-30 %
jitter on 429, and the cursor persisted to a state file after each page is written ("store it
immediately after successful SIEM ingestion"). It talks to the async audit query API the shipper
uses, so both read the same events in the same number of pages:

    POST /oauth/token                      (client credentials in the form body)
    POST /api/v2/audits/query              {interval, sort}
    GET  /api/v2/audits/query/{id}         until state == Succeeded
    GET  /api/v2/audits/query/{id}/results?pageSize=100&cursor=...   until no cursor

    python benchmarks/guide_poller.py --url http://127.0.0.1:PORT --since 8h > out.ndjson

By default it keeps one `requests.Session` (keep-alive), the stronger baseline; `--no-session`
calls `requests.get/post` per request exactly like the guide's snippet (a new connection each time).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone

import requests


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class Poller:
    def __init__(self, url: str, client_id: str, client_secret: str, session: bool) -> None:
        self.url = url.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self.http = requests.Session() if session else requests
        self.token: str | None = None
        self.token_expires = 0.0

    # -- 1. OAuth client credentials, refreshed 500 s before expiry ----------------------------
    def get_token(self) -> str:
        if self.token is None or time.time() > self.token_expires - 500:
            resp = self.http.post(f"{self.url}/oauth/token", data={
                "grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self.client_secret, "scope": "audit:read"})
            resp.raise_for_status()
            body = resp.json()
            self.token = body["access_token"]
            self.token_expires = time.time() + float(body.get("expires_in", 3600))
        return self.token

    # -- 3. the guide's poll_audit_events, generalised to GET/POST -------------------------------
    def call(self, method: str, path: str, max_retries: int = 5, **kw: object) -> dict:
        headers = {"Authorization": f"Bearer {self.get_token()}", "Accept": "application/json"}
        for attempt in range(max_retries):
            response = self.http.request(method, f"{self.url}{path}", headers=headers, **kw)
            if response.status_code in (200, 202):
                return response.json()
            elif response.status_code == 429:
                retry_after = float(response.headers.get("Retry-After", 2**attempt))
                jitter = random.uniform(0, retry_after * 0.3)
                time.sleep(retry_after + jitter)
            else:
                response.raise_for_status()
        raise RuntimeError(f"{method} {path}: gave up after {max_retries} tries")

    # -- 3. the guide's SIEM mapping, as a dict ---------------------------------------------------
    @staticmethod
    def to_siem(ev: dict) -> dict:
        user = ev.get("user") or {}
        entity = ev.get("entity") or {}
        return {
            "siem_timestamp": ev.get("eventDate"),
            "siem_event_id": ev.get("id"),
            "siem_actor_id": user.get("id"),
            "siem_actor_name": user.get("name"),
            "siem_event_type": f"{ev.get('serviceName') or ''}.{ev.get('entityType') or ''}.{ev.get('action') or ''}",
            "siem_entity_id": entity.get("id"),
            "siem_entity_type": ev.get("entityType"),
            "siem_raw_payload": ev,
            "audit_tier": "standard",
        }

    def run(self, date_from: str, date_to: str, page_size: int, state_path: str | None) -> int:
        body = {"interval": f"{date_from}/{date_to}", "sort": [{"name": "Timestamp", "sortOrder": "ascending"}]}
        txn = self.call("POST", "/api/v2/audits/query", json=body)
        while txn.get("state") != "Succeeded":
            if txn.get("state") not in (None, "Queued", "Running"):
                raise RuntimeError(f"query ended {txn.get('state')}")
            time.sleep(0.05)
            txn = self.call("GET", f"/api/v2/audits/query/{txn['id']}")
        cursor: str | None = None
        written = 0
        out = sys.stdout
        while True:
            params: dict[str, object] = {"pageSize": page_size, "expand": "user"}
            if cursor:
                params["cursor"] = cursor
            page = self.call("GET", f"/api/v2/audits/query/{txn['id']}/results", params=params)
            entities = page.get("entities") or []
            if entities:
                out.write("".join(json.dumps(self.to_siem(ev)) + "\n" for ev in entities))
                out.flush()
                written += len(entities)
            cursor = page.get("cursor")
            if state_path:
                # 2. persist the cursor only after the page reached the SIEM.
                with open(state_path, "w") as fh:
                    json.dump({"dateFrom": date_from, "dateTo": date_to, "transaction": txn["id"],
                               "cursor": cursor, "last_event": entities[-1]["eventDate"] if entities else None}, fh)
            if not cursor:
                return written


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--since", default="8h", help="lookback, e.g. 8h")
    p.add_argument("--settle", type=float, default=1.0, help="seconds before now to stop at")
    p.add_argument("--page-size", type=int, default=100)
    p.add_argument("--state", help="cursor state file, rewritten after each page")
    p.add_argument("--client-id", default="demo-client")
    p.add_argument("--client-secret", default="demo-secret")
    p.add_argument("--no-session", action="store_true", help="requests.get/post per call, like the guide's snippet")
    a = p.parse_args()
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[a.since[-1]]
    now = datetime.now(timezone.utc)
    start = now - timedelta(seconds=float(a.since[:-1]) * unit)
    end = now - timedelta(seconds=a.settle)
    n = Poller(a.url, a.client_id, a.client_secret, session=not a.no_session).run(
        iso(start), iso(end), a.page_size, a.state)
    print(f"guide poller: {n} events", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

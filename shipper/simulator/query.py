"""The async audit query: POST /api/v2/audits/query (submit), GET .../{id} (status),
GET .../{id}/results (cursor pages, 302 downloadUrl, 400 too large, 404 expired) and the
unauthenticated GET /download/{key} that a 302 points to."""

from __future__ import annotations

import json
import time

from .codec import iso, parse_interval
from .events import matcher
from .exchange import Exchange
from .gate import pick_fault

MAX_INTERVAL_MS = 31 * 86_400_000


def handle_submit(ex: Exchange) -> None:
    org = ex.org
    try:
        req = json.loads(ex.body)
    except ValueError:
        return ex.error(400, "bad.request", "body is not JSON")
    iv = parse_interval(req.get("interval", ""))
    if iv is None or iv[1] < iv[0]:
        return ex.error(400, "invalid.interval", "interval must be start/end ISO-8601")
    if iv[1] - iv[0] > MAX_INTERVAL_MS:
        return ex.error(400, "bad.request", "The search interval must not exceed 31 days")
    sort = (req.get("sort") or [{}])[0]
    events = org.store.select(iv[0], iv[1], org.now(), matcher(req.get("serviceName"), req.get("filters") or []))
    if sort.get("sortOrder", "ascending").lower() == "descending":
        events = events[::-1]
    txn = org.add_txn(events, req["interval"])
    ex.send(202, {"id": txn.id, "state": "Running", "startDate": iso(int(txn.created * 1000)), "interval": txn.interval})


def handle_status(ex: Exchange) -> None:
    org, tid = ex.org, ex.params[0]
    txn = org.txn(tid)
    if txn is None:
        return ex.error(404, "not.found", f"transaction {tid} not found")
    done = time.time() - txn.created >= org.cfg.query_delay
    ex.send(200 if done else 202, {"id": txn.id, "state": "Succeeded" if done else "Running", "interval": txn.interval})


def handle_results(ex: Exchange) -> None:
    org, tid = ex.org, ex.params[0]
    txn = org.txn(tid)
    if txn is not None and pick_fault(org, ("expire",)) == "expire":
        txn.expired = True
        txn = None
    if txn is None:
        return ex.error(404, "not.found", f"transaction {tid} not found or expired")
    try:
        size = int(ex.query("pageSize", "25"))
        offset = int(ex.query("cursor", "0") or 0)
    except ValueError:
        return ex.error(400, "bad.request", "bad pageSize or cursor")
    org.page_size(size)
    if not 1 <= size <= 500:
        return ex.error(400, "bad.request", "pageSize must be 1-500")
    chunk = txn.events[offset: offset + size]
    nxt = offset + size if offset + size < len(txn.events) else None
    payload = b",".join(e.expanded for e in chunk)
    head: dict[str, object] = {"id": txn.id, "pageSize": size}
    if nxt is not None:
        head["cursor"] = str(nxt)
    if len(payload) > org.cfg.max_page_bytes:
        if ex.query("allowRedirect", "false") == "true":
            org.served(chunk)
            url = ex.orgs.put_download(org, chunk)
            return ex.send(302, dict(head, downloadUrl=url), {"Location": url})
        return ex.error(400, "response.entity.too.large", "The response is too large; use a smaller pageSize")
    org.served(chunk)
    prefix = json.dumps(head)[:-1].encode() + b',"entities":['
    ex.send(200, prefix + payload + b"]}", truncate=ex.truncate)


def handle_download(ex: Exchange) -> None:
    """The JSON array a 302 points to: not expanded (no user names), one fetch only."""
    found = ex.orgs.take_download(ex.params[0])
    if found is None:
        return ex.error(404, "not.found", "download expired")
    ex.send(200, b"[" + b",".join(e.plain for e in found[1]) + b"]")

"""The async audit query: POST /api/v2/audits/query (submit), GET .../{id} (status),
GET .../{id}/results (cursor pages, 302 downloadUrl, 400 too large, 404 expired) and the
unauthenticated GET /download/{key} that a 302 points to."""

from __future__ import annotations

import json
import time
from typing import Any

from .codec import Event, iso, parse_interval
from .events import matcher
from .exchange import Exchange
from .gate import pick_fault
from .hostile import page_body, reshape, shuffle, with_repeats, wrong_shape
from .state import OrgState, Transaction

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
    echo = {k: req[k] for k in ("serviceName", "filters", "sort") if req.get(k)}
    txn = org.add_txn(shuffle(org, events, req["interval"]), req["interval"], echo)
    ex.send(202, reshape(_status_doc(org, txn, "Running"), wrong_shape(org, "submit")))


def _status_doc(org: OrgState, txn: Transaction, state: str) -> dict[str, Any]:
    """An AuditQueryExecutionStatusResponse: the query as asked, with its id, state and start."""
    return {"id": txn.id, "state": state, "startDate": iso(org.server_ms(txn.created)), "interval": txn.interval,
            **txn.echo}


def handle_status(ex: Exchange) -> None:
    org, tid = ex.org, ex.params[0]
    txn = org.txn(tid)
    if txn is None:
        return ex.error(404, "not.found", f"transaction {tid} not found")
    done = time.time() - txn.created >= org.cfg.query_delay
    doc = _status_doc(org, txn, "Succeeded" if done else "Running")
    ex.send(200 if done else 202, reshape(doc, wrong_shape(org, "status")))


def _live_txn(org: OrgState, tid: str) -> Transaction | None:
    """The transaction, unless unknown, expired, struck by an `expire` fault, or (with
    `txn_pages`) done serving its pages."""
    txn = org.txn(tid)
    if txn is not None and pick_fault(org, ("expire",)) == "expire":
        txn.expired = True
        return None
    if txn is not None and org.cfg.txn_pages and txn.pages_served >= org.cfg.txn_pages:
        txn.expired = True
        org.count_hostile("txn_pages_expired")
        return None
    return txn


def _slice(org: OrgState, txn: Transaction, offset: int, size: int, cursor: str) -> tuple[list[Event], str | None]:
    """The page at `offset` and the next cursor. With `cursor_loop`, a page asked for by cursor
    answers that same cursor again: with no events (`empty`) or the same page (`repeat`)."""
    loop = org.cfg.cursor_loop
    if loop and cursor:
        org.count_hostile("cursor_loop")
        return ([] if loop == "empty" else txn.events[offset: offset + size]), cursor
    chunk = txn.events[offset: offset + size]
    more = loop is not None or offset + size < len(txn.events)
    return chunk, str(offset + size) if more else None


def handle_results(ex: Exchange) -> None:
    org, tid = ex.org, ex.params[0]
    txn = _live_txn(org, tid)
    if txn is None:
        return ex.error(404, "not.found", f"transaction {tid} not found or expired")
    cursor = ex.query("cursor", "0")
    try:
        size = int(ex.query("pageSize", "25"))
        offset = int(cursor or 0)
    except ValueError:
        return ex.error(400, "bad.request", "bad pageSize or cursor")
    org.page_size(size)
    if not 1 <= size <= 500:
        return ex.error(400, "bad.request", "pageSize must be 1-500")
    chunk, nxt = _slice(org, txn, offset, size, ex.query("cursor"))
    chunk = with_repeats(org, chunk)
    payload = b",".join(e.expanded for e in chunk)
    head: dict[str, Any] = {"id": txn.id, "pageSize": size}
    if nxt is not None:
        head["cursor"] = nxt
    if len(payload) > org.cfg.max_page_bytes:
        if ex.query("allowRedirect", "false") != "true":
            return ex.error(400, "response.entity.too.large", "The response is too large; use a smaller pageSize")
        org.served(chunk)
        txn.pages_served += 1
        url = ex.orgs.put_download(org, chunk)
        return ex.send(302, dict(head, downloadUrl=url), {"Location": url})
    org.served(chunk)
    txn.pages_served += 1
    ex.send(200, page_body(head, payload, wrong_shape(org, "results")), truncate=ex.truncate)


def handle_download(ex: Exchange) -> None:
    """The JSON array a 302 points to: not expanded (no user names), one fetch only."""
    found = ex.orgs.take_download(ex.params[0])
    if found is None:
        return ex.error(404, "not.found", "download expired")
    ex.send(200, b"[" + b",".join(e.plain for e in found[1]) + b"]")

"""GET /api/v2/auditlogs/events: the guide's cursor contract (dateFrom, dateTo, size, cursor,
eventType; `nextPageCursor`), for gateways that expose it. No such endpoint exists at Genesys."""

from __future__ import annotations

from typing import Any

from .codec import encode, parse_iso
from .events import guide_shape
from .exchange import Exchange
from .gate import pick_fault
from .hostile_events import unmark

MAX_SIZE = 100


def handle_events_cursor(ex: Exchange) -> None:
    org = ex.org
    if "page" in ex.qs:
        return ex.error(400, "bad.request", "page-based navigation is not supported; use cursor")
    try:
        a, b = parse_iso(ex.qs["dateFrom"][0]), parse_iso(ex.qs["dateTo"][0])
        size = int(ex.query("size", "100"))
    except (KeyError, ValueError):
        return ex.error(400, "bad.request", "dateFrom, dateTo (ISO-8601) and size are required")
    org.page_size(size)
    if not 1 <= size <= MAX_SIZE:
        return ex.error(400, "bad.request", "size must be 1-100")
    types = set(ex.qs.get("eventType", []))
    events = org.store.select(a, b, org.now())
    if types:
        events = [e for e in events if guide_shape(e.doc)["eventType"] in types]
    cursor = ex.query("cursor")
    offset = 0
    if cursor:
        try:
            c_from, c_off = cursor.split(":")
            offset = int(c_off)
            if int(c_from) != a:
                raise ValueError
        except ValueError:
            return ex.error(400, "cursor.mismatch", "cursor mismatch or invalid state")
        if pick_fault(org, ("expire",)) == "expire":
            return ex.error(400, "cursor.mismatch", "cursor invalidated by maintenance")
    chunk = events[offset: offset + size]
    nxt = f"{a}:{offset + size}" if offset + size < len(events) or org.cfg.cursor_loop else None
    if cursor and org.cfg.cursor_loop:
        # The same nextPageCursor again: with no events (`empty`) or the same page (`repeat`).
        org.count_hostile("cursor_loop")
        chunk, nxt = ([] if org.cfg.cursor_loop == "empty" else chunk), cursor
    org.served(chunk)
    doc: dict[str, Any] = {"entities": [guide_shape(e.doc) for e in chunk]}
    if nxt is not None:
        doc["nextPageCursor"] = nxt
    body = encode(doc)
    if org.store.hostile:
        body = unmark(body, org.cfg.nested_depth)
    ex.send(200, body, truncate=ex.truncate)

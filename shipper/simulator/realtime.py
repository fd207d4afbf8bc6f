"""POST /api/v2/audits/query/realtime: synchronous, numbered pages, the last 14 days only."""

from __future__ import annotations

import json

from .codec import parse_interval
from .events import matcher
from .exchange import Exchange
from .hostile import page_body, shuffle, with_repeats, wrong_shape

REALTIME_DAYS = 14


def handle_realtime(ex: Exchange) -> None:
    org = ex.org
    try:
        req = json.loads(ex.body)
    except ValueError:
        return ex.error(400, "bad.request", "body is not JSON")
    iv = parse_interval(req.get("interval", ""))
    if iv is None:
        return ex.error(400, "invalid.interval", "interval must be start/end ISO-8601")
    if iv[0] < (org.now() - REALTIME_DAYS * 86400) * 1000:
        return ex.error(400, "bad.request", "realtime queries cover only the last 14 days")
    size = int(req.get("pageSize", 25))
    number = int(req.get("pageNumber", 1))
    org.page_size(size)
    if not 1 <= size <= 500 or number < 1:
        return ex.error(400, "bad.request", "pageSize must be 1-500 and pageNumber >= 1")
    last = org.realtime_last_ts
    if org.cfg.realtime_arrivals and last is not None and iv[0] <= last < iv[1]:
        org.store.arrive(last, org.cfg.arrivals_per_request)
    events = org.store.select(iv[0], iv[1], org.now(), matcher(req.get("serviceName"), req.get("filters") or []))
    if ((req.get("sort") or [{}])[0].get("sortOrder") or "ascending").lower() == "descending":
        events = events[::-1]
    events = shuffle(org, events, json.dumps([req["interval"], req.get("serviceName"), req.get("filters")]))
    chunk = events[(number - 1) * size: number * size]
    if chunk:
        with org.lock:
            org.realtime_last_ts = chunk[-1].ts
    chunk = with_repeats(org, chunk)
    org.served(chunk)
    head = {"pageSize": size, "pageNumber": number, "total": len(events), "pageCount": (len(events) + size - 1) // size}
    # Like the real API, user names only with expand=user.
    expand = "user" in ",".join(ex.qs.get("expand", [])).split(",")
    payload = b",".join(e.expanded if expand else e.plain for e in chunk)
    ex.send(200, page_body(head, payload, wrong_shape(org, "realtime")), truncate=ex.truncate)

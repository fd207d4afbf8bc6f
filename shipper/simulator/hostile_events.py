"""Hostile events: a real id and position in the store, but content a careless reader chokes on.

- `nested`: one more propertyChange whose newValues holds an object nested `nested_depth` levels.
- `invalid_utf8`: invalid UTF-8 bytes (a bare 0xFF, a broken 2-byte sequence, an encoded
  surrogate, a code point above U+10FFFF) inside `message.message`.
- `empty_id`: `"id": ""`.
- `bad_date`: a garbage `eventDate`, cycling through an empty string, an impossible date, a word,
  a number and null.

Neither the nesting nor the bad bytes can live in a Python dict (json.dumps would recurse too
deep or refuse), so an event's `doc` holds a marker string in their place and only its encoded
bytes (what the server sends) carry the real thing: `all_events()` shows the marker.
"""

from __future__ import annotations

import random
from typing import Any

from .codec import Event, encode
from .config import SimConfig

DEEP_MARK = "__sim_deep_nesting__"
BAD_UTF8_MARK = "__sim_invalid_utf8__"
BAD_UTF8 = b"bad \xff \xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80 end"
BAD_DATES: tuple[Any, ...] = ("", "2026-02-30T25:61:00.000Z", "yesterday", 1768435200000, None)
KINDS = ("nested", "invalid_utf8", "empty_id", "bad_date")


def deep_value(depth: int) -> bytes:
    return b'{"d":' * depth + b"null" + b"}" * depth


def unmark(data: bytes, depth: int) -> bytes:
    """Put the real hostile content where an encoded doc has its markers."""
    if DEEP_MARK.encode() in data:
        data = data.replace(f'"{DEEP_MARK}"'.encode(), deep_value(depth))
    return data.replace(BAD_UTF8_MARK.encode(), BAD_UTF8)


def counts(cfg: SimConfig) -> dict[str, int]:
    return {"nested": cfg.nested_events, "invalid_utf8": cfg.invalid_utf8_events,
            "empty_id": cfg.empty_id_events, "bad_date": cfg.bad_date_events}


def spoil(events: list[Event], cfg: SimConfig) -> bool:
    """Turn seeded-random events of `events` into hostile ones, in place. True if any."""
    wanted = counts(cfg)
    total = min(len(events), sum(wanted.values()))
    if not total:
        return False
    picks = iter(random.Random(cfg.seed + 3).sample(range(len(events)), total))
    for kind in KINDS:
        for n, i in zip(range(wanted[kind]), picks, strict=False):
            events[i] = _spoil_one(events[i], kind, n, cfg.nested_depth)
    return True


def _spoil_one(ev: Event, kind: str, n: int, depth: int) -> Event:
    doc: dict[str, Any] = dict(ev.doc)
    if kind == "nested":
        doc["propertyChanges"] = [*doc["propertyChanges"], {"property": "deep", "oldValues": [], "newValues": [DEEP_MARK]}]
    elif kind == "invalid_utf8":
        doc["message"] = dict(doc["message"], message=f"{doc['message']['message']} {BAD_UTF8_MARK}")
    elif kind == "empty_id":
        doc["id"] = ""
    else:
        doc["eventDate"] = BAD_DATES[n % len(BAD_DATES)]
    plain = dict(doc, user={k: v for k, v in doc["user"].items() if k != "name"})
    return Event(ev.ts, doc["id"], doc, unmark(encode(doc), depth), unmark(encode(plain), depth), ev.visible_at, kind)

"""Hostile answers: wrong-shaped 200s, repeated old ids, shuffled results (see SimConfig's
hostile fields). Each helper counts what it served in `stats.hostile`."""

from __future__ import annotations

import json
import random
from typing import Any

from .codec import Event
from .state import OrgState


def wrong_shape(org: OrgState, endpoint: str) -> str | None:
    """The wrong shape this answer of `endpoint` gets, once `shape_after` good ones went out."""
    shape = org.cfg.shape(endpoint)
    if shape is None:
        return None
    with org.lock:
        org.shape_seen[endpoint] += 1
        if org.shape_seen[endpoint] <= org.cfg.shape_after:
            return None
        org.stats.hostile[f"{endpoint}_shape"] += 1
    return shape


def reshape(doc: dict[str, Any], shape: str | None) -> dict[str, Any]:
    """A small JSON answer in a wrong shape: {} or without one of its keys."""
    if shape is None:
        return doc
    if shape == "empty":
        return {}
    return {k: v for k, v in doc.items() if k != shape.removeprefix("no_")}


def page_body(head: dict[str, Any], entities: bytes, shape: str | None) -> bytes:
    """A page {head..., "entities": [...]}; or, shaped: {}, the list under "results", or null."""
    if shape == "empty":
        return b"{}"
    key = "results" if shape == "renamed" else "entities"
    value = b"null" if shape == "null" else b"[" + entities + b"]"
    return json.dumps(head)[:-1].encode() + f',"{key}":'.encode() + value + b"}"


def shuffle(org: OrgState, events: list[Event], key: str) -> list[Event]:
    """With `shuffle`, the same events in an order seeded by `key` (stable for one query)."""
    if not org.cfg.shuffle or len(events) < 2:
        return events
    out = list(events)
    random.Random(f"{org.cfg.seed}:{key}").shuffle(out)
    org.count_hostile("shuffled")
    return out


def with_repeats(org: OrgState, chunk: list[Event]) -> list[Event]:
    """With `repeat_older_than`, the page starts with up to `repeat_count` events served before
    whose eventDate is older than that many seconds; the page's own events are remembered."""
    if not org.cfg.repeat_older_than:
        return chunk
    cut = int((org.now() - org.cfg.repeat_older_than) * 1000)
    with org.lock:
        old = [e for e in org.served_log if e.ts < cut]
        extra = org.hostile_rng.sample(old, min(len(old), org.cfg.repeat_count))
        org.served_log.extend(chunk)
        org.stats.hostile["repeated_ids"] += len(extra)
    return extra + chunk

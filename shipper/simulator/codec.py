"""The simulator's wire basics: ISO-8601 times, compact JSON, and one pre-encoded event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


def iso(ms: int) -> str:
    """Epoch milliseconds to the API's `2026-01-15T00:00:00.000Z`."""
    s, r = divmod(ms, 1000)
    return datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{r:03d}Z"


def parse_iso(text: str) -> int:
    """ISO-8601 (a trailing Z or an offset; none means UTC) to epoch milliseconds."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return round(dt.timestamp() * 1000)


def parse_interval(text: Any) -> tuple[int, int] | None:
    """`start/end` to epoch milliseconds, or None when it is not two ISO-8601 times."""
    try:
        a, b = text.split("/")
        return parse_iso(a), parse_iso(b)
    except (ValueError, AttributeError):
        return None


def encode(doc: Any) -> bytes:
    """Compact UTF-8 JSON, as the API sends it."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass
class Event:
    """One audit event: its doc, and its bytes with (`expanded`) and without (`plain`) user names.

    `visible_at` hides late arrivals until that (server) time; `kind` names a hostile event
    (see `hostile_events`), empty for an ordinary one."""

    ts: int
    id: str
    doc: dict[str, Any]
    expanded: bytes
    plain: bytes
    visible_at: float = 0.0
    kind: str = ""

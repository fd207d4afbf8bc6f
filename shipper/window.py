"""Windows and the delivery ledger: where to query next and which ids were already written.

Two positions make the no-gap / no-duplicate promise:
- `frontier`: the main pass has written every event visible so far up to here.
- `recheck`: every event before here was read at an age of at least `late_window`, so nothing
  earlier can still appear. Between the two, a window is re-read once when it reaches that age.
Ids written at or after `recheck` are remembered (8-byte hashes), so re-reads never repeat them.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from hashlib import blake2b

DAY_MS = 86_400_000


MASK64 = (1 << 64) - 1


def uuid_int(text: str) -> int | None:
    try:
        return int(text.replace("-", ""), 16)
    except ValueError:
        return None


def id_hash(event_id: str) -> int:
    """A stable 64-bit key for an event id (persisted in the state file)."""
    if len(event_id) == 36 and event_id[8] == "-" and (x := uuid_int(event_id)) is not None:
        # A UUID (every Genesys id): fold its 128 bits, 4x cheaper than hashing.
        return ((x >> 64) ^ x) & MASK64
    return int.from_bytes(blake2b(event_id.encode("utf-8"), digest_size=8).digest(), "little")


def plan_windows(start_ms: int, end_ms: int, max_span_ms: int = 31 * DAY_MS) -> Iterator[tuple[int, int]]:
    """Split [start, end) into consecutive windows no longer than `max_span_ms`."""
    cur = start_ms
    while cur < end_ms:
        nxt = min(end_ms, cur + max_span_ms)
        yield cur, nxt
        cur = nxt


class Ledger:
    """Positions plus the ids written inside the late window."""

    def __init__(self, frontier: int, recheck: int, seen: dict[int, int] | None = None) -> None:
        self.frontier = frontier
        self.recheck = min(recheck, frontier)
        self.seen: dict[int, int] = seen or {}

    def remember(self, h: int, ts: int) -> None:
        self.seen[h] = ts

    def advance_frontier(self, ts: int) -> None:
        if ts > self.frontier:
            self.frontier = ts

    def advance_recheck(self, ts: int) -> None:
        """Move the recheck position; forget ids older than it (they can never be re-read)."""
        ts = min(ts, self.frontier)
        if ts > self.recheck:
            self.recheck = ts
            self.seen = {h: t for h, t in self.seen.items() if t >= ts}

    # -- persistence as packed bytes: (u64 hash, i64 ms) pairs -----------------------------------
    def pack_seen(self) -> bytes:
        hashes = array("Q", self.seen.keys())
        times = array("q", self.seen.values())
        return hashes.tobytes() + times.tobytes()

    @staticmethod
    def unpack_seen(data: bytes) -> dict[int, int]:
        if not data:
            return {}
        if len(data) % 16:
            raise ValueError("seen-id table has a partial entry")
        half = len(data) // 2
        hashes = array("Q")
        hashes.frombytes(data[:half])
        times = array("q")
        times.frombytes(data[half:])
        return dict(zip(hashes, times, strict=True))

"""The delivery ledger: where to query next, which ids were already written, and its State form.

Two positions make the no-gap / no-duplicate promise:
- `frontier`: the main pass has written every event visible so far up to here.
- `recheck`: every event before here was read at an age of at least `late_window`, so nothing
  earlier can still appear. Between the two, a window is re-read once when it reaches that age.
Ids written at or after `recheck` are remembered (8-byte hashes), so re-reads never repeat them.
An event before `recheck` that a server sends anyway cannot be told from a repeat: it is dropped
as one, and counted.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterator
from hashlib import blake2b

from ..errors import StateError
from ..store import ChainHead, Delta, ReplayPage, State, Stored

DAY_MS = 86_400_000
MASK64 = (1 << 64) - 1


def id_hash(event_id: str) -> int:
    """A stable 64-bit key for an event id (persisted in the state)."""
    if len(event_id) == 36 and event_id[8] == "-":
        # A UUID (every Genesys id): fold its 128 bits, 4x cheaper than hashing.
        try:
            x = int(event_id.replace("-", ""), 16)
        except ValueError:
            pass
        else:
            return ((x >> 64) ^ x) & MASK64
    return int.from_bytes(blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def plan_windows(start_ms: int, end_ms: int, max_span_ms: int = 31 * DAY_MS) -> Iterator[tuple[int, int]]:
    """Split [start, end) into consecutive windows no longer than `max_span_ms`."""
    cur = start_ms
    while cur < end_ms:
        nxt = min(end_ms, cur + max_span_ms)
        yield cur, nxt
        cur = nxt


# -- the packed form: (u64 hash, i64 ms) pairs, hashes first ------------------------------------
def pack_seen(seen: dict[int, int]) -> bytes:
    return array("Q", seen.keys()).tobytes() + array("q", seen.values()).tobytes()


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


def pack_ids(ids: list[int]) -> bytes:
    return array("Q", ids).tobytes()


def unpack_ids(data: bytes) -> list[int]:
    out = array("Q")
    out.frombytes(data)
    return out.tolist()


class Ledger:
    """Positions, the ids written inside the late window, and the chain heads."""

    def __init__(self, frontier: int, recheck: int, seen: dict[int, int] | None = None,
                 chains: dict[str, ChainHead] | None = None, replay: list[ReplayPage] | None = None) -> None:
        self.frontier = frontier
        self.recheck = min(recheck, frontier)
        self.seen: dict[int, int] = {}
        # Pages of remembered ids in a min-heap by their newest time: adding costs one push per
        # page, and pruning costs what it prunes (an id may outlive its time by a page or so).
        self._pages: list[tuple[int, int, array[int], array[int]]] = []
        self._pushed = 0
        self.chains: dict[str, ChainHead] = dict(chains or {})
        self.replay: list[ReplayPage] = list(replay or [])
        self.add(seen or {})

    # -- remembered ids ------------------------------------------------------------------------
    def remember(self, h: int, ts: int) -> None:
        self.add({h: ts})

    def add(self, ids: dict[int, int]) -> None:
        if not ids:
            return
        self.seen.update(ids)
        self._pushed += 1
        # Kept as two arrays, 16 bytes an id: a page's dict would hold ~100 until pruned.
        heapq.heappush(self._pages, (max(ids.values()), self._pushed, array("Q", ids.keys()), array("q", ids.values())))

    def _forget_before(self, ts: int) -> None:
        pages, seen = self._pages, self.seen
        while pages and pages[0][0] < ts:
            _, _, hashes, times = heapq.heappop(pages)
            for h, t in zip(hashes, times, strict=True):
                if seen.get(h) == t:
                    del seen[h]

    # -- positions -------------------------------------------------------------------------------
    def advance_frontier(self, ts: int) -> None:
        if ts > self.frontier:
            self.frontier = ts

    def advance_recheck(self, ts: int) -> None:
        """Move the recheck position; forget ids older than it (they can never be re-read)."""
        ts = min(ts, self.frontier)
        if ts > self.recheck:
            self.recheck = ts
            self._forget_before(ts)

    def advance(self, ts: int, *, late: bool, track_recheck: bool, final_before_ms: int) -> None:
        """After a page or a window: the late pass moves `recheck`; the main pass moves the
        frontier, and `recheck` too while nothing before it awaits a re-read."""
        if late:
            self.advance_recheck(ts)
            return
        self.advance_frontier(ts)
        if track_recheck:
            # What was read at least late_window after its time is final: no re-read needed.
            self.advance_recheck(min(ts, final_before_ms))

    def move_to(self, ts: int) -> None:
        """Jump both positions (a retention gap): everything before `ts` is gone."""
        self.frontier = max(self.frontier, ts)
        self.advance_recheck(ts)

    # -- Ledger <-> State ------------------------------------------------------------------------
    @classmethod
    def start(cls, start_ms: int) -> Ledger:
        return cls(start_ms, start_ms)

    @classmethod
    def from_state(cls, state: State, where: str) -> Ledger:
        if state.frontier_ms is None:
            raise StateError(f"state file {where!r} has no position; move it away to start again")
        try:
            seen = unpack_seen(state.seen)
        except ValueError as exc:
            raise StateError(f"state file {where!r} is corrupt ({exc})") from None
        recheck = state.recheck_ms if state.recheck_ms is not None else state.frontier_ms
        ledger = cls(state.frontier_ms, recheck, chains=state.chains, replay=state.replay)
        ledger.add({h: t for h, t in seen.items() if t >= ledger.recheck})
        return ledger

    def fill_state(self, state: State) -> State:
        """Write the positions, remembered ids, chain heads and replay pages into `state`."""
        state.frontier_ms = self.frontier
        state.recheck_ms = self.recheck
        state.seen = pack_seen(self.seen)
        state.chains = dict(self.chains)
        state.replay = list(self.replay)
        return state


def fold(stored: Stored, where: str) -> State:
    """The snapshot with every later commit applied: the state as of the last commit."""
    state = stored.snapshot
    if not stored.journal:
        return state
    try:
        seen = unpack_seen(state.seen)
        for delta in stored.journal:
            _apply(state, delta, seen)
    except ValueError as exc:
        raise StateError(f"state file {where!r} is corrupt ({exc})") from None
    recheck = state.recheck_ms if state.recheck_ms is not None else state.frontier_ms or 0
    state.seen = pack_seen({h: t for h, t in seen.items() if t >= recheck})
    return state


def _apply(state: State, delta: Delta, seen: dict[int, int]) -> None:
    state.frontier_ms = delta.frontier_ms
    state.recheck_ms = delta.recheck_ms
    if delta.new_ids:
        seen.update(unpack_seen(delta.new_ids))
    if delta.chains:
        state.chains = {**state.chains, **delta.chains}
    if delta.replay is not None:
        state.replay = delta.replay
    state.emitted, state.quarantined, state.gaps = delta.emitted, delta.quarantined, delta.gaps
    state.last_success, state.last_error = delta.last_success, delta.last_error
    state.last_error_at, state.last_health, state.updated_at = delta.last_error_at, delta.last_health, delta.updated_at

"""Checkpoint stores: the only code that makes state durable.

A store keeps one org's `State`. Every page ends with `commit(delta)`: the page's new remembered
ids, the positions, the chain heads and the counters, written atomically and in O(page) bytes. A
store compacts itself when its log grows, asking its owner for the full state. Backends: `file`
(a locked snapshot plus an append-only journal) and `etcd` (fenced transactions; see etcd.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import msgspec

STATE_VERSION = 2
READABLE_VERSIONS = (1, 2)


class ChainHead(msgspec.Struct, array_like=True, frozen=True):
    """Where one output stream's hash chain stands: the last sequence number and chain value."""

    seq: int
    value: bytes
    key_id: str = ""


class ReplayPage(msgspec.Struct, array_like=True, frozen=True):
    """One written page, enough to write it again byte for byte: its time span, the ids it wrote
    in order, the chain heads before it, and the SHA-256 of its bytes (a replay must match it)."""

    first_ms: int
    last_ms: int
    ids: bytes  # packed u64 id hashes, in write order
    heads_before: dict[str, ChainHead] = {}
    digest: bytes = b""


class State(msgspec.Struct, kw_only=True):
    """What survives a restart. Times are epoch milliseconds."""

    version: int = STATE_VERSION
    frontier_ms: int | None = None
    recheck_ms: int | None = None
    seen: bytes = b""  # packed (u64 id hash, i64 event ms) pairs; see core.ledger
    chains: dict[str, ChainHead] = {}
    replay: list[ReplayPage] = []
    emitted: int = 0
    quarantined: int = 0
    gaps: int = 0
    last_success: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    last_health: str | None = None
    updated_at: str | None = None
    journal_gen: int = 0  # the journal generation this snapshot starts (file backend)


class Delta(msgspec.Struct, kw_only=True, array_like=True):
    """One commit: small fields whole, remembered ids only as the page's new ones."""

    frontier_ms: int
    recheck_ms: int
    new_ids: bytes = b""
    chains: dict[str, ChainHead] = {}
    replay: list[ReplayPage] | None = None  # None: unchanged
    emitted: int = 0
    quarantined: int = 0
    gaps: int = 0
    last_success: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    last_health: str | None = None
    updated_at: str | None = None


class Stored(msgspec.Struct):
    """What a store read back: the last snapshot and the commits made after it, in order.
    core.ledger folds them into one State."""

    snapshot: State
    journal: list[Delta] = []


class CheckpointStore(Protocol):
    """What the engine needs from a backend."""

    where: str  # a file path or an etcd key, for messages

    def acquire(self) -> None:
        """Take the org's lock or leadership; LockHeldError if another collector has it."""
        ...

    def release(self) -> None: ...

    def load(self) -> Stored | None:
        """The saved state, None if there is none yet; damage is a StateError, never a reset."""
        ...

    def commit(self, delta: Delta, full: Callable[[], State]) -> None:
        """Make `delta` durable; `full` gives the whole state when the store compacts."""
        ...

    def ensure_active(self) -> None:
        """Raise LeadershipLost unless this process may still write (etcd: a live lease)."""
        ...

    def is_locked_elsewhere(self) -> bool: ...

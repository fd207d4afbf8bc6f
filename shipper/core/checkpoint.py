"""One org's ledger and its durable form: load it from the store, and save what a page changed
(positions, new ids, counters, status) as one delta in one store write."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import msgspec

from .. import logs
from ..models import format_ms
from ..store import CheckpointStore, Delta, ReplayPage, State
from ..telemetry.counters import Counters
from .ledger import Ledger, fold, pack_ids, pack_seen
from .pipeline import PageOut
from .replay import keep_last


class Status(msgspec.Struct, kw_only=True):
    """What `status` shows besides positions; persisted with every commit."""

    last_success: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    last_health: str | None = None


def iso_now(clock: Callable[[], float]) -> str:
    return format_ms(int(clock() * 1000))


class Checkpoint:
    def __init__(self, store: CheckpointStore, counters: Counters, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.counters = counters
        self.clock = clock
        self.ledger = Ledger(0, 0)
        self.status = Status()
        self._pending: dict[int, int] = {}

    def load(self, start_ms: Callable[[], int]) -> bool:
        """Resume from the store, or start at `start_ms()`. True when resuming."""
        stored = self.store.load()
        state = fold(stored, self.store.where) if stored is not None else None
        if state is None or state.frontier_ms is None:
            first = start_ms()
            self.ledger = Ledger.start(first)
            if state is not None:
                self._take_counters(state)
            logs.info("first run: starting", start=format_ms(first))
            return False
        self.ledger = Ledger.from_state(state, self.store.where)
        self._take_counters(state)
        self.status = Status(last_success=state.last_success, last_error=state.last_error,
                             last_error_at=state.last_error_at, last_health=state.last_health)
        logs.info("resuming", position=format_ms(self.ledger.frontier), recheck=format_ms(self.ledger.recheck),
                  remembered_ids=len(self.ledger.seen))
        return True

    def _take_counters(self, state: State) -> None:
        self.counters.emitted, self.counters.quarantined, self.counters.gaps = state.emitted, state.quarantined, state.gaps

    def take(self, out: PageOut, replay_events: int = 0) -> None:
        """A page was written: remember its ids, its chain heads and (for a replay at start) what
        it wrote; count it. Saved by the next `save`."""
        if out.lines and replay_events > 0:
            before = {s: self.ledger.chains[s] for s in out.heads if s in self.ledger.chains}
            page = ReplayPage(out.first_ms or 0, out.last_ms or 0, pack_ids(out.written), before,
                              hashlib.sha256(out.data).digest())
            self.ledger.replay = keep_last([*self.ledger.replay, page], replay_events)
        self.ledger.add(out.new_ids)
        self.ledger.chains.update(out.heads)
        self._pending.update(out.new_ids)
        c = self.counters
        c.emitted += out.lines
        c.quarantined += len(out.quarantined)
        c.pages += 1
        c.duplicates += out.duplicates
        c.filtered += out.filtered
        c.out_of_window += out.out_of_window
        c.shrunk += out.shrunk

    def delta(self) -> Delta:
        ledger, s, c = self.ledger, self.status, self.counters
        new = {h: t for h, t in self._pending.items() if t >= ledger.recheck}
        return Delta(
            frontier_ms=ledger.frontier, recheck_ms=ledger.recheck, new_ids=pack_seen(new) if new else b"",
            chains=dict(ledger.chains), replay=list(ledger.replay), emitted=c.emitted,
            quarantined=c.quarantined, gaps=c.gaps, last_success=s.last_success, last_error=s.last_error,
            last_error_at=s.last_error_at, last_health=s.last_health, updated_at=iso_now(self.clock),
        )

    def snapshot(self) -> State:
        s, c = self.status, self.counters
        state = State(emitted=c.emitted, quarantined=c.quarantined, gaps=c.gaps, last_success=s.last_success,
                      last_error=s.last_error, last_error_at=s.last_error_at, last_health=s.last_health,
                      updated_at=iso_now(self.clock))
        return self.ledger.fill_state(state)

    def save(self) -> None:
        self.store.commit(self.delta(), self.snapshot)
        self._pending = {}

    # -- status ------------------------------------------------------------------------------
    def succeeded(self) -> None:
        self.status.last_success = iso_now(self.clock)
        self.counters.last_success_s = time.time()

    def failed(self, exc: BaseException) -> None:
        """Record the error for `status`; best effort, a failing store must not hide the error."""
        self.status.last_error = logs.redact(str(exc))[:500]
        self.status.last_error_at = iso_now(self.clock)
        try:
            self.save()
        except Exception as save_exc:  # noqa: BLE001 - the original error is what matters
            logs.debug("could not record the error in the state", reason=str(save_exc))

    def health_ok(self) -> None:
        self.status.last_health = iso_now(self.clock)

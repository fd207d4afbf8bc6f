"""The engine of one org: it only schedules. Each cycle re-reads what reached the late window's
age, then catches up to now minus settle_delay; each page is mapped by the pipeline, written by
the writer and committed by the checkpoint, in that order. It does not know the source."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone

from .. import logs
from ..config import Config, resolve_start
from ..errors import ApiError, Interrupted, OutputClosed, OutputError, ShipperError, StateError
from ..lifecycle import Lifecycle
from ..models import format_ms
from ..output.quarantine import Quarantine
from ..output.writer import Writer
from ..sources import Source
from ..sources.base import ReadProgress
from .checkpoint import Checkpoint
from .ledger import Ledger
from .pipeline import PageOut, Pipeline
from .replay import keep_last, write_again

FUTURE_TOLERANCE_MS = 300_000
STALE_PAGES = 3  # pages in a row with nothing new allowed beyond those that came before them


def plan_passes(frontier: int, recheck: int, now_ms: int, cfg: Config) -> list[Pass]:
    """The cycle's passes: re-read what reached the late window's age, then catch up to now minus
    settle_delay. A position in the future is refused: it would ship nothing, silently."""
    poll = cfg.poll
    if frontier > now_ms + max(FUTURE_TOLERANCE_MS, int(poll.late_window * 1000)):
        raise StateError(f"the saved position {format_ms(frontier)} is in the future (now is {format_ms(now_ms)} "
                         "by the API's clock): restore the state file or move it away")
    horizon = now_ms - int(poll.settle_delay * 1000)
    final_before = now_ms - int(poll.late_window * 1000)
    passes = []
    late_end = min(frontier, final_before)
    if recheck < late_end:
        passes.append(Pass(recheck, late_end, late=True, final_before=final_before))
    if frontier < horizon:
        passes.append(Pass(frontier, horizon, late=False, final_before=final_before))
    return passes


class ChunkWatch:
    """What the engine learns while reading one chunk, and tells the source: whether the events
    keep their time order, and whether pages keep bringing events not met before. Pages that
    bring nothing new are bounded: each restart of the source may read the chunk again, no more."""

    def __init__(self, ordered: bool, source: str, org: str) -> None:
        self.progress = ReadProgress()
        self.progress.ordered = ordered
        self.met: set[int] = set()
        self.source, self.org = source, org
        self.pages = self.stale = self.budget = self.restarts = 0

    def check_order(self, out: PageOut) -> None:
        self.pages += 1
        newest = self.progress.newest
        if self.progress.ordered and (out.unordered or (newest is not None and out.first_ms is not None
                                                        and out.first_ms < newest)):
            logs.warning("source returned events out of time order; positions move only at the end of this "
                         "chunk", source=self.source, org=self.org or None)
            self.progress.ordered = False
        if out.last_ms is not None:
            self.progress.newest = out.last_ms if newest is None else max(newest, out.last_ms)

    def check_progress(self, out: PageOut) -> None:
        self.progress.fresh += out.fresh
        if out.fresh:
            self.stale = 0
            return
        if not self.stale:
            self.budget, self.restarts = self.pages - 1, self.progress.restarts
        self.stale += 1
        if self.stale > self.budget * (1 + self.progress.restarts - self.restarts) + STALE_PAGES:
            raise ApiError(f"{self.source}: {self.stale} pages in a row brought no new event (only events met "
                           "before in this chunk): the API repeats itself; giving up on this pass")


class ChunkSize:
    """How much of a pass is read as one query. A chunk bounds what a crash makes the engine read
    again and how many ids it must remember meanwhile; each query also costs requests. So chunks
    grow while they come back small and shrink when they come back large."""

    MIN_MS = 60_000
    FIRST_MS = (3_600_000, 6 * 3_600_000)  # a first guess: a quarter of the pass, within these bounds
    GROW_AT_PAGES = 2  # a chunk of at most this many pages: double the next one
    SHRINK_AT_PAGES = 100  # a chunk of more pages: halve the next one

    def __init__(self, max_ms: int) -> None:
        self.max_ms = max_ms
        self.ms: int | None = None  # no chunk read yet

    def end_of(self, start: int, end: int) -> int:
        if self.ms is None:
            low, high = self.FIRST_MS
            self.ms = min(self.max_ms, max(low, min(high, (end - start) // 4)))
        return min(end, start + self.ms)

    def observe(self, pages: int) -> None:
        assert self.ms is not None
        if pages <= self.GROW_AT_PAGES:
            self.ms = min(self.max_ms, self.ms * 2)
        elif pages > self.SHRINK_AT_PAGES:
            self.ms = max(self.MIN_MS, self.ms // 2)


@dataclass
class Pass:
    """One read of [start, end): the late re-read, or the main pass that moves the frontier."""

    start: int
    end: int
    late: bool
    final_before: int  # events before this were read at least late_window after their time
    track_recheck: bool = False


class Engine:
    def __init__(self, *, cfg: Config, source: Source, pipeline: Pipeline, checkpoint: Checkpoint, writer: Writer,
                 quarantine: Quarantine, lifecycle: Lifecycle, clock: Callable[[], float] = time.time,
                 progress: Callable[[int, int, int, int], None] | None = None, org: str = "",
                 sync_clock: Callable[[], object] | None = None,
                 gate: AbstractContextManager[object] | None = None) -> None:
        self.cfg = cfg
        self.source = source
        self.pipeline = pipeline
        self.checkpoint = checkpoint
        self.writer = writer
        self.quarantine = quarantine
        self.lifecycle = lifecycle
        self.clock = clock  # the API's clock when the wiring has one
        self.progress = progress
        self.org = org
        self.counters = checkpoint.counters
        self._sync_clock = sync_clock  # one answer from the API tells its clock (its Date header)
        self.chunks = ChunkSize(int(cfg.poll.max_window * 1000))
        self.gate = gate or nullcontext()  # at most max_parallel_orgs orgs in a cycle at once
        self.replay_events = cfg.output.replay_events(cfg.poll.page_size)
        self._slowest_page = 0.0

    @property
    def ledger(self) -> Ledger:
        return self.checkpoint.ledger

    def load(self, start_ms: int | None = None) -> None:
        """Resume from the state, or start at `start_ms` (default poll.start_from)."""

        def first() -> int:
            if start_ms is not None:
                return start_ms
            self._ensure_clock()  # a lookback counts back from the API's now, not this host's
            now = datetime.fromtimestamp(self.clock(), timezone.utc)
            return int(resolve_start(str(self.cfg.poll.start_from), now).timestamp() * 1000)

        self.checkpoint.load(first)

    # -- one pass ---------------------------------------------------------------------------------
    def _pass(self, p: Pass) -> None:
        """Read [start, end) chunk by chunk, writing new events page by page."""
        ledger = self.ledger
        # The main pass may move `recheck` only while nothing before it awaits a re-read.
        p.track_recheck = p.late or ledger.recheck >= ledger.frontier
        started, start = time.monotonic(), p.start
        while start < p.end:
            end = self.chunks.end_of(start, p.end)
            self.chunks.observe(self._chunk(p, start, end))
            start = end
        logs.debug("pass done", org=self.org or None, late=p.late, start=format_ms(p.start), end=format_ms(p.end),
                   seconds=round(time.monotonic() - started, 3), repeats_dropped=self.counters.duplicates,
                   filtered=self.counters.filtered)

    def _chunk(self, p: Pass, c_start: int, c_end: int) -> int:
        """One chunk: a page moves the frontier to its newest event while the source keeps its time
        order; `recheck` moves only once the whole chunk was read, so a crash, or a server that
        breaks its order, never leaves an unwritten event behind both positions. Returns the
        number of pages."""
        watch = ChunkWatch(self.source.ordered, self.source.name, self.org)
        for raws in self.source.pages(c_start, c_end, watch.progress):
            t0 = time.monotonic()
            ledger = self.ledger
            out = self.pipeline.process(raws, ledger.seen, ledger.recheck, ledger.frontier, watch.met, ledger.chains)
            watch.check_order(out)
            # An event dated past the chunk (bad input) must not drag the position along.
            follow = watch.progress.ordered and not p.late and out.last_ms is not None
            self._ship(out, p, frontier_to=min(out.last_ms, c_end) if follow else None)  # type: ignore[type-var]
            watch.check_progress(out)
            if self.progress and not p.late:
                self.progress(p.start, p.end, self.ledger.frontier, self.counters.emitted)
            self._slowest_page = max(self._slowest_page, time.monotonic() - t0)
            if self._should_stop():
                raise Interrupted("stopping at a page boundary")
        self._ship(None, p, chunk_end=c_end)
        return watch.pages

    def _ship(self, out: PageOut | None, p: Pass, *, frontier_to: int | None = None,
              chunk_end: int | None = None) -> None:
        """Write the page, then move the positions and commit: the checkpoint never passes an
        event that was not written."""
        with self.lifecycle.commit_lock:
            if out is not None:
                self.checkpoint.store.ensure_active()
                self.writer.write(out.data)
                self.quarantine.add(out.quarantined, self.org)
                if out.out_of_window:
                    logs.warning("events older than the recheck position were sent again; dropped as repeats",
                                 org=self.org or None, events=out.out_of_window)
                self.checkpoint.take(out, self.replay_events)
            if frontier_to is not None:
                self.ledger.advance_frontier(frontier_to)
            if chunk_end is not None:
                self.ledger.advance(chunk_end, late=p.late, track_recheck=p.track_recheck,
                                    final_before_ms=p.final_before)
            self.checkpoint.save()
        self.counters.lag_s = max(0.0, self.clock() - self.ledger.frontier / 1000)

    def _ensure_clock(self) -> None:
        if self._sync_clock is not None:
            self._sync_clock()
            self._sync_clock = None

    def _should_stop(self) -> bool:
        if self.lifecycle.stop.is_set():
            return True
        # Stop before a page that might not finish ahead of --max-runtime.
        left = self.lifecycle.time_left()
        return left is not None and left < 2 * self._slowest_page + 0.5

    # -- cycles -----------------------------------------------------------------------------------
    def cycle(self) -> None:
        """Re-read what reached the late window's age, then catch up to now minus settle_delay."""
        poll = self.cfg.poll
        self.checkpoint.store.ensure_active()  # an org handed over, or a lease lost, stops here
        self._ensure_clock()
        now_ms = int(self.clock() * 1000)
        ledger = self.ledger
        oldest = now_ms - int(poll.retention * 1000)
        if ledger.frontier < oldest:
            logs.error("position is older than poll.retention: events before it are gone", org=self.org or None,
                       position=format_ms(ledger.frontier), oldest=format_ms(oldest))
            self.counters.gaps += 1
            ledger.move_to(oldest)
        for p in plan_passes(ledger.frontier, ledger.recheck, now_ms, self.cfg):
            self._pass(p)
        self.checkpoint.succeeded()
        with self.lifecycle.commit_lock:
            self.checkpoint.save()

    def backfill(self, end_ms: int) -> None:
        """Re-export up to `end_ms` once: a single final pass, no late re-reads."""
        oldest = int((self.clock() - self.cfg.poll.retention) * 1000)
        if self.ledger.frontier < oldest:
            logs.warning("backfill start is older than poll.retention; starting at the retention bound",
                         requested=format_ms(self.ledger.frontier), oldest=format_ms(oldest))
            self.ledger.move_to(oldest)
        try:
            if self.ledger.frontier < end_ms:
                self._pass(Pass(self.ledger.frontier, end_ms, late=False, final_before=end_ms))
            self.checkpoint.succeeded()
            with self.lifecycle.commit_lock:
                self.checkpoint.save()
        except Interrupted:
            logs.info("backfill stopped at a page boundary; rerun the same command to resume",
                      position=format_ms(self.ledger.frontier))
        except OutputClosed:
            logs.warning("stdout closed by reader; rerun the same command to resume")

    def replay(self) -> None:
        """Write the last pages again, byte for byte (output.replay_on_start); never fatal."""
        write_again(keep_last(self.ledger.replay, self.replay_events), self.replay_events, self.source,
                    self.pipeline, self.writer, self.lifecycle, self.org)

    def run(self, *, once: bool) -> None:
        """Cycle until stopped (or once). ApiErrors fail `--once`; the daemon logs and goes on."""
        next_health = time.monotonic() + self.cfg.poll.health_interval
        health_backoff = 60.0
        try:
            self.replay()
            while not self.lifecycle.stop.is_set():
                try:
                    with self.gate:
                        self.cycle()
                except (ApiError, OutputError) as exc:
                    self.checkpoint.failed(exc)
                    if once:
                        raise
                    logs.error("cycle failed; the position did not move, retrying next interval",
                               org=self.org or None, reason=str(exc))
                if once:
                    return
                if time.monotonic() >= next_health:
                    next_health, health_backoff = self._health(health_backoff)
                if self.lifecycle.idle(self.cfg.poll.interval, self.writer.reader_gone):
                    break
        except Interrupted:
            logs.info("stopped at a page boundary", org=self.org or None, position=format_ms(self.ledger.frontier))
        except OutputClosed:
            logs.warning("stdout closed by reader; stopping without advancing past unwritten events",
                         position=format_ms(self.ledger.frontier))

    def _health(self, backoff: float) -> tuple[float, float]:
        """The daily health probe: a one-event query. Failures retry with growing delays."""
        try:
            got = self.source.probe()
        except Interrupted:
            raise
        except ShipperError as exc:
            logs.error("health probe failed", org=self.org or None, reason=str(exc), retry_in_s=int(backoff))
            self.checkpoint.failed(exc)
            return time.monotonic() + backoff, min(backoff * 2, float(self.cfg.poll.health_interval))
        logs.info("health probe ok", org=self.org or None, events=got)
        self.checkpoint.health_ok()
        return time.monotonic() + self.cfg.poll.health_interval, 60.0

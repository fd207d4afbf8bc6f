"""The engine loop: late pass, main pass, write, then checkpoint. It does not know the source."""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import msgspec

from . import logs
from .checkpoint import CheckpointStore, State
from .config import Config, resolve_start
from .emitter import LineEncoder, Quarantine, Sink
from .errors import ApiError, Interrupted, OutputClosed, ShipperError
from .filters import make_filter, make_reducer, make_tiering, reduce_payload
from .models import AuditEvent, InvalidEvent, event_decoder, event_time_ms, format_ms
from .window import MASK64, Ledger, id_hash, plan_windows, uuid_int

if TYPE_CHECKING:
    from .metrics import Metrics
    from .sources import Source


UNORDERED_CHUNK_MS = 3_600_000


def _iso(ts: float) -> str:
    return format_ms(int(ts * 1000))


class Engine:
    def __init__(
        self,
        cfg: Config,
        source: Source,
        store: CheckpointStore,
        sink: Sink,
        *,
        stop: threading.Event,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        progress: Callable[[int, int, int, int], None] | None = None,
        request_stop: Callable[[float], None] | None = None,
        stop_grace: float = 0.0,
    ) -> None:
        from .schemas import build_mapper

        self.cfg = cfg
        self.source = source
        self.store = store
        self.sink = sink
        self.stop = stop
        self.metrics = metrics
        self.clock = clock
        self.progress = progress
        self.request_stop = request_stop or (lambda _grace: stop.set())
        self.stop_grace = stop_grace
        self.map = build_mapper(cfg)
        self.slim = _uses_slim_event(cfg.output.schema)
        self.keep = make_filter(cfg.filters)
        self.tier_of = make_tiering(cfg.routing.tiers, cfg.routing.default_tier)
        self.reduce_for = make_reducer(cfg.output.reduce)
        self.encoder = LineEncoder(cfg.output.max_line_bytes, protect=_protected(cfg.output.schema))
        self.quarantine = Quarantine(cfg.output.quarantine)
        self.state = State()
        self.ledger = Ledger(0, 0)
        self.deadline: float | None = None
        self.filtered = 0
        self.duplicates = 0
        self.pages = 0
        self._slowest_page = 0.0
        self._quarantined_before = 0

    # -- state ---------------------------------------------------------------------------------
    def load(self, start_ms: int | None = None) -> None:
        """Resume from the state file, or start at `start_ms` (default poll.start_from)."""
        state = self.store.load()
        now = self.clock()
        if state is None or state.frontier_ms is None:
            if start_ms is None:
                start = resolve_start(str(self.cfg.poll.start_from), datetime.fromtimestamp(now, timezone.utc))
                start_ms = int(start.timestamp() * 1000)
            self.state = state or State()
            self.ledger = Ledger(start_ms, start_ms)
            logs.info("first run: starting", start=format_ms(start_ms))
        else:
            self.state = state
            self._quarantined_before = state.quarantined
            try:
                seen = Ledger.unpack_seen(state.seen)
            except ValueError as exc:
                from .errors import StateError

                raise StateError(f"state file {str(self.store.path)!r} is corrupt ({exc})") from None
            recheck = state.recheck_ms if state.recheck_ms is not None else state.frontier_ms
            self.ledger = Ledger(state.frontier_ms, recheck, seen)
            logs.info("resuming", position=format_ms(state.frontier_ms), recheck=format_ms(recheck),
                      remembered_ids=len(seen))

    def save(self) -> None:
        s = self.state
        s.frontier_ms = self.ledger.frontier
        s.recheck_ms = self.ledger.recheck
        s.seen = self.ledger.pack_seen()
        s.quarantined = self._quarantined_before + self.quarantine.count
        s.updated_at = _iso(self.clock())
        self.store.save(s)

    # -- one pass over an interval ------------------------------------------------------------
    def _pass(self, start_ms: int, end_ms: int, *, late: bool, final_before_ms: int) -> None:
        """Read [start, end), write new events page by page, checkpoint after each page."""
        ledger = self.ledger
        # The main pass may move `recheck` only while nothing before it awaits a re-read.
        track_recheck = late or ledger.recheck >= ledger.frontier
        ordered = getattr(self.source, "ordered", True)
        # A source without a time order can only move positions once a whole chunk is read.
        chunks = [(start_ms, end_ms)] if ordered else list(plan_windows(start_ms, end_ms, UNORDERED_CHUNK_MS))
        started = time.monotonic()
        for c_start, c_end in chunks:
            trusted, newest = ordered, None
            for raws in self.source.pages(c_start, c_end):
                t0 = time.monotonic()
                page, count, oldest_ts, last_ts = self._process(raws)
                if count:
                    self.sink.write_page(page)
                self.quarantine.flush()
                self.pages += 1
                self.state.emitted += count
                if trusted and newest is not None and oldest_ts is not None and oldest_ts < newest:
                    logs.warning("source returned pages out of time order; positions move only at the "
                                 "end of this window", source=self.source.name)
                    trusted = False
                if last_ts is not None:
                    newest = last_ts if newest is None else max(newest, last_ts)
                    if trusted:
                        # An event dated past the window (bad input) must not drag the position along.
                        self._advance(min(last_ts, c_end), late, track_recheck, final_before_ms)
                self.save()
                if self.metrics:
                    self.metrics.quarantined = self.state.quarantined
                    self.metrics.page(count, ledger.frontier)
                if self.progress and not late:
                    self.progress(start_ms, end_ms, ledger.frontier, self.state.emitted)
                self._slowest_page = max(self._slowest_page, time.monotonic() - t0)
                if self._should_stop():
                    raise Interrupted("stopping at a page boundary")
            self._advance(c_end, late, track_recheck, final_before_ms)
            self.save()
        logs.debug("pass done", late=late, start=format_ms(start_ms), end=format_ms(end_ms),
                   seconds=round(time.monotonic() - started, 3), repeats_dropped=self.duplicates,
                   filtered=self.filtered)

    def _advance(self, ts: int, late: bool, track_recheck: bool, final_before_ms: int) -> None:
        if late:
            self.ledger.advance_recheck(ts)
            return
        self.ledger.advance_frontier(ts)
        if track_recheck:
            # What was read at least late_window after its time is final: no re-read needed.
            self.ledger.advance_recheck(min(ts, final_before_ms))

    def _should_stop(self) -> bool:
        if self.stop.is_set():
            return True
        # Stop before a page that might not finish ahead of --max-runtime.
        return self.deadline is not None and time.monotonic() + 2 * self._slowest_page + 0.5 > self.deadline

    def _process(self, raws: list[msgspec.Raw]) -> tuple[bytearray, int, int | None, int | None]:
        """The NDJSON page to write, its line count, and the oldest and newest eventDate (ms)."""
        page = bytearray()
        count = 0
        first_ts: int | None = None
        last_ts: int | None = None
        ledger, keep, mapper = self.ledger, self.keep, self.map
        seen = ledger.seen
        encode_into, too_long = self.encoder.encode_into, self.encoder.max_line_bytes - 1
        # Hooks nobody configured cost nothing per event.
        filtering = bool(self.cfg.filters.include or self.cfg.filters.exclude)
        tiering, reducing = bool(self.cfg.routing.tiers), bool(self.cfg.output.reduce)
        default_tier, slim = self.cfg.routing.default_tier, self.slim
        # Hot loop: decode_event's rules with a per-page date cache (bulk operations share a millisecond).
        decode = event_decoder(slim).decode
        prev_date, prev_ts = "", 0
        for raw in raws:
            try:
                event = decode(raw)
                if event.eventDate == prev_date:  # bulk operations share one millisecond
                    ts = prev_ts
                else:
                    ts = event_time_ms(event.eventDate)
                    prev_date, prev_ts = event.eventDate, ts
                    # Only a new date can move the page's oldest/newest marks.
                    if last_ts is None or ts > last_ts:
                        last_ts = ts
                    if first_ts is None or ts < first_ts:
                        first_ts = ts
                if not event.id:
                    raise InvalidEvent("empty id")
            except (InvalidEvent, msgspec.DecodeError) as exc:
                self._quarantine(raw, exc)
                continue
            eid = event.id
            # id_hash's UUID branch, inlined: the call alone is a tenth of the per-event cost.
            if len(eid) == 36 and eid[8] == "-" and (x := uuid_int(eid)) is not None:
                h = ((x >> 64) ^ x) & MASK64
            else:
                h = id_hash(eid)
            if h in seen:
                self.duplicates += 1
                continue
            seen[h] = ts
            if filtering and not keep(event):
                self.filtered += 1
                continue
            tier = self.tier_of(event) if tiering else default_tier  # from the whole event, before reduction
            if reducing and (keep_paths := self.reduce_for(event)) is not None:
                event, raw = _reduced(event, raw, keep_paths)
            start = len(page)
            encode_into(mapper(event, raw, tier), page, -1)  # appended in place: no per-line bytes
            if len(page) - start > too_long:
                line = self.encoder.fit(bytes(page[start:]))
                del page[start:]
                page += line
            page.append(10)
            count += 1
        return page, count, first_ts, last_ts

    def _quarantine(self, raw: msgspec.Raw, exc: Exception) -> None:
        body = bytes(raw)
        h = id_hash(body.decode("utf-8", "replace"))
        if h not in self.ledger.seen:  # a re-read must not quarantine it twice
            self.ledger.remember(h, self.ledger.frontier)
            reason = str(exc) if isinstance(exc, InvalidEvent) else str(InvalidEvent(str(exc)))
            self.quarantine.add(body, reason)

    # -- cycles --------------------------------------------------------------------------------
    def cycle(self) -> None:
        """Re-read what reached the late window's age, then catch up to now minus settle_delay."""
        poll = self.cfg.poll
        now = self.clock()
        now_ms = int(now * 1000)
        horizon = now_ms - int(poll.settle_delay * 1000)
        final_before = now_ms - int(poll.late_window * 1000)
        oldest = now_ms - int(poll.retention * 1000)
        ledger = self.ledger
        if ledger.frontier < oldest:
            logs.error("position is older than poll.retention: events before it are gone",
                       position=format_ms(ledger.frontier), oldest=format_ms(oldest))
            self.state.gaps += 1
            if self.metrics:
                self.metrics.gap()
            ledger.frontier = oldest
            ledger.advance_recheck(oldest)
        late_end = min(ledger.frontier, final_before)
        if ledger.recheck < late_end:
            self._pass(ledger.recheck, late_end, late=True, final_before_ms=final_before)
        if ledger.frontier < horizon:
            self._pass(ledger.frontier, horizon, late=False, final_before_ms=final_before)
        self.state.last_success = _iso(self.clock())
        self.save()

    def backfill(self, end_ms: int) -> None:
        """Re-export up to `end_ms` once: a single final pass, no late re-reads."""
        oldest = int((self.clock() - self.cfg.poll.retention) * 1000)
        if self.ledger.frontier < oldest:
            logs.warning("backfill start is older than poll.retention; starting at the retention bound",
                         requested=format_ms(self.ledger.frontier), oldest=format_ms(oldest))
            self.ledger = Ledger(oldest, oldest, self.ledger.seen)
        try:
            if self.ledger.frontier < end_ms:
                self._pass(self.ledger.frontier, end_ms, late=False, final_before_ms=end_ms)
            self.state.last_success = _iso(self.clock())
            self.save()
        except Interrupted:
            logs.info("backfill stopped at a page boundary; rerun the same command to resume",
                      position=format_ms(self.ledger.frontier))
        except OutputClosed:
            logs.warning("stdout closed by reader; rerun the same command to resume")
        finally:
            self.sink.close()

    def run(self, *, once: bool, max_runtime: float | None = None) -> None:
        if max_runtime:
            self.deadline = time.monotonic() + max_runtime
            if hasattr(self.sink, "deadline"):
                self.sink.deadline = self.deadline
            # Stop early enough that a request still in flight can be abandoned before the deadline.
            grace = min(self.stop_grace, max_runtime / 4)
            timer = threading.Timer(max(0.0, max_runtime - grace - 0.5), self.request_stop, args=(grace,))
            timer.daemon = True
            timer.start()
        next_health = time.monotonic() + self.cfg.poll.health_interval
        health_backoff = 60.0
        try:
            while not self.stop.is_set():
                try:
                    self.cycle()
                except ApiError as exc:
                    self._record_error(exc)
                    if once:
                        raise
                    logs.error("cycle failed; the position did not move, retrying next interval",
                               reason=str(exc))
                if once:
                    return
                if self.metrics:
                    self.metrics.maybe_report(self.ledger.frontier)
                if time.monotonic() >= next_health:
                    next_health, health_backoff = self._health(next_health, health_backoff)
                if self._idle(self.cfg.poll.interval):
                    break
        except Interrupted:
            logs.info("stopped at a page boundary", position=format_ms(self.ledger.frontier))
        except OutputClosed:
            logs.warning("stdout closed by reader; stopping without advancing past unwritten events",
                         position=format_ms(self.ledger.frontier))
        finally:
            self.sink.close()

    def _idle(self, seconds: float) -> bool:
        """Wait for the next cycle; True on stop. A vanished reader ends the wait (and the lock)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stop.wait(min(left, 0.5)):
                return True
            if self.sink.reader_gone():
                raise OutputClosed("stdout reader is gone")
        return False

    def _health(self, due: float, backoff: float) -> tuple[float, float]:
        """The 24-hour health probe: a one-event query. Failures retry with growing delays."""
        try:
            got = self.source.probe()
        except Interrupted:
            raise
        except ShipperError as exc:
            logs.error("health probe failed", reason=str(exc), retry_in_s=int(backoff))
            self._record_error(exc)
            return time.monotonic() + backoff, min(backoff * 2, float(self.cfg.poll.health_interval))
        logs.info("health probe ok", events=got)
        self.state.last_health = _iso(self.clock())
        return time.monotonic() + self.cfg.poll.health_interval, 60.0

    def _record_error(self, exc: Exception) -> None:
        self.state.last_error = logs.redact(str(exc))[:500]
        self.state.last_error_at = _iso(self.clock())
        try:
            self.save()
        except OSError:
            pass


def _uses_slim_event(schema: str) -> bool:

    from .schemas import build_mapper  # noqa: F401 - the package must be importable

    return bool(getattr(importlib.import_module(f"shipper.schemas.{schema}"), "SLIM_EVENT", False))


def _reduced(event: AuditEvent, raw: msgspec.Raw, keep: list[str]) -> tuple[AuditEvent, msgspec.Raw]:
    """The event cut down to `keep` (the guide's field selection); id and date always survive."""
    doc = reduce_payload(msgspec.json.decode(raw), keep)
    doc.setdefault("id", event.id)
    doc.setdefault("eventDate", event.eventDate)
    small = msgspec.Raw(msgspec.json.encode(doc))
    return msgspec.json.decode(small, type=AuditEvent), small


def _protected(schema: str) -> frozenset[str]:
    """Top-level keys that shrinking never cuts (ids and times)."""
    return frozenset({
        "siem_event_id", "siem_timestamp", "siem_event_type", "audit_tier",
        "id", "eventDate", "@timestamp", "event", "time", "metadata", "class_uid", "category_uid",
        "activity_id", "type_uid", "severity_id", "EventOriginalUid", "EventStartTime", "EventEndTime",
        "EventType", "EventResult", "EventSchema", "EventSchemaVersion", "EventProduct", "EventVendor",
        "object_id", "action", "_time",
    })

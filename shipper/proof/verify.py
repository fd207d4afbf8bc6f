"""`verify`: does what a SIEM holds prove every record arrived, unaltered?

Reads NDJSON or SIEM exports (Splunk `_raw` / `result`, Elastic `_source` and search answers, plain
lines) in any order, from any number of files. Every record is digested in worker processes (its
canonical bytes, without `audit_chain`), packed into a small fixed-size entry, and sorted by stream
and sequence on disk when it does not fit in memory. One pass over the sorted entries then finds
gaps, chain breaks, identical repeats and conflicting repeats. Memory stays flat however large the
input: the sort keeps at most RUN_ENTRIES entries in memory.

A plain line as the shipper wrote it is canonical already, so its digest is the SHA-256 of its
bytes without the chain field. A worker takes that shortcut only when it proves itself: the
record's predecessor (same stream, sequence before) is in the same batch of lines, and its chain
value links to this record's with this digest, which no other bytes can give. Anything else
(neighbours far apart, SIEM wrappers, re-serialized records, a break) is parsed and
canonicalized. The check afterwards is the same for both.
"""

from __future__ import annotations

import hashlib
import heapq
import multiprocessing
import os
import signal
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import msgspec

from ..models import format_ms, parse_event_time_ms
from . import canonical
from .chain import CHAIN_FIELD, GENESIS, KEY_ID_FIELD, SEAL_HEAD, SEQ_FIELD, STREAM_FIELD, ChainKey, link

RUN_ENTRIES = 100_000  # ~20 MB of entries in memory at most
BATCH_LINES = 2_000
SEQ_PATHS = ((SEQ_FIELD,), ("event", "sequence"), ("metadata", "sequence"))
ID_PATHS = (("siem_event_id",), ("event", "id"), ("metadata", "uid"), ("EventOriginalUid",), ("id",))
DATE_PATHS = (("siem_timestamp",), ("@timestamp",), ("EventStartTime",), ("time",), ("eventDate",))
_SEAL_BYTES = len(SEAL_HEAD) + 64 + 2
# An entry: stream NUL | seq (8, big-endian: sorts) | digest 32 | chain 32 | key id 16 | date ms 8 | event id
_FIXED = struct.Struct(">Q32s32s16sq")


class Unreadable(Exception):
    """Input that is not JSON, or a record of ours with a broken chain field: exit 2."""


@dataclass(frozen=True)
class Entry:
    stream: str
    seq: int
    digest: bytes
    chain: bytes
    key_id: str
    date_ms: int
    event_id: str

    def pack(self) -> bytes:
        return (self.stream.encode() + b"\0" + _FIXED.pack(self.seq, self.digest, self.chain,
                                                           self.key_id.encode()[:16], self.date_ms)
                + self.event_id.encode()[:64])

    @classmethod
    def unpack(cls, data: bytes) -> Entry:
        stream, _, rest = data.partition(b"\0")
        seq, digest, chain, kid, date_ms = _FIXED.unpack_from(rest)
        return cls(stream.decode(), seq, digest, chain, kid.rstrip(b"\0").decode(), date_ms,
                   rest[_FIXED.size:].decode())


# -- records out of exports ----------------------------------------------------------------------
def _get(doc: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def records_in(doc: Any, source: bytes) -> Iterator[tuple[dict[str, Any], bytes]]:
    """Our records inside one exported JSON document, whatever the SIEM wrapped them in, each with
    bytes that hold it (for `canonical.encode`: what they lack, the record lacks)."""
    if isinstance(doc, list):
        for item in doc:
            yield from records_in(item, source)
        return
    if not isinstance(doc, dict):
        return
    if CHAIN_FIELD in doc:
        yield doc, source
    elif isinstance(doc.get("_raw"), str):  # Splunk: the line exactly as it was indexed
        raw = doc["_raw"].encode()
        yield from records_in(canonical.parse(raw), raw)
    elif "result" in doc:  # Splunk export: {"preview": false, "result": {...}}
        yield from records_in(doc["result"], source)
    elif "results" in doc:  # Splunk search answer
        yield from records_in(doc["results"], source)
    elif "_source" in doc:  # Elastic document
        yield from records_in(doc["_source"], source)
    elif isinstance(doc.get("hits"), dict):  # Elastic search answer
        yield from records_in(doc["hits"].get("hits"), source)


def _date_ms(record: dict[str, Any]) -> int:
    for path in DATE_PATHS:
        value = _get(record, path)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return parse_event_time_ms(value)
            except ValueError:
                continue
    return 0


def entry_of(record: dict[str, Any], drop: tuple[str, ...] = (), source: bytes = b"") -> Entry:
    """Digest one record: its canonical bytes without the chain value (and without `drop`, fields
    a SIEM adds). The record is changed in place; `source` holds its bytes (none: the slow,
    always-right key order)."""
    chain_hex = record.pop(CHAIN_FIELD)
    for name in drop:
        record.pop(name, None)
    return _entry(record, chain_hex, lambda: hashlib.sha256(canonical.encode(record, source)).digest())


def _entry(record: dict[str, Any], chain_hex: Any, digest_of: Callable[[], bytes]) -> Entry:
    """The entry of a record without its chain field; `digest_of` runs only once the fields hold."""
    seq = next((v for p in SEQ_PATHS if isinstance(v := _get(record, p), int) and not isinstance(v, bool)), None)
    stream = record.get(STREAM_FIELD)
    try:
        chain = bytes.fromhex(chain_hex) if isinstance(chain_hex, str) else b""
    except ValueError:
        chain = b""
    if seq is None or not isinstance(stream, str) or len(chain) != 32 or "\0" in stream:
        raise Unreadable("a record with audit_chain but no valid audit_stream, sequence or chain value")
    digest = digest_of()
    event_id = next((v for p in ID_PATHS if isinstance(v := _get(record, p), str)), "")
    key_id = record.get(KEY_ID_FIELD)
    return Entry(stream, seq, digest, chain, key_id if isinstance(key_id, str) else "", _date_ms(record), event_id)


class _Head(msgspec.Struct):
    """The top-level fields an entry is made of (every path of SEQ_PATHS, ID_PATHS, DATE_PATHS);
    decoding only these skips the rest of the line."""

    audit_chain: Any = msgspec.UNSET
    audit_stream: Any = msgspec.UNSET
    audit_seq: Any = msgspec.UNSET
    audit_key_id: Any = msgspec.UNSET
    event: Any = msgspec.UNSET
    metadata: Any = msgspec.UNSET
    siem_event_id: Any = msgspec.UNSET
    EventOriginalUid: Any = msgspec.UNSET  # noqa: N815
    id: Any = msgspec.UNSET
    siem_timestamp: Any = msgspec.UNSET
    timestamp: Any = msgspec.field(default=msgspec.UNSET, name="@timestamp")
    EventStartTime: Any = msgspec.UNSET  # noqa: N815
    time: Any = msgspec.UNSET
    eventDate: Any = msgspec.UNSET  # noqa: N815


_HEAD_KEYS = [f.encode_name for f in msgspec.structs.fields(_Head)][1:]  # all but audit_chain
_head = msgspec.json.Decoder(_Head).decode


def _sealed_entry(line: bytes) -> tuple[Entry, bytes] | None:
    """A plain line as the shipper writes it: its entry, with the digest of its bytes (not proven
    yet), and those bytes; None for anything else."""
    line = line.rstrip()  # the newline
    if not line.endswith(b'"}') or line[-_SEAL_BYTES:-66] != SEAL_HEAD or line[:1] != b"{":
        return None
    try:
        head = _head(line)
    except (msgspec.DecodeError, RecursionError):
        return None
    values = msgspec.structs.astuple(head)
    record = {key: value for key, value in zip(_HEAD_KEYS, values[1:], strict=True) if value is not msgspec.UNSET}
    digest = hashlib.sha256(line[:-_SEAL_BYTES] + b"}").digest()
    try:
        return _entry(record, head.audit_chain, lambda: digest), line
    except Unreadable:
        return None


def _proven(entry: Entry, before: bytes | None, keys: tuple[bytes | None, ...]) -> bool:
    """Whether `entry`'s digest is the one the shipper chained: some chain value before it links to
    its own with that digest (any claimed one will do: other bytes cannot give the same link)."""
    return before is not None and any(link(before, entry.digest, key) == entry.chain for key in keys)


def digest_batch(batch: tuple[list[tuple[str, int, bytes]], tuple[str, ...], tuple[bytes | None, ...]]
                 ) -> tuple[list[bytes], list[str], int]:
    """Worker: (packed entries, unreadable line references, lines that held no record of ours).
    `keys`: the chain keys to try for the shortcut (None: plain SHA-256)."""
    lines, drop, keys = batch
    packed: list[bytes] = []
    bad: list[str] = []
    foreign = 0
    quick = [None if drop else _sealed_entry(line) for _, _, line in lines]
    # The chain values this batch holds, so a line's predecessor can prove it in either order
    # (files run oldest first, Splunk's exports newest first).
    chains = {(q[0].stream, q[0].seq): q[0].chain for q in quick if q is not None}
    for (where, number, line), q in zip(lines, quick, strict=True):
        if q is not None:
            entry = q[0]
            before = GENESIS if entry.seq == 1 else chains.get((entry.stream, entry.seq - 1))
            if _proven(entry, before, keys):
                packed.append(entry.pack())
                continue
        try:
            found = [entry_of(r, drop, src).pack() for r, src in records_in(canonical.parse(line), line)]
        except (msgspec.DecodeError, RecursionError, Unreadable, UnicodeError) as exc:
            bad.append(f"{where}:{number}: {str(exc)[:80]}")
            continue
        packed += found
        foreign += not found
    return packed, bad, foreign


# -- the external sort -----------------------------------------------------------------------------
class Sorter:
    """Sorts packed entries; spills sorted runs to temporary files beyond RUN_ENTRIES."""

    def __init__(self, run_entries: int = RUN_ENTRIES) -> None:
        self.run_entries = run_entries
        self.pending: list[bytes] = []
        self.runs: list[BinaryIO] = []

    def add(self, entries: Iterable[bytes]) -> None:
        self.pending.extend(entries)
        if len(self.pending) >= self.run_entries:
            self._spill()

    def _spill(self) -> None:
        self.pending.sort()
        run = tempfile.TemporaryFile()  # noqa: SIM115 - read back by merged()
        run.writelines(struct.pack(">H", len(e)) + e for e in self.pending)  # no second copy of the run
        run.seek(0)
        self.runs.append(run)
        self.pending = []

    def merged(self) -> Iterator[bytes]:
        self.pending.sort()
        yield from heapq.merge(self.pending, *(_read_run(r) for r in self.runs))


def _read_run(run: BinaryIO) -> Iterator[bytes]:
    with run:
        while head := run.read(2):
            yield run.read(struct.unpack(">H", head)[0])


# -- the check ---------------------------------------------------------------------------------------
@dataclass
class StreamReport:
    stream: str
    records: int = 0
    first_seq: int = 0
    last_seq: int = 0
    first_date: str = ""
    last_date: str = ""
    duplicates: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    breaks: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.gaps or self.breaks or self.conflicts)


def check(entries: Iterator[bytes], keys: dict[str, ChainKey], default_key: ChainKey | None, *,
          partial: bool = False, expected: dict[str, int] | None = None) -> list[StreamReport]:
    """Walk the sorted entries stream by stream. A stream must start at sequence 1 unless
    `partial`; `expected` (from the shipper's state) gives each stream's last sequence written,
    so records missing at the end, or a whole stream missing, are gaps too."""
    reports: list[StreamReport] = []
    walker: _Walk | None = None
    for data in entries:
        entry = Entry.unpack(data)
        if walker is None or entry.stream != walker.report.stream:
            if walker is not None:
                reports.append(walker.finish(expected))
            walker = _Walk(entry.stream, keys, default_key, partial)
        walker.take(entry, data)
    if walker is not None:
        reports.append(walker.finish(expected))
    seen = {r.stream for r in reports}
    for stream, last in sorted((expected or {}).items()):
        if stream not in seen and last > 0:
            missing = StreamReport(stream)
            missing.gaps.append({"missing_from": 1, "missing_to": last, "after_date": "", "before_date": ""})
            reports.append(missing)
    return reports


class _Walk:
    def __init__(self, stream: str, keys: dict[str, ChainKey], default_key: ChainKey | None, partial: bool) -> None:
        self.report = StreamReport(stream)
        self.keys, self.key = keys, default_key
        self.partial = partial
        self.prev: Entry | None = None
        self.prev_data = b""

    def take(self, entry: Entry, data: bytes) -> None:
        r, prev = self.report, self.prev
        if prev is not None and entry.seq == prev.seq:
            if data == self.prev_data:
                r.duplicates += 1
            else:
                r.conflicts.append({"seq": entry.seq, "event_ids": sorted({prev.event_id, entry.event_id})})
            return
        r.records += 1
        if prev is None:
            r.first_seq, r.first_date = entry.seq, format_ms(entry.date_ms)
            if entry.seq != 1 and self.partial:
                r.notes.append(f"starts at sequence {entry.seq}: records before it are not in the input")
            elif entry.seq != 1:
                r.gaps.append({"missing_from": 1, "missing_to": entry.seq - 1, "after_date": "",
                               "before_date": format_ms(entry.date_ms)})
        elif entry.seq != prev.seq + 1:
            r.gaps.append({"missing_from": prev.seq + 1, "missing_to": entry.seq - 1,
                           "after_date": format_ms(prev.date_ms), "before_date": format_ms(entry.date_ms)})
        self._link(entry, prev)
        r.last_seq = entry.seq  # its date is formatted once, at the end
        self.prev, self.prev_data = entry, data

    def _link(self, entry: Entry, prev: Entry | None) -> None:
        if entry.key_id:
            self.key = self.keys.get(entry.key_id)
            if self.key is None:
                self.report.breaks.append({"seq": entry.seq, "event_id": entry.event_id,
                                           "reason": f"signed with key {entry.key_id}, which was not given"})
                return
        if prev is not None and entry.seq != prev.seq + 1:
            return  # across a gap the link cannot be checked; the gap is reported
        before = GENESIS if prev is None and entry.seq == 1 else (prev.chain if prev is not None else None)
        if before is None:
            return
        expected = link(before, entry.digest, self.key.key if self.key is not None else None)
        if expected != entry.chain:
            self.report.breaks.append({"seq": entry.seq, "event_id": entry.event_id,
                                       "reason": "the chain value does not follow: the record or one before it "
                                                 "was altered, or the wrong key was given"})

    def finish(self, expected: dict[str, int] | None) -> StreamReport:
        if self.prev is not None:
            self.report.last_date = format_ms(self.prev.date_ms)
        last = (expected or {}).get(self.report.stream, 0)
        if last > self.report.last_seq:
            self.report.gaps.append({"missing_from": self.report.last_seq + 1, "missing_to": last,
                                     "after_date": self.report.last_date, "before_date": ""})
        return self.report


# -- driving it --------------------------------------------------------------------------------------
def batches(lines: Iterator[tuple[str, int, bytes]], drop: tuple[str, ...],
            keys: tuple[bytes | None, ...]) -> Iterator[Any]:
    batch: list[tuple[str, int, bytes]] = []
    for item in lines:
        batch.append(item)
        if len(batch) >= BATCH_LINES:
            yield batch, drop, keys
            batch = []
    if batch:
        yield batch, drop, keys


def digest_all(lines: Iterator[tuple[str, int, bytes]], drop: tuple[str, ...], sorter: Sorter,
               workers: int | None = None, keys: Iterable[ChainKey] = ()) -> tuple[list[str], int]:
    """Digest every line (in worker processes when there are cores to spare) into `sorter`.
    `keys`: the HMAC keys given (none: the chains are plain SHA-256)."""
    key_bytes: tuple[bytes | None, ...] = tuple(k.key for k in keys) or (None,)
    bad: list[str] = []
    foreign = 0
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if workers <= 1:
        results: Iterable[tuple[list[bytes], list[str], int]] = map(digest_batch, batches(lines, drop, key_bytes))
        for packed, errors, other in results:
            sorter.add(packed)
            bad += errors
            foreign += other
        return bad, foreign
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_default_signals)
    try:
        for packed, errors, other in pool.imap(digest_batch, batches(lines, drop, key_bytes), chunksize=1):
            sorter.add(packed)
            bad += errors
            foreign += other
        pool.close()
    finally:
        pool.terminate()
        pool.join()
    return bad, foreign


def _default_signals() -> None:
    """A worker process ends on SIGTERM (the pool's way to stop it), unlike the shipper."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)

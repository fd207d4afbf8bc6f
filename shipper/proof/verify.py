"""`verify`: does what a SIEM holds prove every record arrived, unaltered?

Reads NDJSON or SIEM exports (Splunk `_raw` / `result`, Elastic `_source` and search answers, plain
lines) in any order, from any number of files. Worker processes read the inputs in byte ranges and
digest every record (its canonical bytes, without `audit_chain`) into a small fixed-size entry;
the entries are sorted by stream and sequence, on disk when they do not fit in memory. One pass
over the sorted entries then finds gaps, chain breaks, identical repeats and conflicting repeats.
Memory stays flat however large the input: the sort keeps at most RUN_ENTRIES entries in memory.

A plain line as the shipper wrote it is canonical already, so its digest is the SHA-256 of its
bytes without the chain field. Workers take that for every plain line, and mark the entry with
where the line stands. The walk proves it: when the chain value before links to the record's own
with that digest, no other bytes could have given it. When it does not link, the walk reads the
line again and takes its canonical digest (the line was re-serialized, or altered), and only that
decides. SIEM wrappers and re-serialized records are canonicalized by the workers directly.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import multiprocessing
import os
import pickle
import re
import signal
import struct
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NamedTuple, TypedDict

import msgspec

from ..errors import ShipperError
from ..models import format_ms, parse_event_time_ms
from . import canonical
from .chain import CHAIN_FIELD, GENESIS, KEY_ID_FIELD, SEAL_HEAD, SEQ_FIELD, STREAM_FIELD, ChainKey, link

RUN_ENTRIES = 100_000  # ~20 MB of entries in memory at most
RUN_SLICE = 2_048  # what merging holds of each spilled run
FAN_IN = 16  # runs merged into one
AHEAD_PER_WORKER = 8  # jobs handed out ahead of the one awaited (~0.5 MB of results each)
JOB_BYTES = 4 << 20  # one worker task: the lines that start in 4 MiB of an input
SEQ_PATHS = ((SEQ_FIELD,), ("event", "sequence"), ("metadata", "sequence"))
ID_PATHS = (("siem_event_id",), ("event", "id"), ("metadata", "uid"), ("EventOriginalUid",), ("id",))
DATE_FIELDS = ("siem_timestamp", "@timestamp", "EventStartTime", "time", "eventDate")  # top level, all
_SEAL_BYTES = len(SEAL_HEAD) + 64 + 2
# An entry: stream NUL | seq (8, big-endian: sorts) | digest 32 | chain 32 | key id 16 | date ms 8 |
# source 4 | offset 8 | event id
_FIXED = struct.Struct(">Q32s32s16sqiQ")
NO_SOURCE = -1  # the digest is canonical: nothing to read again


class Unreadable(Exception):
    """Input that is not JSON, or a record of ours with a broken chain field: exit 2."""


class Entry(NamedTuple):
    stream: str
    seq: int
    digest: bytes
    chain: bytes
    key_id: str
    date_ms: int
    event_id: str
    source: int = NO_SOURCE  # with `offset`: the line whose bytes `digest` is of, not proven canonical yet
    offset: int = 0

    def pack(self) -> bytes:
        return _pack(*self)

    @classmethod
    def unpack(cls, data: bytes) -> Entry:
        stream, _, rest = data.partition(b"\0")
        seq, digest, chain, kid, date_ms, source, offset = _FIXED.unpack_from(rest)
        return cls(stream.decode(), seq, digest, chain, kid.rstrip(b"\0").decode("utf-8", "replace"), date_ms,
                   rest[_FIXED.size:].decode("utf-8", "replace"), source, offset)  # an id cut at 64 bytes

    def same_record(self, other: Entry) -> bool:
        """The same digest, chain value, key id, date and event id (wherever each was read)."""
        return self[2:7] == other[2:7]


def _pack(stream: str, seq: int, digest: bytes, chain: bytes, key_id: str, date_ms: int, event_id: str,
          source: int = NO_SOURCE, offset: int = 0) -> bytes:
    return b"".join((stream.encode(), b"\0", _FIXED.pack(seq, digest, chain, key_id.encode()[:16], date_ms, source,
                                                          offset), event_id.encode()[:64]))


@dataclass(frozen=True)
class Source:
    """One input: `name` for messages, `path` to read (standard input is spooled to a file first),
    `whole` for a pretty-printed export read as one document."""

    name: str
    path: str
    size: int
    whole: bool = False


# -- records out of exports ----------------------------------------------------------------------
def _first(record: dict[str, Any], paths: tuple[tuple[str, ...], ...], kind: type) -> Any:
    """The first value at `paths` of type `kind` (never a bool), or None."""
    for path in paths:
        value = record.get(path[0])
        for part in path[1:]:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, kind) and value.__class__ is not bool:
            return value
    return None


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
    for name in DATE_FIELDS:
        value = record.get(name)
        if value.__class__ is int:
            return value  # type: ignore[no-any-return]
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
    return Entry(*_fields(record, chain_hex, lambda: hashlib.sha256(canonical.encode(record, source)).digest()))



Fields = tuple[str, int, bytes, bytes, str, int, str]  # an Entry's, up to where it was read


def _fields(record: dict[str, Any], chain_hex: Any, digest_of: Callable[[], bytes]) -> Fields:
    """The entry of a record without its chain field; `digest_of` runs only once the fields hold."""
    seq = _first(record, SEQ_PATHS, int)
    stream = record.get(STREAM_FIELD)
    try:
        chain = bytes.fromhex(chain_hex) if isinstance(chain_hex, str) else b""
    except ValueError:
        chain = b""
    if seq is None or not 0 < seq < 2**63 or not isinstance(stream, str) or len(chain) != 32 or "\0" in stream:
        raise Unreadable("a record with audit_chain but no valid audit_stream, sequence or chain value")
    digest = digest_of()
    event_id = _first(record, ID_PATHS, str) or ""
    key_id = record.get(KEY_ID_FIELD)
    date_ms = _date_ms(record)
    return (stream, seq, digest, chain, key_id if isinstance(key_id, str) else "",
            date_ms if -(2**63) <= date_ms < 2**63 else 0, event_id)


# The top-level fields an entry is made of (every path of SEQ_PATHS and ID_PATHS, DATE_FIELDS);
# decoding only these skips the rest of the line.
_Head = TypedDict("_Head", dict.fromkeys(  # type: ignore[misc]
    (CHAIN_FIELD, STREAM_FIELD, SEQ_FIELD, KEY_ID_FIELD, "event", "metadata", "siem_event_id", "EventOriginalUid",
     "id", *DATE_FIELDS), Any), total=False)
_head = msgspec.json.Decoder(_Head).decode
_NEWLINE = frozenset(b"\r\n")
# An escape RFC 8785 never writes: anything but \" \\ \b \f \n \r \t and \u0000..\u001f. (A literal
# backslash before a `u` matches too: that line only takes the long way.)
_FOREIGN_ESCAPE = re.compile(rb'\\(?:[^"\\bfnrtu]|u(?!00[01][0-9a-f]))')


def quick_fields(line: bytes) -> Fields | None:
    """A plain line as the shipper writes it: its entry, with the digest of its bytes as they
    stand (proven, or replaced, by the walk); None for anything else."""
    end = len(line)
    while end and line[end - 1] in _NEWLINE:
        end -= 1
    body = memoryview(line)[:end]  # no copy of the line
    if body[-2:] != b'"}' or body[-_SEAL_BYTES:-66] != SEAL_HEAD or body[:1] != b"{":
        return None
    if line.isascii() and b"\\" in line and _FOREIGN_ESCAPE.search(line):
        return None  # re-serialized (Fluent Bit writes \/ and \u00e9): the long way, here in the worker
    try:
        record: dict[str, Any] = _head(body)  # type: ignore[assignment]
    except (msgspec.DecodeError, RecursionError):
        return None
    digest = hashlib.sha256(body[:-_SEAL_BYTES])
    digest.update(b"}")
    try:
        return _fields(record, record.pop(CHAIN_FIELD, None), digest.digest)
    except Unreadable:
        return None


def quick_entry(line: bytes, source: int, offset: int) -> Entry | None:
    """quick_fields as an Entry read from `offset` of input `source`."""
    found = quick_fields(line)
    return None if found is None else Entry(*found, source, offset)


class Job(NamedTuple):
    """One worker task: the lines of input `source` that start in [start, end)."""

    source: int
    path: str
    start: int
    end: int
    whole: bool
    drop: tuple[str, ...]


def plan_jobs(sources: list[Source], drop: tuple[str, ...]) -> Iterator[Job]:
    for i, src in enumerate(sources):
        if src.whole:
            yield Job(i, src.path, 0, src.size, True, drop)
            continue
        for start in range(0, src.size, JOB_BYTES):
            yield Job(i, src.path, start, min(start + JOB_BYTES, src.size), False, drop)


def digest_range(job: Job) -> tuple[list[bytes], list[tuple[int, str]], int, int]:
    """Worker: (packed entries, unreadable lines as (line number in the range, reason), lines that
    held no record of ours, lines in the range)."""
    packed: list[bytes] = []
    bad: list[tuple[int, str]] = []
    foreign = number = 0
    with open(job.path, "rb") as fh:
        if job.whole:
            lines: Iterable[tuple[int, bytes]] = [(0, fh.read())]
        else:
            fh.seek(max(job.start - 1, 0))
            if job.start:
                fh.readline()  # the end of a line that started in the range before (or its newline)
            lines = _lines_from(fh, fh.tell(), job.end)
        for offset, line in lines:
            number += 1
            if not line.strip():
                continue
            if not (job.drop or job.whole) and (quick := quick_fields(line)) is not None:
                packed.append(_pack(*quick, job.source, offset))
                continue
            try:
                found = [entry_of(r, job.drop, src).pack() for r, src in records_in(canonical.parse(line), line)]
            except (msgspec.DecodeError, RecursionError, Unreadable, UnicodeError) as exc:
                bad.append((number, str(exc)[:80]))
                continue
            packed += found
            foreign += not found
    packed.sort()  # here, in parallel: the sort of a run then merges sorted slices
    return packed, bad, foreign, number


def _lines_from(fh: BinaryIO, pos: int, end: int) -> Iterator[tuple[int, bytes]]:
    while pos < end and (line := fh.readline()):
        yield pos, line
        pos += len(line)


class Rereader:
    """Reads a line again where the digest of its bytes did not link: its canonical digest decides.
    A line that no longer parses (invalid UTF-8, say) is listed in `unreadable`."""

    def __init__(self, sources: list[Source], drop: tuple[str, ...] = ()) -> None:
        self.sources, self.drop = sources, drop
        self.unreadable: list[str] = []
        self._open: tuple[int, BinaryIO] | None = None  # one handle at a time: inputs may be many

    def __call__(self, entry: Entry) -> Entry:
        if self._open is None or self._open[0] != entry.source:
            self.close()
            self._open = (entry.source, open(self.sources[entry.source].path, "rb"))  # noqa: SIM115 - close()
        fh = self._open[1]
        fh.seek(entry.offset)
        line = fh.readline()
        try:
            for record, src in records_in(canonical.parse(line), line):
                found = entry_of(record, self.drop, src)
                if (found.stream, found.seq) == (entry.stream, entry.seq):
                    return found
        except (msgspec.DecodeError, RecursionError, Unreadable, UnicodeError) as exc:
            self.unreadable.append(f"{self.sources[entry.source].name}: byte {entry.offset}: {str(exc)[:80]}")
        return entry._replace(source=NO_SOURCE)  # its own digest stands (and breaks)

    def close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None


# -- the external sort -----------------------------------------------------------------------------
class Sorter:
    """Sorts packed entries; spills sorted runs to temporary files beyond RUN_ENTRIES, and merges
    every FAN_IN runs of one size into one of the next, so that open runs, and what a merge holds
    of them, stay few however large the input."""

    def __init__(self, run_entries: int = RUN_ENTRIES) -> None:
        self.run_entries = run_entries
        self.pending: list[bytes] = []
        self.runs: list[_Run] = []

    def add(self, entries: Iterable[bytes]) -> None:
        self.pending.extend(entries)
        if len(self.pending) >= self.run_entries:
            self._spill()

    def _spill(self) -> None:
        self.pending.sort()
        self.runs.append(_write_run(self.pending, 0))
        self.pending = []
        level = 0
        while len(same := [r for r in self.runs if r.level == level]) >= FAN_IN:
            self.runs = [r for r in self.runs if r.level != level]
            self.runs.append(_write_run(_stream(same), level + 1))
            level += 1

    def merged(self) -> Iterator[bytes]:
        self.pending.sort()
        runs = sorted(self.runs, key=lambda r: r.first)
        if self.pending:
            runs.append(_Run(None, self.pending[0], self.pending[-1], 0, self.pending))
        return _stream(runs)


class _Run(NamedTuple):
    file: BinaryIO | None
    first: bytes
    last: bytes
    level: int  # 0: spilled; n: merged from FAN_IN runs of level n - 1
    entries: list[bytes] | None = None  # the unspilled rest, in memory

    def read(self) -> Iterator[bytes]:
        if self.entries is not None:
            return iter(self.entries)
        assert self.file is not None
        return _read_run(self.file)


def _stream(runs: list[_Run]) -> Iterator[bytes]:
    """The entries of sorted runs in order: chained when they follow one another (an export read
    in order), merged otherwise."""
    runs = sorted(runs, key=lambda r: r.first)
    if all(a.last <= b.first for a, b in itertools.pairwise(runs)):
        return itertools.chain.from_iterable(r.read() for r in runs)
    return heapq.merge(*(r.read() for r in runs))


def _write_run(entries: Iterable[bytes], level: int) -> _Run:
    run = tempfile.TemporaryFile()  # noqa: SIM115 - read back, and closed, by _read_run
    first = last = b""
    it = iter(entries)
    # Pickled in slices: written and read at C speed, and read back a slice at a time.
    while part := list(itertools.islice(it, RUN_SLICE)):
        pickle.dump(part, run, pickle.HIGHEST_PROTOCOL)
        first, last = first or part[0], part[-1]
    run.seek(0)
    return _Run(run, first, last, level)


def _read_run(run: BinaryIO) -> Iterator[bytes]:
    with run:
        while True:
            try:
                part: list[bytes] = pickle.load(run)  # noqa: S301 - a file this process wrote a moment ago
            except EOFError:
                return
            yield from part


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
    reread: int = 0  # lines whose bytes were not the shipper's canonical ones: digested again, canonically
    gaps: list[dict[str, Any]] = field(default_factory=list)
    breaks: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.gaps or self.breaks or self.conflicts)


Reread = Callable[[Entry], Entry]
# The walk reads a packed entry's fixed part in place: seq, digest and chain first; then the key
# id and date, which with the event id make two entries the same record (where each was read,
# source and offset, does not).
_CORE = struct.Struct(">Q32s32s")
_KID_AT, _DATE_AT = _CORE.size, _CORE.size + 16
_SOURCE_AT = _DATE_AT + 8
_DATE = struct.Struct(">q")
_SOURCE = struct.Struct(">i")


def check(entries: Iterator[bytes], keys: dict[str, ChainKey], default_key: ChainKey | None, *,
          partial: bool = False, expected: dict[str, int] | None = None,
          reread: Reread | None = None) -> list[StreamReport]:
    """Walk the sorted entries stream by stream. A stream must start at sequence 1 unless
    `partial`; `expected` (from the shipper's state) gives each stream's last sequence written,
    so records missing at the end, or a whole stream missing, are gaps too. `reread` gives the
    canonical entry of a line whose own bytes' digest is not proven (none: that digest stands)."""
    reports: list[StreamReport] = []
    walker: _Walk | None = None
    name = b""
    for data in entries:
        if walker is None or not data.startswith(name):  # `name` ends with the NUL after it
            if walker is not None:
                reports.append(walker.finish(expected))
            name = data[:data.index(b"\0") + 1]
            walker = _Walk(name[:-1].decode(), len(name), keys, default_key, partial, reread)
        walker.take(data)
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
    """One stream's entries, in sequence order, read in place (they are unpacked only to report)."""

    def __init__(self, stream: str, at: int, keys: dict[str, ChainKey], default_key: ChainKey | None, partial: bool,
                 reread: Reread | None) -> None:
        self.report = StreamReport(stream)
        self.at = at  # where the fixed part starts: after the stream's name and its NUL
        self.keys, self.key = keys, default_key
        self.partial = partial
        self.reread = reread
        self.prev: bytes | None = None
        self.prev_seq = 0
        self.prev_chain = b""
        self.prev_proven = False  # its digest linked: it is the canonical one

    def _date(self, data: bytes) -> str:
        return format_ms(_DATE.unpack_from(data, self.at + _DATE_AT)[0])

    def _same_record(self, a: bytes, b: bytes) -> bool:
        at = self.at
        return a[at:at + _SOURCE_AT] == b[at:at + _SOURCE_AT] and a[at + _FIXED.size:] == b[at + _FIXED.size:]

    def _canonical(self, data: bytes) -> bytes:
        if self.reread is None or _SOURCE.unpack_from(data, self.at + _SOURCE_AT)[0] == NO_SOURCE:
            return data
        self.report.reread += 1
        return self.reread(Entry.unpack(data)).pack()

    def take(self, data: bytes) -> None:
        r, prev = self.report, self.prev
        seq = _CORE.unpack_from(data, self.at)[0]
        if prev is not None and seq == self.prev_seq:
            if not self._same_record(data, prev):
                data = self._canonical(data)
                if not self.prev_proven:
                    prev = self.prev = self._canonical(prev)
            if self._same_record(data, prev):
                r.duplicates += 1
            else:
                ids = {Entry.unpack(prev).event_id, Entry.unpack(data).event_id}
                r.conflicts.append({"seq": seq, "event_ids": sorted(ids)})
            return
        r.records += 1
        if prev is None:
            r.first_seq, r.first_date = seq, self._date(data)
            if seq != 1 and self.partial:
                r.notes.append(f"starts at sequence {seq}: records before it are not in the input, so this first "
                               "record's own content cannot be proven (the chain proves the records after it)")
            elif seq != 1:
                r.gaps.append({"missing_from": 1, "missing_to": seq - 1, "after_date": "", "before_date": r.first_date})
        elif seq != self.prev_seq + 1:
            r.gaps.append({"missing_from": self.prev_seq + 1, "missing_to": seq - 1, "after_date": self._date(prev),
                           "before_date": self._date(data)})
        r.last_seq = seq  # its date is formatted once, at the end
        self.prev, self.prev_proven = self._link(data, seq, prev)
        self.prev_seq, self.prev_chain = seq, _CORE.unpack_from(self.prev, self.at)[2]

    def _link(self, data: bytes, seq: int, prev: bytes | None) -> tuple[bytes, bool]:
        """The entry, its digest made canonical where its bytes' did not link, and whether it
        linked; a break reported when it does not."""
        at = self.at
        if data[at + _KID_AT] != 0:  # a key id: the first record after a rotation
            key_id = Entry.unpack(data).key_id
            self.key = self.keys.get(key_id)
            if self.key is None:
                self._break(data, f"signed with key {key_id}, which was not given")
                return data, False
        if prev is not None and seq != self.prev_seq + 1:
            return data, False  # across a gap the link cannot be checked; the gap is reported
        before = GENESIS if prev is None and seq == 1 else (self.prev_chain if prev is not None else None)
        if before is None:
            return data, False
        _, digest, chain = _CORE.unpack_from(data, at)
        if self.key is None and self.keys:  # keys given: the chain is HMAC, never plain SHA-256
            self.key = next((k for k in self.keys.values() if link(before, digest, k.key) == chain), None)
            if self.key is None:
                data = self._canonical(data)
                _, digest, chain = _CORE.unpack_from(data, at)
                self.key = next((k for k in self.keys.values() if link(before, digest, k.key) == chain), None)
            if self.key is None:
                self._break(data, "no key given links this record (with --key-file every record must be signed)")
                return data, False
        key = self.key.key if self.key is not None else None
        if link(before, digest, key) == chain:
            return data, True  # the digest is the one chained: the bytes are the shipper's canonical bytes
        data = self._canonical(data)
        _, digest, chain = _CORE.unpack_from(data, at)
        if _SOURCE.unpack_from(data, at + _SOURCE_AT)[0] == NO_SOURCE and link(before, digest, key) == chain:
            return data, True
        self._break(data, "the chain value does not follow: the record or one before it was altered, or the wrong "
                          "key was given")
        return data, False

    def _break(self, data: bytes, reason: str) -> None:
        entry = Entry.unpack(data)
        self.report.breaks.append({"seq": entry.seq, "event_id": entry.event_id, "reason": reason})

    def finish(self, expected: dict[str, int] | None) -> StreamReport:
        if self.prev is not None:
            self.report.last_date = self._date(self.prev)
        last = (expected or {}).get(self.report.stream, 0)
        if last > self.report.last_seq:
            self.report.gaps.append({"missing_from": self.report.last_seq + 1, "missing_to": last,
                                     "after_date": self.report.last_date, "before_date": ""})
        return self.report


# -- driving it --------------------------------------------------------------------------------------
def digest_all(sources: list[Source], drop: tuple[str, ...], sorter: Sorter, workers: int | None = None,
               stopped: Callable[[], bool] = lambda: False) -> tuple[list[str], int]:
    """Digest every input into `sorter`, in worker processes when there are cores to spare:
    (unreadable lines as `name:line: reason`, lines that held no record of ours). `stopped` is
    polled while waiting: a stop signal ends the run with Stopped."""
    bad: list[str] = []
    foreign = 0
    lines_before = [0] * len(sources)  # per input: lines in the jobs already taken (they come in order)
    for job, (packed, errors, other, lines) in _results(list(plan_jobs(sources, drop)), workers, stopped):
        sorter.add(packed)
        name, base = sources[job.source].name, lines_before[job.source]
        bad += [f"{name}:{base + number}: {reason}" for number, reason in errors]
        lines_before[job.source] += lines
        foreign += other
    return bad, foreign


class Stopped(ShipperError):
    """A stop signal arrived before every input was read: nothing is proven."""


def _results(jobs: list[Job], workers: int | None, stopped: Callable[[], bool]) -> Iterator[tuple[Job, Any]]:
    """Each job with its result, in order. At most AHEAD_PER_WORKER jobs per worker are ahead of
    the one awaited: enough that workers never wait while this process sorts a run, few enough
    that results never pile up."""
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if workers <= 1:
        for job in jobs:
            if stopped():
                raise Stopped(STOPPED)
            yield job, digest_range(job)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=_worker_signals) as pool:
        ahead: deque[tuple[Job, Future[Any]]] = deque()
        pending = iter(jobs)
        try:
            for job in itertools.islice(pending, AHEAD_PER_WORKER * workers):
                ahead.append((job, pool.submit(digest_range, job)))
            while ahead:
                job, future = ahead.popleft()
                while not stopped():
                    try:
                        result = future.result(timeout=0.5)
                        break
                    except FutureTimeout:
                        continue
                    except BrokenProcessPool:
                        time.sleep(0.2)  # a signal to the process group reaches this process too
                        if stopped():
                            break
                        raise ShipperError("verify: a worker process died (killed, or out of memory?); nothing is "
                                           "proven; run verify again") from None
                else:
                    raise Stopped(STOPPED)
                if stopped():
                    raise Stopped(STOPPED)
                if (more := next(pending, None)) is not None:
                    ahead.append((more, pool.submit(digest_range, more)))
                yield job, result
        finally:
            for _, future in ahead:
                future.cancel()


STOPPED = "verify: stopped by a signal before every input was read; nothing is proven"


def _worker_signals() -> None:
    """Signals to the process group are the parent's to handle: it stops the run and lets the
    workers finish the job in hand (a worker killed mid-answer can leave the pool waiting)."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)

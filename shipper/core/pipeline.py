"""One page through the pipeline: raw events in, the NDJSON bytes to write and what they change out.

decode -> drop repeats -> filter -> tier -> reduce -> map -> encode (bounded). The pipeline is pure:
it reads the ledger's remembered ids but changes nothing; the engine commits what it returns once
the page is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import ConfigError
from ..filters import make_filter, make_reducer, make_tiering, reduce_payload
from ..models import AuditEvent, InvalidEvent, event_decoder
from ..output.encoder import LineEncoder
from ..proof import canonical
from ..proof.chain import CHAIN_PROTECTED, RESERVE_BYTES, Chainer, ChainKey
from ..schemas import SCHEMAS
from ..schemas.common import UNSET, Stamp
from ..store import ChainHead
from .ledger import id_hash

if TYPE_CHECKING:
    from ..config import Config


@dataclass(slots=True)
class PageOut:
    """What one page produced. Times are epoch ms of the oldest and newest decodable event."""

    data: bytearray = field(default_factory=bytearray)
    lines: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    new_ids: dict[int, int] = field(default_factory=dict)  # to remember once written
    quarantined: list[tuple[bytes, str]] = field(default_factory=list)
    duplicates: int = 0
    filtered: int = 0
    out_of_window: int = 0
    shrunk: int = 0
    unordered: bool = False  # an event older than the one before it
    fresh: int = 0  # events not met before in this chunk (progress, even when all were written before)
    heads: dict[str, ChainHead] = field(default_factory=dict)  # chain heads of the streams this page wrote to
    written: list[int] = field(default_factory=list)  # id hashes of the lines, in write order


def _reduced(event: AuditEvent, raw: msgspec.Raw, keep: list[str]) -> tuple[AuditEvent, msgspec.Raw]:
    """The event cut down to `keep` (the guide's field selection); id and date always survive."""
    doc = reduce_payload(msgspec.json.decode(raw), keep)
    doc.setdefault("id", event.id)
    doc.setdefault("eventDate", event.eventDate)
    small = msgspec.Raw(msgspec.json.encode(doc))
    return msgspec.json.decode(small, type=AuditEvent), small


def _quarantine_key(raw: msgspec.Raw) -> int:
    return id_hash(bytes(raw).decode("utf-8", "replace"))


class Pipeline:
    """Built once per org from its config; `process` runs once per page."""

    def __init__(self, cfg: Config, key: ChainKey | None = None, org: str = "") -> None:
        spec = SCHEMAS[cfg.output.schema]
        self.spec = spec
        self.mapper = spec.build(cfg)
        self.slim = spec.slim
        self.chainer: Chainer | None = None
        limit = cfg.output.max_line_bytes
        if cfg.output.chain != "off":
            if cfg.output.chain == "hmac-sha256" and key is None:
                raise ConfigError("output.chain is hmac-sha256: the key of output.chain_key_file is needed")
            self.chainer = Chainer(key if cfg.output.chain == "hmac-sha256" else None, org)
            limit -= RESERVE_BYTES  # room for the chain fields
        self.org_stamp = Stamp(org=org) if org and self.chainer is None else None
        self.encoder = LineEncoder(limit, spec.protected | CHAIN_PROTECTED)
        # Hooks nobody configured cost nothing per event.
        filters, routing = cfg.filters, cfg.routing
        self.keep: Callable[[Any], bool] | None = make_filter(filters) if filters.include or filters.exclude else None
        self.tier_of: Callable[[Any], str] | None = (make_tiering(routing.tiers, routing.default_tier)
                                                     if routing.tiers else None)
        self.reduce_for = make_reducer(cfg.output.reduce) if cfg.output.reduce else None
        self.default_tier = routing.default_tier

    def process(self, raws: list[msgspec.Raw], seen: Mapping[int, int], floor_ms: int, now_ms: int,
                chunk: set[int] | None = None, heads: Mapping[str, ChainHead] | None = None) -> PageOut:
        """Map a page. Ids in `seen` or already in this page are repeats; an event dated before
        `floor_ms` (the recheck position) cannot be told from a repeat and is dropped as one.
        Quarantined events are remembered at `now_ms` so a re-read does not report them twice.
        `chunk` collects every id met in the current chunk, to count what is fresh; `heads` are the
        chain heads the page continues."""
        out = PageOut()
        page, new, quarantined = out.data, out.new_ids, out.quarantined
        decode = event_decoder(self.slim)
        keep, tier_of, reduce_for, mapper = self.keep, self.tier_of, self.reduce_for, self.mapper
        encode_into, too_long = self.encoder.encode_into, self.encoder.max_line_bytes - 1
        default_tier = self.default_tier
        first = last = prev = None
        lines = 0
        met = set() if chunk is None else chunk
        before = len(met)
        chainer, written = self.chainer, out.written
        for raw in raws:
            try:
                event, ts = decode(raw)
            except InvalidEvent as exc:
                key = _quarantine_key(raw)
                met.add(key)
                if key not in seen and key not in new:  # a re-read must not quarantine it twice
                    new[key] = now_ms
                    quarantined.append((bytes(raw), str(exc)))
                continue
            if ts != prev:  # bulk operations share a millisecond: only a new time can move the marks
                if prev is not None and ts < prev:
                    out.unordered = True
                prev = ts
                if last is None or ts > last:
                    last = ts
                if first is None or ts < first:
                    first = ts
            if ts < floor_ms:
                out.out_of_window += 1
                continue
            h = id_hash(event.id)
            met.add(h)
            if h in seen or h in new:
                out.duplicates += 1
                continue
            new[h] = ts
            if keep is not None and not keep(event):
                out.filtered += 1
                continue
            tier = tier_of(event) if tier_of is not None else default_tier  # from the whole event
            start = len(page)
            try:
                if reduce_for is not None and (paths := reduce_for(event)) is not None:
                    event, raw = _reduced(event, raw, paths)
                if chainer is not None:
                    self._seal_into(page, event, raw, tier, out, heads or {})  # sized before sealing
                else:
                    record = mapper(event, raw, tier)
                    if self.org_stamp is not None:
                        record = self.spec.stamp(record, self.org_stamp)
                    encode_into(record, page, -1)  # appended in place: no per-line bytes
            except (ValueError, TypeError, msgspec.EncodeError, RecursionError) as exc:
                del page[start:]
                quarantined.append((bytes(raw), f"cannot map: {type(exc).__name__}: {str(exc)[:200]}"))
                continue
            if chainer is None and len(page) - start > too_long:
                line = self.encoder.fit(bytes(page[start:]))
                del page[start:]
                page += line
                out.shrunk += 1
            written.append(h)
            page.append(10)
            lines += 1
        out.lines, out.first_ms, out.last_ms, out.fresh = lines, first, last, len(met) - before
        return out

    def _seal_into(self, page: bytearray, event: Any, raw: msgspec.Raw, tier: str, out: PageOut,
                   heads: Mapping[str, ChainHead]) -> None:
        """Append the record as a sealed line: stamped, in canonical JSON, its stream's chain
        continued."""
        assert self.chainer is not None
        spec, stream = self.spec, self.chainer.stream(tier)
        head = out.heads.get(stream) or heads.get(stream)
        stamp = self.chainer.stamp(tier, head)
        original = canonical.payload(raw) if spec.embeds_event else raw
        record = spec.stamp(self.mapper(event, original, tier), stamp)
        if spec.typed and event.data is UNSET and not canonical.sort_matters(raw):
            body = canonical.fast(record)  # typed all the way down: msgspec writes it canonical
        else:
            body = canonical.canonical(self.encoder.raw_encode(record))
        if len(body) > self.encoder.max_line_bytes - 1:
            body = canonical.canonical(self.encoder.fit(body))
            out.shrunk += 1
        out.heads[stream] = self.chainer.seal_into(page, body, stamp, head)

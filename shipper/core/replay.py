"""Writing the last pages again at start (`output.replay_on_start`), byte for byte.

A host agent killed with -9 may lose the lines it had read from the pipe but not yet stored, after
the shipper's checkpoint had moved past them. Started fresh, the shipper cannot know what was lost,
so it reads the events of its last written pages back from the API and writes them again. They
must come out exactly as before (same sequence numbers and chain values, checked against the
SHA-256 the state kept of each page), so the SIEM's id-based dedupe, or `verify`, sees a harmless
identical repeat. If the API no longer returns exactly those events, nothing is written again.
"""

from __future__ import annotations

import hashlib

import msgspec

from .. import logs
from ..errors import ApiError, OutputError
from ..lifecycle import Lifecycle
from ..models import InvalidEvent, event_decoder
from ..output.writer import Writer
from ..sources import Source
from ..sources.base import ReadProgress
from ..store import ChainHead, ReplayPage
from .ledger import id_hash, unpack_ids
from .pipeline import Pipeline

NO_FLOOR = -(2**62)


def keep_last(pages: list[ReplayPage], events: int) -> list[ReplayPage]:
    """The newest pages that hold at least `events` ids (fewer when fewer were written)."""
    kept: list[ReplayPage] = []
    total = 0
    for page in reversed(pages):
        if total >= events:
            break
        kept.append(page)
        total += len(page.ids) // 8
    return kept[::-1]


def _events(source: Source, page: ReplayPage, slim: bool) -> list[msgspec.Raw] | None:
    """The page's events, in its write order, read back from the API; None if any is missing."""
    wanted = unpack_ids(page.ids)
    found: dict[int, msgspec.Raw] = {}
    decode = event_decoder(slim)
    for raws in source.pages(page.first_ms, page.last_ms + 1, ReadProgress()):
        for raw in raws:
            try:
                h = id_hash(decode(raw)[0].id)
            except InvalidEvent:
                continue
            found.setdefault(h, raw)
    if any(h not in found for h in wanted):
        return None
    return [found[h] for h in wanted]


def rebuild(pages: list[ReplayPage], source: Source, pipeline: Pipeline) -> tuple[list[bytes], str]:
    """The pages' bytes again, or ([], why not)."""
    heads: dict[str, ChainHead] = {}
    out: list[bytes] = []
    for page in pages:
        raws = _events(source, page, pipeline.slim)
        if raws is None:
            return [], "the API no longer returns every event of the last written page"
        for stream, head in page.heads_before.items():
            heads.setdefault(stream, head)
        result = pipeline.process(raws, {}, NO_FLOOR, 0, None, heads)
        if hashlib.sha256(result.data).digest() != page.digest:
            return [], "the events read back do not give the same bytes as before"
        heads.update(result.heads)
        out.append(bytes(result.data))
    return out, ""


def write_again(pages: list[ReplayPage], events: int, source: Source, pipeline: Pipeline, writer: Writer,
                lifecycle: Lifecycle, org: str) -> None:
    """Write the last `events` lines of `pages` again if the pages come out byte for byte as
    before; otherwise say why not."""
    if not pages or events <= 0:
        return
    try:
        data, why = rebuild(pages, source, pipeline)
    except (ApiError, OutputError) as exc:
        data, why = [], str(exc)
    if not data:
        logs.warning("replay at start skipped; those events were written once already", reason=why, org=org or None)
        return
    lines = b"".join(data).splitlines(keepends=True)[-events:]
    with lifecycle.commit_lock:
        writer.write(b"".join(lines))
    logs.info("wrote the last events again, byte for byte, for a host agent that may have lost them",
              events=len(lines), org=org or None)

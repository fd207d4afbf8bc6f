"""The `verify` verb: prove (or disprove) that an export of the SIEM holds every record, unaltered."""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Any, BinaryIO

import msgspec

from ..app import build_store
from ..core.ledger import fold
from ..errors import ConfigError
from ..lifecycle import Lifecycle
from ..orgs import load_deployment
from ..proof.chain import ChainKey, load_key
from ..proof.verify import Rereader, Sorter, Source, StreamReport, check, digest_all
from .report import emit

EXIT_NOT_PROVEN = 1
EXIT_UNREADABLE = 2


@contextmanager
def _sources(paths: list[str]) -> Iterator[list[Source]]:
    """The inputs, each checked readable. Standard input, and anything else that is not a regular
    file (a pipe, a process substitution), is spooled to a temporary file first: workers read the
    inputs in ranges, and a line may be read again."""
    sources: list[Source] = []
    with ExitStack() as stack:
        for path in paths:
            try:
                with (nullcontext(sys.stdin.buffer) if path == "-" else open(path, "rb")) as fh:
                    read_from = path
                    if path == "-" or not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                        read_from = _spool(fh, path, stack)
            except OSError as exc:
                raise ConfigError(f"verify: cannot read {path!r} ({exc.strerror}); give an existing file") from None
            with open(read_from, "rb") as data:  # closed again: the workers open what they read
                size = os.fstat(data.fileno()).st_size
                whole = bool(size) and _single_document(data)
            sources.append(Source("<stdin>" if path == "-" else path, read_from, size, whole))
        yield sources


def _spool(fh: BinaryIO, path: str, stack: ExitStack) -> str:
    """A copy of a stream in a temporary file (removed when `stack` closes)."""
    spool = stack.enter_context(tempfile.NamedTemporaryFile(prefix="gas-verify-"))  # noqa: SIM115 - the stack closes it
    try:
        shutil.copyfileobj(fh, spool, 1 << 20)
        spool.flush()
    except OSError as exc:
        if exc.filename is not None or exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise ConfigError(f"verify: cannot copy {path!r} to {tempfile.gettempdir()} ({exc.strerror}): standard "
                          "input and pipes are copied to a temporary file first; set TMPDIR to a disk with room for "
                          "the export, or give the export as a file") from None
    return spool.name


def _single_document(fh: BinaryIO) -> bool:
    """True for a pretty-printed export (one JSON document over many lines), such as an Elastic
    search answer saved whole; the file is then read as one document."""
    first = fh.readline()
    try:
        msgspec.json.decode(first)
    except msgspec.DecodeError:
        return first.strip() in (b"{", b"[")
    return False


def _keys(files: list[str]) -> dict[str, ChainKey]:
    keys = [load_key(f, "--key-file") for f in files]
    return {k.kid: k for k in keys}


def _render(reports: list[StreamReport], bad: list[str], foreign: int) -> str:
    out = []
    for r in reports:
        out.append(f"stream {r.stream}: {'OK' if r.ok else 'NOT PROVEN'}  records {r.records}  sequence "
                   f"{r.first_seq}..{r.last_seq}  {r.first_date} .. {r.last_date}  identical repeats {r.duplicates}")
        out += [f"  gap: sequence {g['missing_from']}..{g['missing_to']} missing, between {g['after_date']} and "
                f"{g['before_date']}" for g in r.gaps]
        out += [f"  break at sequence {b['seq']} (event {b['event_id'] or '?'}): {b['reason']}" for b in r.breaks]
        out += [f"  conflict at sequence {c['seq']}: different records share it (events {', '.join(c['event_ids'])})"
                for c in r.conflicts]
        out += [f"  note: {n}" for n in r.notes]
    if foreign:
        out.append(f"{foreign} line(s) held no record of this shipper (no audit_chain) and were skipped")
    out += [f"unreadable: {b}" for b in bad[:20]]
    if not reports:
        out.append("no chained records found: was output.chain off, or is this the right export?")
    return "\n".join(out)


def _expected(config: str | None) -> dict[str, int] | None:
    """The last sequence the shipper wrote per stream, from its states (so a missing tail shows)."""
    if config is None:
        return None
    heads: dict[str, int] = {}
    for org in load_deployment(config).orgs:
        stored = build_store(org.cfg).load()
        if stored is not None:
            heads.update({s: h.seq for s, h in fold(stored, org.cfg.state.path).chains.items()})
    if not heads:
        raise ConfigError(f"verify --config: the state of {config!r} holds no chain yet; run the shipper first")
    return heads


def cmd_verify(args: argparse.Namespace, lifecycle: Lifecycle) -> int:
    keys = _keys(args.key_file or [])
    default = next(iter(keys.values())) if len(keys) == 1 else None
    expected = _expected(args.config)
    drop = tuple(args.drop or ())
    with _sources(args.files or ["-"]) as sources:
        sorter = Sorter()
        bad, foreign = digest_all(sources, drop, sorter, stopped=lifecycle.stop.is_set)
        reread = Rereader(sources, drop)
        try:
            reports = check(sorter.merged(), keys, default, partial=args.partial, expected=expected, reread=reread)
        finally:
            reread.close()
        bad += reread.unreadable
    if args.json:
        doc: dict[str, Any] = {"ok": bool(reports) and all(r.ok for r in reports) and not bad,
                               "streams": reports, "unreadable": bad, "foreign_lines": foreign}
        emit(msgspec.json.encode(doc).decode())
    else:
        emit(_render(reports, bad, foreign))
    if bad:
        return EXIT_UNREADABLE
    return 0 if reports and all(r.ok for r in reports) else EXIT_NOT_PROVEN


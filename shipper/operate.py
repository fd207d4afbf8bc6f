"""Operator verbs: check, status, backfill, services."""

from __future__ import annotations

import argparse
import hashlib
import sys
import threading
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import msgspec

from .errors import ApiError, AuthError, ConfigError, LockHeldError, ShipperError, StateError

MAX_SKEW_S = 60.0


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _step(name: str, ok: bool, detail: str) -> bool:
    print(f"{'ok  ' if ok else 'FAIL'}  {name}: {detail}", flush=True)
    return ok


def cmd_check(args: argparse.Namespace) -> int:
    from .checkpoint import CheckpointStore
    from .cli import build_client
    from .config import load_config
    from .sources import build_source

    cfg = load_config(args.config)
    _step("config", True, f"{args.config} (api {cfg.api_base}, login {cfg.login_base}, source {cfg.genesys.api})")
    client = build_client(cfg, threading.Event(), max_retries=2)
    tokens = client.tokens
    assert tokens is not None
    ok = True
    token_ok = False
    try:
        tokens.check()
        token_ok = _step("token", True, "client credentials accepted")
    except AuthError as exc:
        ok = _step("token", False, str(exc).split(": ", 1)[-1])
    except ShipperError as exc:
        ok = _step("token", False, f"login service unreachable or failing: {exc}")
    if token_ok:
        try:
            got = build_source(cfg, client).probe()
            _step("permission", True, f"audit query works ({got} event(s) in the last hour)")
        except ApiError as exc:
            if exc.status == 403:
                ok = _step("permission", False, "403: the OAuth client's role lacks audits:audit:view; add it")
            else:
                ok = _step("permission", False, str(exc))
    store = CheckpointStore(cfg.state.path)
    try:
        state = store.load()
        where = "no state yet (first run starts at poll.start_from)" if state is None else "readable"
        if store.is_locked_elsewhere():
            where += ", lock held by a running instance"
        else:
            where += ", lock free"
        if store.writable():
            _step("state", True, f"{store.path}: {where}")
        else:
            ok = _step("state", False, f"{store.path}: {where}, but this user cannot write it or its lock; "
                       "run as the daemon's user or fix the directory's owner")
    except (StateError, LockHeldError) as exc:
        ok = _step("state", False, str(exc))
    if client.last_server_date:
        try:
            skew = time.time() - parsedate_to_datetime(client.last_server_date).timestamp()
            good = abs(skew) <= MAX_SKEW_S
            ok &= _step("clock", good, f"skew {skew:+.1f}s against the server's Date header"
                        + ("" if good else f" (more than {MAX_SKEW_S:.0f}s: fix NTP on this host)"))
        except (TypeError, ValueError):
            ok &= _step("clock", False, f"cannot parse the server's Date header {client.last_server_date!r}")
    else:
        ok &= _step("clock", False, "no answer from the server to compare clocks with")
    return 0 if ok else 1


def _iso_ms(ms: int | None) -> str | None:
    from .models import format_ms

    return format_ms(ms) if ms is not None else None


def cmd_status(args: argparse.Namespace) -> int:
    from .checkpoint import CheckpointStore
    from .config import load_config
    from .window import Ledger

    cfg = load_config(args.config)
    store = CheckpointStore(cfg.state.path)
    state = store.load()
    locked = store.is_locked_elsewhere()
    now_ms = int(time.time() * 1000)
    doc: dict[str, Any] = {"state_file": str(store.path), "locked_by_other_instance": locked}
    if state is None or state.frontier_ms is None:
        doc.update(position=None, lag_seconds=None, note="no state yet: the first run starts at poll.start_from")
    else:
        doc.update(
            position=_iso_ms(state.frontier_ms),
            lag_seconds=round((now_ms - state.frontier_ms) / 1000, 1),
            recheck_position=_iso_ms(state.recheck_ms),
            pending_late_window_ids=len(Ledger.unpack_seen(state.seen)),
            events_emitted=state.emitted,
            quarantined=state.quarantined,
            gaps_reported=state.gaps,
            last_success=state.last_success,
            last_error=state.last_error,
            last_error_at=state.last_error_at,
            last_health_probe=state.last_health,
            updated_at=state.updated_at,
        )
    if args.json:
        sys.stdout.buffer.write(msgspec.json.encode(doc) + b"\n")
    else:
        for key, value in doc.items():
            print(f"{key.replace('_', ' '):<26} {'-' if value is None else value}")
    return 0


def backfill_state_path(state_path: str, start: str, end: str) -> str:
    """Keyed by the arguments as written, so rerunning the same command (even `--from 7d`) resumes."""
    tag = hashlib.sha256(f"{start}\0{end}".encode()).hexdigest()[:10]
    return f"{state_path}.backfill-{tag}.json"


def cmd_backfill(args: argparse.Namespace) -> int:
    from .cli import STOP, build_engine
    from .config import load_config, resolve_start

    cfg = load_config(args.config)
    now = _now()
    try:
        start = resolve_start(args.start, now)
        end = resolve_start(args.end, now)
    except ValueError:
        raise ConfigError(
            f"--from {args.start!r} / --to {args.end!r}: use ISO-8601 times or lookbacks such as 7d"
        ) from None
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    if end_ms <= start_ms:
        raise ConfigError(f"--to must be after --from (got {args.start!r} .. {args.end!r})")
    path = args.backfill_state or backfill_state_path(cfg.state.path, args.start, args.end)
    if Path(path).absolute() == Path(cfg.state.path).absolute():
        raise ConfigError("--state must not be the live state.path: backfill never touches the live checkpoint")
    engine = build_engine(cfg, STOP, state_path=path, progress=True)
    engine.load(start_ms=start_ms)
    engine.backfill(end_ms)
    return 0




def cmd_services(args: argparse.Namespace) -> int:
    from .cli import build_client
    from .config import load_config
    from .models import ServiceMapping

    cfg = load_config(args.config)
    client = build_client(cfg, threading.Event())
    # The realtime API has its own mapping; the guide's contract defines none, so events-cursor uses the query API's.
    path = "audits/query/realtime/servicemapping" if cfg.genesys.api == "audits-realtime" else "audits/query/servicemapping"
    mapping: ServiceMapping = client.request(
        "GET", f"{cfg.api_base}/api/v2/{path}", decode=ServiceMapping, what="service mapping"
    )
    rows = [(s.name, e.name, ", ".join(e.actions)) for s in mapping.services for e in s.entities]
    w1 = max([len("service"), *(len(r[0]) for r in rows)])
    w2 = max([len("entity_type"), *(len(r[1]) for r in rows)])
    print(f"{'service':<{w1}}  {'entity_type':<{w2}}  actions")
    for a, b, c in rows:
        print(f"{a:<{w1}}  {b:<{w2}}  {c}")
    return 0

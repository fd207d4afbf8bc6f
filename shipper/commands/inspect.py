"""The verbs that look but do not ship: check, status, services."""

from __future__ import annotations

import argparse
import time
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec

from ..app import Store, build_client
from ..config import Config
from ..core.ledger import fold, unpack_seen
from ..errors import ApiError, AuthError, LockHeldError, ShipperError, StateError
from ..lifecycle import Lifecycle
from ..models import ServiceMapping, format_ms
from ..orgs import load_deployment
from ..sources import SOURCES, build_source
from ..store import State
from ..store.etcd import EtcdStore
from ..store.file import FileStore
from .report import emit, step
from .state import check_etcd, etcd_status, reader, store_of

MAX_SKEW_S = 60.0


def _check_api(cfg: Config, lifecycle: Lifecycle) -> tuple[bool, str | None]:
    """Token and permission; returns (ok, the server's Date header)."""
    client, tokens = build_client(cfg, lifecycle, max_retries=2)
    ok = True
    try:
        tokens.check()
    except AuthError as exc:
        return step("token", False, str(exc).split(": ", 1)[-1]), client.last_server_date
    except ShipperError as exc:
        return step("token", False, f"login service unreachable or failing: {exc}"), client.last_server_date
    step("token", True, "client credentials accepted")
    try:
        got = build_source(cfg, client).probe()
        step("permission", True, f"audit query works ({got} event(s) in the last hour)")
    except ApiError as exc:
        if exc.status == 403:
            ok = step("permission", False, "403: the OAuth client's role lacks audits:audit:view; add it")
        else:
            ok = step("permission", False, str(exc))
    return ok, client.last_server_date


def _check_state(cfg: Config, store: Store) -> bool:
    if cfg.state.backend == "etcd":
        return step("state", *check_etcd(cfg))
    assert isinstance(store, FileStore)
    try:
        stored = store.load()
        where = "no state yet (first run starts at poll.start_from)" if stored is None else "readable"
        where += ", lock held by a running instance" if store.is_locked_elsewhere() else ", lock free"
        if store.writable():
            return step("state", True, f"{store.path}: {where}")
        return step("state", False, f"{store.path}: {where}, but this user cannot write it or its lock; "
                     "run as the daemon's user or fix the directory's owner")
    except (StateError, LockHeldError) as exc:
        return step("state", False, str(exc))


def _check_clock(server_date: str | None) -> bool:
    if not server_date:
        return step("clock", False, "no answer from the server to compare clocks with")
    try:
        skew = time.time() - parsedate_to_datetime(server_date).timestamp()
    except (TypeError, ValueError, IndexError):
        return step("clock", False, "cannot parse the server's Date header")
    good = abs(skew) <= MAX_SKEW_S
    return step("clock", good, f"skew {skew:+.1f}s against the server's Date header"
                 + ("" if good else f" (more than {MAX_SKEW_S:.0f}s: fix NTP on this host)"))


def cmd_check(args: argparse.Namespace, lifecycle: Lifecycle) -> int:
    dep = load_deployment(args.config)
    co = reader(dep)
    ok = True
    for org in dep.org(args.org):
        cfg = org.cfg
        if dep.named:
            emit(f"-- org {org.name}")
        step("config", True, f"{args.config} (api {cfg.api_base}, login {cfg.login_base}, source {cfg.genesys.api})")
        api_ok, server_date = _check_api(cfg, lifecycle)
        ok &= api_ok
        ok &= _check_state(cfg, store_of(cfg, org.name, co))
        ok &= _check_clock(server_date)
    return 0 if ok else 1


def _iso_ms(ms: int | None) -> str | None:
    return format_ms(ms) if ms is not None else None


def status_doc(store: Store) -> dict[str, Any]:
    stored = store.load()
    state: State | None = fold(stored, store.where) if stored is not None else None
    doc: dict[str, Any] = {"state_file": store.where, "locked_by_other_instance": store.is_locked_elsewhere()}
    if isinstance(store, EtcdStore):
        doc.update(etcd_status(store))
    if state is None or state.frontier_ms is None:
        doc.update(position=None, lag_seconds=None, note="no state yet: the first run starts at poll.start_from")
        return doc
    try:
        pending = len(unpack_seen(state.seen))
    except ValueError as exc:
        raise StateError(f"state file {store.where!r} is corrupt ({exc})") from None
    doc.update(
        position=_iso_ms(state.frontier_ms),
        lag_seconds=round((time.time() * 1000 - state.frontier_ms) / 1000, 1),
        recheck_position=_iso_ms(state.recheck_ms),
        pending_late_window_ids=pending,
        events_emitted=state.emitted,
        quarantined=state.quarantined,
        gaps_reported=state.gaps,
        last_success=state.last_success,
        last_error=state.last_error,
        last_error_at=state.last_error_at,
        last_health_probe=state.last_health,
        updated_at=state.updated_at,
    )
    return doc


STATUS_COLUMNS = ("org", "position", "lag_seconds", "events_emitted", "quarantined", "gaps_reported",
                  "last_success", "last_error", "locked_by_other_instance")


def cmd_status(args: argparse.Namespace, lifecycle: Lifecycle) -> int:
    dep = load_deployment(args.config)
    co = reader(dep)
    docs = [{"org": org.name, **status_doc(store_of(org.cfg, org.name, co))} for org in dep.org(args.org)]
    if not dep.named:
        doc = docs[0]
        doc.pop("org")
        if args.json:
            emit(msgspec.json.encode(doc).decode())
        else:
            for key, value in doc.items():
                emit(f"{key.replace('_', ' '):<26} {'-' if value is None else value}")
        return 0
    if args.json:
        emit(msgspec.json.encode(docs).decode())
        return 0
    columns = STATUS_COLUMNS + (("leader", "leader_lease_seconds_left") if "members" in docs[0] else ())
    rows = [[str("-" if d.get(c) is None else d.get(c)) for c in columns] for d in docs]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    emit("  ".join(c.replace("_", " ").ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in rows:
        emit("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_services(args: argparse.Namespace, lifecycle: Lifecycle) -> int:
    cfg = load_deployment(args.config).org(args.org)[0].cfg
    client, _ = build_client(cfg, lifecycle)
    path = SOURCES[cfg.genesys.api].service_mapping_path
    mapping: ServiceMapping = client.request(
        "GET", f"{cfg.api_base}/api/v2/{path}", decode=ServiceMapping, what="service mapping"
    )
    rows = [(s.name, e.name, ", ".join(e.actions)) for s in mapping.services for e in s.entities]
    w1 = max([len("service"), *(len(r[0]) for r in rows)])
    w2 = max([len("entity_type"), *(len(r[1]) for r in rows)])
    emit(f"{'service':<{w1}}  {'entity_type':<{w2}}  actions")
    for a, b, c in rows:
        emit(f"{a:<{w1}}  {b:<{w2}}  {c}")
    return 0

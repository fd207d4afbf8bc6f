"""State backends seen from the command line: etcd's part of `status` and `check`, and
`migrate-state`, which moves an org's checkpoint from the file backend into etcd or back."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..app import Store, build_store
from ..config import Config
from ..core.ledger import fold
from ..errors import ConfigError, LockHeldError, StateError
from ..lifecycle import Lifecycle
from ..orgs import Deployment, load_deployment
from ..store.etcd import Coordinator, EtcdStore
from ..store.etcd_gateway import EtcdUnavailable, delete, put
from ..store.file import FileStore
from .report import emit


def reader(dep: Deployment) -> Coordinator | None:
    """A coordinator that reads etcd without joining (no lease, no leadership)."""
    return Coordinator(dep.defaults.state.etcd, dep.org_names) if dep.defaults.state.backend == "etcd" else None


def store_of(cfg: Config, name: str, co: Coordinator | None) -> Store:
    return build_store(cfg, org=name, coordinator=co)


def etcd_status(store: EtcdStore) -> dict[str, Any]:
    store.co._refresh_members()  # noqa: SLF001 - a read of who is alive
    leader = store.leader()
    return {"leader": leader[0] if leader else None, "leader_lease_seconds_left": leader[1] if leader else None,
            "members": store.co.members}


def check_etcd(cfg: Config) -> tuple[bool, str]:
    """etcd answers, accepts our credentials, and lets us write under the prefix."""
    co = Coordinator(cfg.state.etcd, [])
    probe = f"{co.prefix}check/{co.member}"
    try:
        co.gateway.authenticate()
        members = len(co.gateway.range(f"{co.prefix}members/", prefix=True))
        co.gateway.txn([], [put(probe, str(time.time()))])
        co.gateway.txn([], [delete(probe)])
    except EtcdUnavailable as exc:
        return False, str(exc)
    where = ", ".join(cfg.state.etcd.endpoints)
    return True, f"{where}: reachable, can write under {co.prefix} ({members} collector(s) live)"


def cmd_migrate(args: argparse.Namespace, lifecycle: Lifecycle) -> int:
    dep = load_deployment(args.config)
    co = Coordinator(dep.defaults.state.etcd, dep.org_names)
    try:
        for org in dep.org(args.org):
            name = org.name or "default"
            file_store = FileStore(org.cfg.state.path)
            etcd_store = EtcdStore(co, org.name)
            source, target = (file_store, etcd_store) if args.to == "etcd" else (etcd_store, file_store)
            _migrate(name, source, target, args.force)
    finally:
        co.stop()
    return 0


def _migrate(name: str, source: Store, target: Store, force: bool) -> None:
    stored = source.load()
    if stored is None:
        emit(f"{name}: nothing to move: {source.where} holds no state")
        return
    state = fold(stored, source.where)
    try:
        target.acquire()
    except LockHeldError as exc:
        raise StateError(f"migrate-state {name}: {exc}; stop every collector first") from None
    try:
        if target.load() is not None and not force:
            raise ConfigError(f"migrate-state {name}: {target.where} already holds a state; pass --force to replace it")
        target.compact(state)
    finally:
        target.release()
    emit(f"{name}: moved the state from {source.where} to {target.where} (position {state.frontier_ms}); "
         f"point state.backend at it and remove the old one when the collectors run")

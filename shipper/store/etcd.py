"""The etcd backend: several collectors run the same config; for each org exactly one of them, the
leader, ships and writes its checkpoint.

Keys under `state.etcd.prefix` (P):
- P/members/<member>           one per collector, bound to its lease: who is alive
- P/orgs/<org>/leader          the org's leader (a member id), bound to the leader's lease
- P/orgs/<org>/meta            {"gen", "parts"}: the snapshot generation
- P/orgs/<org>/snap/<gen>/<n>  the snapshot (the file backend's JSON), in parts under etcd's size limit
- P/orgs/<org>/journal/<gen>/<n>  one commit (a Delta) per page: O(page), as with the file backend

Fencing: every write is one transaction that succeeds only while the org's leader key still holds
this collector's id at the create revision it won it with; the key is bound to the lease, so it is
gone once the lease expires. And no page is written unless the last keepalive is recent enough to
prove the lease alive (two thirds of its TTL). A failed write means leadership is lost: the worker
stops writing the org at once and stands by.

Orgs are shared out evenly: every collector computes the same assignment from the live members
(a capacity-bounded rendezvous hash), campaigns only for its own orgs, and hands an org over when
the assignment moves it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from .. import logs
from ..config import EtcdConfig
from ..errors import LeadershipLost, LockHeldError, StateError
from . import Delta, State, Stored
from .etcd_gateway import EtcdUnavailable, Gateway, b64, delete, put, same_create, same_value, unb64
from .file import COMPACT_MIN_BYTES, COMPACT_RATIO, decode_snapshot

PART_BYTES = 512 * 1024  # etcd refuses requests over 1.5 MiB by default
MAX_PARTS = 100  # 50 MiB: a bound on what one load reads back
_delta_encoder = msgspec.msgpack.Encoder()
_delta_decoder = msgspec.msgpack.Decoder(Delta)
_state_encoder = msgspec.json.Encoder()


def assign(orgs: list[str], members: list[str]) -> dict[str, str]:
    """Which member leads which org: each org goes to the member ranked first for it (rendezvous
    hashing) that still has room, so the shares differ by at most one and few orgs move when a
    member comes or goes."""
    if not members:
        return {}
    room = math.ceil(len(orgs) / len(members))
    load = dict.fromkeys(members, 0)
    out: dict[str, str] = {}
    for org in sorted(orgs):
        ranked = sorted(members, key=lambda m: hashlib.sha256(f"{org}\0{m}".encode()).digest())
        chosen = next(m for m in ranked if load[m] < room)
        load[chosen] += 1
        out[org] = chosen
    return out


class Coordinator:
    """This collector's membership: one lease, kept alive by a thread, and the live members."""

    def __init__(self, cfg: EtcdConfig, orgs: list[str], gateway: Gateway | None = None) -> None:
        self.cfg = cfg
        self.prefix = cfg.prefix if cfg.prefix.endswith("/") else cfg.prefix + "/"
        self.orgs = orgs
        self.gateway = gateway or Gateway(cfg)
        self.member = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.ttl = int(cfg.lease_ttl)
        self.lease = 0
        self.last_ok = 0.0
        self.members: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False

    # -- membership ---------------------------------------------------------------------------
    def start(self) -> None:
        """Register (or register again after the lease expired); raises EtcdUnavailable."""
        with self._lock:
            if self.lease and self.lease_alive():
                return
            self.gateway.authenticate()
            lease = self.gateway.grant(self.ttl)
            info = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()})
            self.gateway.txn([], [put(f"{self.prefix}members/{self.member}", info, lease)])
            self.lease, self.last_ok = lease, time.monotonic()
            self._refresh_members()
        if self._thread is None:
            self._thread = threading.Thread(target=self._keep_alive, name="etcd-keepalive", daemon=True)
            self._thread.start()

    def _keep_alive(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                if self.gateway.keepalive(self.lease) <= 0:
                    logs.warning("etcd lease expired; registering again (orgs are campaigned for anew)")
                    self.lease = 0
                    self.start()
                else:
                    self.last_ok = time.monotonic()
                    self._refresh_members()
                if self._warned:
                    logs.info("etcd reachable again")
                    self._warned = False
            except EtcdUnavailable as exc:
                if not self._warned:
                    logs.error("etcd unreachable: no org ships until it answers again", reason=str(exc))
                    self._warned = True

    def _refresh_members(self) -> None:
        kvs = self.gateway.range(f"{self.prefix}members/", prefix=True)
        self.members = sorted(unb64(kv["key"]).decode().rsplit("/", 1)[-1] for kv in kvs)

    def lease_alive(self) -> bool:
        """Whether the lease can be proven alive: its last keepalive is recent enough."""
        return bool(self.lease) and time.monotonic() - self.last_ok < self.ttl * 2 / 3

    def assigned(self, org: str) -> str | None:
        return assign(self.orgs, self.members).get(org)

    def stop(self) -> None:
        """Leave: revoke the lease, so this collector's orgs move at once rather than after the TTL."""
        self._stop.set()
        if self.lease:
            try:
                self.gateway.revoke(self.lease)
            except EtcdUnavailable:
                pass
            self.lease = 0


class EtcdStore:
    """One org's checkpoint in etcd, written only by the org's leader."""

    def __init__(self, coordinator: Coordinator, org: str) -> None:
        self.co = coordinator
        self.gw = coordinator.gateway
        self.org = org or "default"
        self.base = f"{coordinator.prefix}orgs/{self.org}/"
        self.where = f"etcd {self.base}"
        self.leader_key = self.base + "leader"
        self.standby_s = max(1.0, coordinator.ttl / 3)
        self._rev = 0  # the create revision this collector won the leader key with; 0: not leading
        self._lease = 0
        self._gen: int | None = None
        self._seq = 0
        self._journal_bytes = 0
        self._snapshot_bytes = 0

    # -- leadership -----------------------------------------------------------------------------
    def acquire(self) -> None:
        self.co.start()
        owner = self.co.assigned(self.org)
        if owner != self.co.member:
            raise LockHeldError(f"org {self.org} is assigned to collector {owner or '(none yet)'}")
        answer = self.gw.txn([same_create(self.leader_key, 0)], [put(self.leader_key, self.co.member, self.co.lease)],
                             [{"request_range": {"key": b64(self.leader_key)}}])
        if not answer.get("succeeded"):
            holder = _kvs(answer)
            raise LockHeldError(f"collector {unb64(holder[0]['value']).decode() if holder else '?'} leads org "
                                f"{self.org}")
        self._rev, self._lease = int(answer["header"]["revision"]), self.co.lease
        logs.info("leading org", member=self.co.member)

    def release(self) -> None:
        if not self._rev:
            return
        try:
            self.gw.txn(self._fence(), [delete(self.leader_key)])
        except EtcdUnavailable:
            pass  # the lease will expire the key
        self._rev = 0

    def _fence(self) -> list[dict[str, Any]]:
        return [same_value(self.leader_key, self.co.member), same_create(self.leader_key, self._rev)]

    def ensure_active(self) -> None:
        if not self._rev:
            raise LeadershipLost(f"not leading org {self.org}")
        if not self.co.lease_alive() or self.co.lease != self._lease:
            raise LeadershipLost(f"org {self.org}: the lease cannot be proven alive (etcd unreachable?); standing by")
        owner = self.co.assigned(self.org)
        if owner not in (None, self.co.member):
            raise LeadershipLost(f"org {self.org} moves to collector {owner}")

    def is_locked_elsewhere(self) -> bool:
        kvs = self.gw.range(self.leader_key)
        return bool(kvs) and unb64(kvs[0]["value"]).decode() != self.co.member

    def leader(self) -> tuple[str, int] | None:
        """The leading member and its lease's remaining seconds, for `status`."""
        kvs = self.gw.range(self.leader_key)
        if not kvs:
            return None
        return unb64(kvs[0]["value"]).decode(), self.gw.time_to_live(int(kvs[0].get("lease", 0)))

    def writable(self) -> bool:
        return True

    # -- reading --------------------------------------------------------------------------------
    def load(self) -> Stored | None:
        meta_kvs = self.gw.range(self.base + "meta")
        if not meta_kvs:
            self._gen = None
            return None
        try:
            meta = json.loads(unb64(meta_kvs[0]["value"]))
            gen, parts = int(meta["gen"]), int(meta["parts"])
        except (ValueError, KeyError, TypeError):
            raise StateError(f"{self.where}meta is corrupt; restore it or delete the org's keys") from None
        chunks = self.gw.range(f"{self.base}snap/{gen:010d}/", prefix=True)
        if len(chunks) != parts:
            raise StateError(f"{self.where}: snapshot {gen} has {len(chunks)} of {parts} parts")
        data = b"".join(unb64(kv["value"]) for kv in sorted(chunks, key=lambda kv: unb64(kv["key"])))
        state = decode_snapshot(data, self.where)
        entries = sorted(self.gw.range(f"{self.base}journal/{gen:010d}/", prefix=True), key=lambda kv: unb64(kv["key"]))
        try:
            deltas = [_delta_decoder.decode(unb64(kv["value"])) for kv in entries]
        except msgspec.DecodeError:
            raise StateError(f"{self.where}: a journal entry is corrupt") from None
        self._gen, self._seq = gen, len(entries)
        self._snapshot_bytes = len(data)
        self._journal_bytes = sum(len(kv["value"]) for kv in entries)
        return Stored(state, deltas)

    # -- writing --------------------------------------------------------------------------------
    def commit(self, delta: Delta, full: Callable[[], State]) -> None:
        if self._gen is None or self._journal_bytes > max(COMPACT_MIN_BYTES, COMPACT_RATIO * self._snapshot_bytes):
            self.compact(full())
            return
        value = _delta_encoder.encode(delta)
        self._seq += 1
        self._write([put(f"{self.base}journal/{self._gen:010d}/{self._seq:012d}", value)])
        self._journal_bytes += len(value)

    def compact(self, state: State) -> None:
        gen = (self._gen if self._gen is not None else -1) + 1
        state.journal_gen = gen
        data = _state_encoder.encode(state)
        parts = [data[i:i + PART_BYTES] for i in range(0, len(data), PART_BYTES)] or [b"{}"]
        if len(parts) > MAX_PARTS:
            raise StateError(f"{self.where}: the state is too large for etcd ({len(data)} bytes)")
        # One transaction per part: etcd refuses a request over 1.5 MiB by default, so a large
        # state written in one would never compact. Parts of a generation the meta key does not
        # name yet are ignored by load, and overwritten or deleted by the next compaction.
        for i, part in enumerate(parts):
            self._write([put(f"{self.base}snap/{gen:010d}/{i:04d}", part)])
        ops = [put(self.base + "meta", json.dumps({"gen": gen, "parts": len(parts)}))]
        if self._gen is not None:
            ops += [delete(f"{self.base}snap/{self._gen:010d}/", prefix=True),
                    delete(f"{self.base}journal/{self._gen:010d}/", prefix=True)]
        self._write(ops)
        self._gen, self._seq, self._journal_bytes, self._snapshot_bytes = gen, 0, 0, len(data)

    def _write(self, ops: list[dict[str, Any]]) -> None:
        """One fenced transaction; LeadershipLost when this collector no longer leads the org."""
        self.ensure_active()
        answer = self.gw.txn(self._fence(), ops)
        if not answer.get("succeeded"):
            self._rev = 0
            raise LeadershipLost(f"org {self.org}: a checkpoint write was fenced off (another collector leads); "
                                 "standing by")

    def import_state(self, state: State) -> None:
        """Write a whole state (a migration from the file backend)."""
        self.compact(state)


def _kvs(answer: dict[str, Any]) -> list[dict[str, Any]]:
    for response in answer.get("responses", []):
        if "response_range" in response:
            return list(response["response_range"].get("kvs", []))
    return []

"""Failover: kill -9 the leading collector of an org on etcd, time until another one leads it.

    python benchmarks/bench_etcd.py [--kills 10] [--collectors 2] [--lease-ttl 3]

A real etcd (/usr/bin/etcd, 3.4; started here on loopback in a temp data directory) and two (or
three) `genesys-audit-shipper run` daemons with `state.backend: etcd`, one org, against the
simulator in its own process with a live event rate (so a leader always has something to ship).
Each round: wait until the leader (the member id in `<prefix>orgs/default/leader`) is shipping,
SIGKILL it, then poll etcd and the survivors' stdout files every 20 ms: *key taken* is when the
leader key names another collector, *events flow* is when a survivor's output first grows. The
killed collector is started again (it may take the org back: the assignment is a rendezvous hash
of the live members, so a restart moves the org half of the time; counted as handovers) and the
next round waits for a steady leader. At the end every collector's output is checked against the
simulator's truth (its events-cursor endpoint walked page by page): no event id may be missing.

Bound: the dead leader's key lives until its lease expires (at most lease_ttl after the kill, plus
up to 0.5 s: etcd's lessor looks for expired leases every 500 ms), a survivor sees the dead member
gone at its next member refresh (every lease_ttl/3) and campaigns at its next standby retry (every
max(1 s, lease_ttl/3)): key taken <= lease_ttl + 0.5 + lease_ttl/3 + max(1, lease_ttl/3); events
flow adds the state load and one poll cycle (<= poll.interval more). The product default lease_ttl
is 15 s (bound 25.5 s); 3 s here, as in tests/test_etcd.py, keeps ten rounds short.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common import CLIENT_ID, CLIENT_SECRET, SHIPPER, SimProcess, child_env, median, scratch, table, write_config

ETCD: str | None = shutil.which("etcd") or ("/usr/bin/etcd" if os.path.exists("/usr/bin/etcd") else None)
PREFIX = "/bench/"
ORG = "default"  # the org name of a config without `orgs:`
POLL_S = 0.02
LESSOR_TICK_S = 0.5  # etcd 3.4 revokes expired leases in a loop that runs every 500 ms


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EtcdServer:
    """A real etcd on loopback in its own data directory (as tests/test_etcd.py starts it)."""

    def __init__(self, work: Path, *extra_args: str) -> None:
        if ETCD is None:
            raise RuntimeError("etcd is not installed (Debian: apt-get install etcd-server)")
        self.work = work
        self.data = work / "etcd-data"
        self.client, self.peer = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.client}"
        peer = f"http://127.0.0.1:{self.peer}"
        self.log_path = work / "etcd.log"
        cmd = [ETCD, "--data-dir", str(self.data), "--listen-client-urls", self.url, "--advertise-client-urls",
               self.url, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
               "--initial-cluster", f"default={peer}", *extra_args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp:
                    if json.loads(resp.read()).get("health") == "true":
                        return
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"etcd did not start: {self.log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def write_bytes(self) -> int:
        """Bytes etcd has sent to storage (/proc/PID/io write_bytes: its WAL, snapshots and bbolt)."""
        with open(f"/proc/{self.proc.pid}/io") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("write_bytes:"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> EtcdServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def etcd_missing_note() -> str:
    return "etcd is not installed (/usr/bin/etcd missing; Debian: apt-get install etcd-server): skipped"


# -- collectors -------------------------------------------------------------------------------
class Collector:
    """One `run` daemon; every incarnation writes its own stdout file."""

    def __init__(self, name: str, cfg: Path, work: Path) -> None:
        self.name, self.cfg, self.work = name, cfg, work
        self.outputs: list[Path] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        n = len(self.outputs)
        out_path, err_path = self.work / f"{self.name}.{n}.ndjson", self.work / f"{self.name}.{n}.log"
        self.outputs.append(out_path)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            self.proc = subprocess.Popen([*SHIPPER, "run", "--config", str(self.cfg)], stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, env=child_env(), start_new_session=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def size(self) -> int:
        try:
            return self.outputs[-1].stat().st_size
        except FileNotFoundError:
            return 0

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.work.glob(f"{self.name}.*.log")):
            for line in path.read_bytes().splitlines():
                if line.startswith(b"{"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        continue
        return out


def member_pid(member: str) -> int | None:
    """A member id is `<host>-<pid>-<8 hex>`."""
    try:
        return int(member.rsplit("-", 2)[1])
    except (IndexError, ValueError):
        return None


class Watcher:
    """Reads the org's leader key and the live members straight from etcd."""

    def __init__(self, url: str) -> None:
        from shipper.config import Duration, EtcdConfig
        from shipper.store.etcd_gateway import Gateway

        self.gw = Gateway(EtcdConfig(endpoints=[url], prefix=PREFIX, timeout=Duration(2)))

    def leader(self) -> str | None:
        from shipper.store.etcd_gateway import unb64

        kvs = self.gw.range(f"{PREFIX}orgs/{ORG}/leader")
        return unb64(kvs[0]["value"]).decode() if kvs else None

    def members(self) -> list[str]:
        from shipper.store.etcd_gateway import unb64

        return [unb64(kv["key"]).decode().rsplit("/", 1)[-1] for kv in self.gw.range(f"{PREFIX}members/", prefix=True)]


def owner(collectors: list[Collector], member: str | None) -> Collector | None:
    pid = member_pid(member) if member else None
    return next((c for c in collectors if c.alive() and c.pid == pid), None)


def wait_steady(w: Watcher, collectors: list[Collector], timeout: float) -> Collector:
    """Until every collector is a live member and one leads the org and is shipping."""
    deadline = time.monotonic() + timeout
    grew_at: dict[int, float] = {}
    last: dict[int, int] = {}
    while time.monotonic() < deadline:
        now = time.monotonic()
        for c in collectors:
            size = c.size()
            if size != last.get(c.pid):
                if c.pid in last:
                    grew_at[c.pid] = now
                last[c.pid] = size
        lead = owner(collectors, w.leader())
        live = {member_pid(m) for m in w.members()}
        if lead is not None and all(c.pid in live for c in collectors) and now - grew_at.get(lead.pid, -1e9) < 1.5:
            return lead
        time.sleep(0.1)
    raise RuntimeError(f"no steady leader within {timeout:.0f} s (leader key: {w.leader()!r})")


def failover(w: Watcher, collectors: list[Collector], victim: Collector, timeout: float) -> dict[str, Any]:
    """kill -9 the leader; seconds until the key names another collector and until one ships."""
    survivors = [c for c in collectors if c is not victim]
    sizes = {c.pid: c.size() for c in survivors}
    old = w.leader()
    t0 = time.monotonic()
    victim.kill9()
    key_s: float | None = None
    emit_s: float | None = None
    new_leader: Collector | None = None
    shipper_c: Collector | None = None
    while (key_s is None or emit_s is None) and time.monotonic() - t0 < timeout:
        now = time.monotonic() - t0
        if key_s is None:
            member = w.leader()
            if member is not None and member != old:
                key_s, new_leader = now, owner(survivors, member)
        if emit_s is None:
            grown = [c for c in survivors if c.size() > sizes[c.pid]]
            if grown:
                emit_s, shipper_c = now, grown[0]
        time.sleep(POLL_S)
    if key_s is None or emit_s is None:
        raise RuntimeError(f"no takeover within {timeout:.0f} s of the kill (key {key_s}, events {emit_s})")
    return {"key_s": key_s, "emit_s": emit_s, "from": victim.name,
            "to": new_leader.name if new_leader else "?", "emitter": shipper_c.name if shipper_c else "?"}


def rejoin(w: Watcher, collectors: list[Collector], victim: Collector, timeout: float) -> dict[str, Any]:
    """Start the killed collector again (as systemd would). Once it is a member, the rendezvous
    assignment says whether the org moves to it; if so, seconds from the restart until it holds
    the leader key (a planned handover: the leader lets go at its next page or cycle)."""
    from shipper.store.etcd import assign

    t0 = time.monotonic()
    victim.start()
    while time.monotonic() - t0 < timeout:
        members = w.members()
        if any(member_pid(m) == victim.pid for m in members):
            break
        time.sleep(POLL_S)
    else:
        raise RuntimeError(f"{victim.name} did not register within {timeout:.0f} s")
    target = assign([ORG], sorted(members)).get(ORG)
    if member_pid(target or "") != victim.pid:
        return {"restart_moved_org": False, "handover_s": None}
    while time.monotonic() - t0 < timeout:
        if owner([victim], w.leader()) is victim:
            return {"restart_moved_org": True, "handover_s": time.monotonic() - t0}
        time.sleep(POLL_S)
    raise RuntimeError(f"the org did not move to the restarted {victim.name} within {timeout:.0f} s")


# -- the truth --------------------------------------------------------------------------------
def iso(epoch_s: float) -> str:
    dt = datetime.fromtimestamp(epoch_s, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def truth_ids(sim_url: str, start_s: float, end_s: float) -> set[str]:
    """Every event id the simulator serves in [start, end), walked through its events-cursor endpoint."""
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                   "client_secret": CLIENT_SECRET}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{sim_url}/oauth/token", data=form), timeout=10) as resp:
        token = json.loads(resp.read())["access_token"]
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        q = {"dateFrom": iso(start_s), "dateTo": iso(end_s), "size": "100", **({"cursor": cursor} if cursor else {})}
        req = urllib.request.Request(f"{sim_url}/api/v2/auditlogs/events?{urllib.parse.urlencode(q)}",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            doc = json.loads(resp.read())
        ids.update(e["id"] for e in doc.get("entities", []))
        cursor = doc.get("nextPageCursor")
        if not cursor:
            return ids


def shipped(collectors: list[Collector]) -> tuple[dict[str, int], int]:
    """Event id -> times written, over every incarnation's stdout; and lines that are not JSON
    (a line cut by a kill -9)."""
    counts: dict[str, int] = {}
    broken = 0
    for c in collectors:
        for path in c.outputs:
            for line in path.read_bytes().splitlines():
                try:
                    eid = json.loads(line)["siem_event_id"]
                except (ValueError, KeyError, TypeError):
                    broken += 1
                    continue
                counts[eid] = counts.get(eid, 0) + 1
    return counts, broken


# -- the benchmark ----------------------------------------------------------------------------
def run(quick: bool = False, kills: int | None = None, collectors: int = 2, lease_ttl: int = 3,
        live_rate: float = 20.0) -> dict[str, Any]:
    kills = kills or (3 if quick else 10)
    interval = 1.0
    standby = max(1.0, lease_ttl / 3)
    bound_key = lease_ttl + LESSOR_TICK_S + lease_ttl / 3 + standby
    bound_emit = bound_key + interval
    res: dict[str, Any] = {"kills": kills, "collectors": collectors, "lease_ttl": lease_ttl, "interval": interval,
                           "bound_key_s": bound_key, "bound_emit_s": bound_emit}
    if ETCD is None:
        res.update(skipped=etcd_missing_note(), table=table("etcd failover", ["note"], [[etcd_missing_note()]]))
        return res
    started = time.time()
    with scratch("etcd") as tmp, EtcdServer(tmp) as etcd, \
            SimProcess(events=2000, span=3600.0, newest_age=60.0, live_rate=live_rate) as sim:
        cfg = write_config(tmp, sim.url, poll={"start_from": "2h", "interval": f"{interval:g}s", "page_size": 100},
                           state={"backend": "etcd", "etcd": {"endpoints": [etcd.url], "prefix": PREFIX,
                                                              "lease_ttl": f"{lease_ttl}s"}},
                           output={"replay_on_start": 0})
        w = Watcher(etcd.url)
        fleet: list[Collector] = []
        rounds: list[dict[str, Any]] = []
        handovers = 0
        try:
            for i in range(collectors):
                fleet.append(Collector(f"c{i}", cfg, tmp))
                time.sleep(0.5)
            leader = wait_steady(w, fleet, 60)
            for k in range(kills):
                r = failover(w, fleet, leader, timeout=3 * lease_ttl + 20)
                r.update(rejoin(w, fleet, leader, timeout=4 * lease_ttl + 20))
                handovers += r["restart_moved_org"]
                leader = wait_steady(w, fleet, 4 * lease_ttl + 30)
                r["round"] = k + 1
                rounds.append(r)
                print(f"  kill {k + 1}/{kills}: key taken {r['key_s']:.2f} s, events flow {r['emit_s']:.2f} s",
                      file=sys.stderr, flush=True)
            # Drain: everything older than a few seconds must have been shipped by someone.
            cutoff = time.time() - 3
            truth = truth_ids(sim.url, started - 3 * 3600, cutoff)
            deadline = time.monotonic() + 60
            while True:
                counts, broken = shipped(fleet)
                missing = truth - counts.keys()
                if not missing or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        finally:
            for c in fleet:
                c.stop()
        not_leading = sum(e.get("message", "").startswith("not leading") for c in fleet for e in c.logs())
    key = [r["key_s"] for r in rounds]
    emit = [r["emit_s"] for r in rounds]
    dups = sum(n - 1 for n in counts.values())
    res.update(rounds=rounds, key_median=median(key), key_max=max(key), emit_median=median(emit), emit_max=max(emit),
               truth=len(truth), shipped=len(counts), missing=len(missing), duplicates=dups, broken_lines=broken,
               restart_handovers=handovers, not_leading_logs=not_leading)
    moved = [r["handover_s"] for r in rounds if r["restart_moved_org"]]
    res["handover_median"] = median(moved) if moved else None
    rows: list[list[Any]] = [[r["round"], f"{r['from']} -> {r['to']}", r["key_s"], r["emit_s"],
                              f"yes, {r['handover_s']:.2f} s" if r["restart_moved_org"] else "no"] for r in rounds]
    rows.append(["median", "", res["key_median"], res["emit_median"],
                 f"{handovers} of {kills}" + (f", median {res['handover_median']:.2f} s" if moved else "")])
    rows.append(["max", "", res["key_max"], res["emit_max"], ""])
    rows.append(["bound", f"lease_ttl {lease_ttl}s, poll.interval {interval:g}s", bound_key, bound_emit, ""])
    res["table"] = "\n".join([
        table(f"etcd failover: kill -9 of the leader, {collectors} collectors, one org, live rate {live_rate:g}/s",
              ["kill", "leader", "key taken s", "events flow s", "restart took the org back (s from restart)"], rows),
        table("etcd failover: events against the simulator's truth (every collector's stdout)",
              ["truth ids", "shipped ids", "missing", "duplicate lines", "cut lines", "'not leading' log lines"],
              [[len(truth), len(counts), len(missing), dups, broken, not_leading]]),
    ])
    res["targets"] = [
        (f"etcd: failover (key taken) <= lease_ttl + 0.5 + lease_ttl/3 + standby = {bound_key:.1f} s, worst of "
         f"{kills}",
         f"{res['key_max']:.2f} s (median {res['key_median']:.2f} s)", res["key_max"] <= bound_key),
        (f"etcd: events flow again <= {bound_emit:.1f} s after the kill, worst of {kills}",
         f"{res['emit_max']:.2f} s (median {res['emit_median']:.2f} s)", res["emit_max"] <= bound_emit),
        ("etcd: no event lost over the kills", f"{len(missing)} of {len(truth):,} missing", not missing),
    ]
    return res


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--kills", type=int, help="default 10 (3 with --quick)")
    p.add_argument("--collectors", type=int, default=2, choices=(2, 3))
    p.add_argument("--lease-ttl", type=int, default=3, help="seconds (product default 15)")
    p.add_argument("--live-rate", type=float, default=20.0, help="simulator events per second")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    res = run(a.quick, a.kills, a.collectors, a.lease_ttl, a.live_rate)
    print(res["table"])
    for target, measured, ok in res.get("targets", []):
        print(f"{'PASS' if ok else 'FAIL'}  {target}: {measured}")


if __name__ == "__main__":
    main()

"""Orgs: one `run --once` shipping 50 orgs x 2,000 events vs a single org of 2,000 events.

    python benchmarks/bench_orgs.py [--events-per-org 2000] [--orgs 1,10,50] [--runs 3] [--quick]

One simulator process serves 50 orgs (`Simulator(orgs=org_configs(50, events=2000))`: client ids
`org1-client`..., seeds 1000 apart, their own events), started by `sim_server.py` in its own
process, so its CPU is never counted. Every run is a catch-up from an empty state, page size 100, client pacing
off, bytecode cached (common.CHILD_ENV), stdout to a file whose lines are counted, and each org's
`events_served` checked at the simulator.

- single org: a config without `orgs:` polling `org1-client` (2,000 events): the CPU-per-event
  figure the 50-org run is compared with (target: 50 orgs <= 1.2x its CPU per event). That
  figure carries one start-up (~0.15 s of CPU) over 2,000 events, which one 50-org process shares
  over 100,000, so the like-for-like reference is the next row.
- single org, 100,000 events (full run only; its own simulator): the same total events in one
  org, the per-event cost without the start-up's weight (ratio shown, informational).
- `orgs:` lists of the first 1, 10 and 50 orgs (`max_parallel_orgs` left at its default,
  min(orgs, 8) at once): wall, CPU, peak RSS; RSS per added org is the least-squares slope of
  peak RSS over the org count. Target: peak RSS < 150 MB at 50 orgs.
Runs are interleaved round by round; each figure is the median of its rounds.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from common import SHIPPER, ChildRun, SimProcess, check, count_lines, median, run_child, scratch, table, write_config

TARGET_CPU_RATIO = 1.2
TARGET_RSS_MB = 150.0
_EVENT_ID = re.compile(rb'"siem_event_id":"([^"]*)"')
_ORG = re.compile(rb'"genesys_org":"([^"]*)"')


class OrgsSim(SimProcess):
    """The simulator with `orgs` orgs (org_configs), in its own process (sim_server.py)."""

    def __init__(self, orgs: int, **fields: Any) -> None:
        super().__init__(orgs=orgs, **fields)

    def served(self, org: int) -> int:
        """Events served so far to org number `org` (1-based, client id `org<N>-client`)."""
        with urllib.request.urlopen(f"{self.url}/__sim/stats?client_id=org{org}-client", timeout=10) as resp:
            return int(json.loads(resp.read())["events_served"])


def org_config(tmp: Path, url: str, orgs: int) -> Path:
    """orgs == 0: one org without `orgs:` (org1's credentials); else an `orgs:` list of the first `orgs`."""
    if orgs == 0:
        return write_config(tmp, url, genesys={"client_id": "org1-client", "client_secret": "org1-secret"})
    path = write_config(tmp, url)
    doc = yaml.safe_load(path.read_text())
    doc["orgs"] = [{"name": f"org-{i:02d}", "genesys": {"client_id": f"org{i}-client", "client_secret": f"org{i}-secret"}}
                   for i in range(1, orgs + 1)]
    path.write_text(yaml.safe_dump(doc))
    return path


def distinct_records(path: Path) -> int:
    """Distinct (org, event id) pairs among the lines written."""
    seen: set[tuple[bytes, bytes]] = set()
    with open(path, "rb") as fh:
        for line in fh:
            ev, org = _EVENT_ID.search(line), _ORG.search(line)
            seen.add((org.group(1) if org else b"", ev.group(1) if ev else line))
    return len(seen)


def one(sim: OrgsSim | SimProcess, tmp: Path, orgs: int, events: int) -> tuple[ChildRun, int]:
    """A catch-up of `orgs` orgs (0: the single org without `orgs:`) from an empty state: the
    shipper's rusage and the events the simulator served for it (re-reads included)."""
    d = tmp / f"o{orgs}-{time.monotonic_ns()}"
    d.mkdir()
    cfg = org_config(d, sim.url, orgs) if isinstance(sim, OrgsSim) else write_config(d, sim.url)
    counted = range(1, max(orgs, 1) + 1)
    before = [sim.served(i) for i in counted] if isinstance(sim, OrgsSim) else [sim.stats()["events_served"]]
    out = d / "out.ndjson"
    r = run_child([*SHIPPER, "run", "--once", "--config", str(cfg)], stdout_path=out, timeout=900)
    check(r, f"run --once ({orgs or 'single'} org(s))")
    after = [sim.served(i) for i in counted] if isinstance(sim, OrgsSim) else [sim.stats()["events_served"]]
    # Served may exceed the events: the realtime tail re-reads a page's last millisecond (poll.tail).
    short = [(i, a - b) for i, b, a in zip(counted, before, after, strict=True) if a - b < events]
    total = events * max(orgs, 1)
    lines, distinct = count_lines(out), distinct_records(out)
    if short or lines != total or distinct != total:
        raise RuntimeError(f"{orgs} org(s): {lines} lines ({distinct} distinct) for {total} events; orgs served "
                           f"fewer than {events} events: {short[:10]}")
    out.unlink()
    return r, sum(after) - sum(before)


def run(quick: bool = False, events: int | None = None, org_counts: tuple[int, ...] | None = None,
        runs: int | None = None, reference: bool | None = None) -> dict[str, Any]:
    events = events or 2000
    org_counts = tuple(sorted(set(org_counts or (1, 10, 50))))
    runs = runs or (1 if quick else 3)
    reference = (not quick) if reference is None else reference
    top = max(org_counts)
    res: dict[str, Any] = {"events_per_org": events, "orgs": top, "runs": runs}
    got: dict[int, list[tuple[ChildRun, int]]] = {n: [] for n in (0, *org_counts)}  # 0: no orgs: list
    ref_events = events * top
    ref: list[tuple[ChildRun, int]] = []
    with scratch("orgs") as tmp:
        with OrgsSim(top, events=events) as sim:
            res["sim_startup_s"] = sim.startup_s
            one(sim, tmp, 0, events)  # not counted: fills the bytecode cache
            for _ in range(runs):  # interleaved rounds
                for n in got:
                    got[n].append(one(sim, tmp, n, events))
        if reference:
            with SimProcess(events=ref_events) as big:
                ref.append(one(big, tmp, 0, ref_events))

    def fig(rs: list[tuple[ChildRun, int]], total: int) -> dict[str, Any]:
        cpu = median([r.cpu for r, _ in rs])
        return {"events": total, "wall": median([r.wall for r, _ in rs]), "cpu": cpu, "cpu_us": cpu * 1e6 / total,
                "rss_mb": median([r.maxrss_kb for r, _ in rs]) / 1024, "runs": len(rs),
                "served_per_event": median([served for _, served in rs]) / total}

    def row(name: str, orgs: int, v: dict[str, Any]) -> list[Any]:
        return [name, orgs, v["events"], v["runs"], v["wall"], v["cpu"], v["cpu_us"], v["cpu_us"] / single["cpu_us"],
                v["rss_mb"], v["served_per_event"]]

    single = res["single"] = fig(got[0], events)
    res["by_orgs"] = {n: fig(got[n], events * n) for n in org_counts}
    worst = res["by_orgs"][top]
    res["cpu_ratio"] = worst["cpu_us"] / single["cpu_us"]
    res["rss_mb"] = max(v["rss_mb"] for v in res["by_orgs"].values())
    rows = [row("single org (no orgs: list)", 1, single)]
    if ref:
        r = res["reference"] = fig(ref, ref_events)
        res["cpu_ratio_same_total"] = worst["cpu_us"] / r["cpu_us"]
        rows.append(row(f"single org, {ref_events:,} events (reference)", 1, r))
    rows += [row(f"orgs: list of {n}", n, res["by_orgs"][n]) for n in org_counts]
    if len(org_counts) >= 2:
        slope, intercept = statistics.linear_regression(org_counts, [res["by_orgs"][n]["rss_mb"] for n in org_counts])
        res["rss_mb_per_org"], res["rss_mb_base"] = slope, intercept
        rows.append([f"peak RSS slope over {', '.join(map(str, org_counts))} orgs", "", "", "", "", "", "", "",
                     f"{slope:.3f} MB/org", ""])
    per_org = f", {res['rss_mb_per_org']:.3f} MB per added org" if "rss_mb_per_org" in res else ""
    res["targets"] = [
        {"target": f"Orgs: CPU per event of {top} orgs <= {TARGET_CPU_RATIO}x a single org's ({events:,} events)",
         "measured": f"{res['cpu_ratio']:.2f}x ({worst['cpu_us']:.1f} vs {single['cpu_us']:.1f} µs/event)",
         "ok": res["cpu_ratio"] <= TARGET_CPU_RATIO},
        {"target": f"Orgs: peak RSS < {TARGET_RSS_MB:.0f} MB at {top} orgs",
         "measured": f"{worst['rss_mb']:.1f} MB (worst of {', '.join(map(str, org_counts))} orgs: "
                     f"{res['rss_mb']:.1f} MB{per_org})",
         "ok": res["rss_mb"] < TARGET_RSS_MB},
    ]
    if ref:  # like for like: the same events in total, so start-up weighs the same on both sides
        res["targets"].append(
            {"target": f"Orgs: CPU per event of {top} orgs <= {TARGET_CPU_RATIO}x one org with the same "
                       f"{ref_events:,} events",
             "measured": f"{res['cpu_ratio_same_total']:.2f}x ({worst['cpu_us']:.1f} vs "
                         f"{res['reference']['cpu_us']:.1f} µs/event)",
             "ok": res["cpu_ratio_same_total"] <= TARGET_CPU_RATIO})
    tgt_rows = [[t["target"], t["measured"], "PASS" if t["ok"] else "FAIL"] for t in res["targets"]]
    res["table"] = table(f"Orgs: run --once catch-up, {events:,} events per org, pacing off, max_parallel_orgs default "
                         f"(min(orgs, 8)), median of {runs}",
                         ["run", "orgs", "events", "runs", "wall s", "CPU s", "CPU µs / event", "× single org CPU/event",
                          "peak RSS MB", "sim served / event"], rows)
    res["targets_table"] = table("Orgs: targets", ["target", "measured", "verdict"], tgt_rows)
    return res


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events-per-org", type=int, help="default 2,000")
    p.add_argument("--orgs", help="comma-separated org counts, default 1,10,50")
    p.add_argument("--runs", type=int, help="rounds (default 3; --quick: 1)")
    p.add_argument("--no-reference", action="store_true", help="skip the single org with every org's events together")
    p.add_argument("--quick", action="store_true", help="one round, no 100,000-event reference")
    a = p.parse_args()
    counts = tuple(int(x) for x in a.orgs.split(",")) if a.orgs else None
    res = run(a.quick, a.events_per_org, counts, a.runs, False if a.no_reference else None)
    print(res["table"])
    print(res["targets_table"])


if __name__ == "__main__":
    main()

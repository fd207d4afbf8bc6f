"""Run every benchmark and print one table per section, then the targets with PASS/FAIL.

    python benchmarks/run_all.py            # full run (about 6-8 minutes on 2 cores)
    python benchmarks/run_all.py --quick    # smaller backlogs and shorter daemon runs (about 2 minutes)
    python benchmarks/run_all.py --only pipeline,startup --json results.json
    PYTHONPATH=/tmp/copy python benchmarks/run_all.py --quick   # measure a scratch copy of shipper/

Nothing here runs inside the test suite. Exit status is 0 whatever the verdicts (it measures, it
does not gate); pass --strict to exit 1 when a target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import table  # noqa: E402

SECTIONS = ("pipeline", "e2e", "memory", "startup", "api", "checkpoint", "verify", "orgs", "etcd")
# Sections whose run() returns its own "targets": [(target, measured, ok or None for information)].
EXTRA_TARGETS = ("checkpoint", "verify", "orgs", "etcd")


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import msgspec
    import requests

    import shipper

    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, msgspec {msgspec.__version__}, "
            f"requests {requests.__version__}, {platform.system()} {platform.release()}\n"
            f"shipper measured: {os.path.dirname(shipper.__file__)} (commit {git_head()})")


def git_head() -> str:
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "shipper"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes in shipper/' if dirty else ''}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


class Targets:
    """The summary table: one row per target, PASS/FAIL, and informational rows."""

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []
        self.ok = True

    def add(self, target: str, measured: str, ok: bool) -> None:
        self.ok &= ok
        self.rows.append([target, measured, verdict(ok)])

    def info(self, target: str, measured: str) -> None:
        self.rows.append([target, measured, "info"])


def e2e_targets(t: Targets, e: dict[str, Any]) -> None:
    for size, x in e.get("by_page_size", {100: e}).items():
        t.add(f"End to end: >= 3x less CPU per event than the guide poller (page {size}, chain sha256)",
              f"{x['ratio']:.2f}x ({x['shipper']['per10k']:.3f} vs {x['guide']['per10k']:.3f} CPU s / 10k events, "
              f"{x['events']:,}-event runs incl. start-up)", x["ratio"] >= 3)
        t.info(f"  (page {size}, output.chain off)", f"{x['ratio_chain_off']:.2f}x "
               f"({x['shipper, chain off']['per10k']:.3f} CPU s / 10k events)")
        t.info(f"  (page {size}, chain on, net of each client's fixed start-up cost)",
               f"{x['net_ratio']:.2f}x ({x['shipper']['net_per10k']:.3f} vs {x['guide']['net_per10k']:.3f})")


def pipeline_targets(t: Targets, p: dict[str, Any]) -> None:
    siem = p["schemas"].get("siem, chain off")
    if siem is not None:
        t.add("Pipeline: siem >= 5x the baseline's events/s (chain off, as the baseline)",
              f"{siem['x_baseline']:.2f}x ({siem['eps']:,.0f} vs {p['baseline_eps']:,.0f} events/s)",
              siem["x_baseline"] >= 5)
    floor = p.get("chain_floor", {})
    for schema, cost in p.get("chain_cost", {}).items():
        alone = f" (one SHA-256 of the line alone: +{floor[schema][0] * 100:.0f} %)" if schema in floor else ""
        t.add(f"Pipeline: the chain costs <= 25 % of the {schema} pipeline without it", f"+{cost * 100:.0f} %{alone}",
              cost <= 0.25)


def api_targets(t: Targets, a: dict[str, Any]) -> None:
    for b in a["budget"]:
        t.add(f"API: catch-up of {b['events']:,} events at the default budget and page size >= 90 % of "
              f"page x {b['rpm']:.0f} / 60 events/s",
              f"{b['of_ceiling'] * 100:.1f} % ({b['events_per_s']:,.0f} of {b['ceiling']:,.0f} events/s)",
              b["of_ceiling"] >= 0.9)
        t.add("API: zero 429s at budget = server limit", f"{b['throttled']} x 429 in {b['requests']} requests",
              b["throttled"] == 0)
        t.add("API: requests per 1000 events, large catch-up, defaults <= 2.2", f"{b['per_1000']:.2f}",
              b["per_1000"] <= 2.2)
    for i in a["idle"]:
        target = f"API: requests per hour, idle daemon, late window included (poll.tail {i['tail']}) <= 200"
        measured = f"{i['per_hour']:.0f} ({i['per_cycle']:.2f} per cycle x 60 cycles)"
        if i["tail"] == "realtime":  # the default
            t.add(target, measured, i["per_hour"] <= 200)
        else:
            t.info(target, measured)


def summary(r: dict[str, Any]) -> tuple[str, bool]:
    t = Targets()
    if "e2e" in r:
        e2e_targets(t, r["e2e"])
    if "pipeline" in r:
        pipeline_targets(t, r["pipeline"])
    if "memory" in r:
        m = r["memory"]
        t.add(f"Memory: peak RSS grows <= 1.25x for a {m['factor']}x backlog (every late_window measured)",
              f"{m['worst_ratio']:.3f}x (late_window 30s: {m['ratio']:.3f}x)", m["worst_ratio"] <= 1.25)
        t.add("Memory: peak RSS < 100 MB", f"{m['worst_large_mb']:.1f} MB at {m['small'] * m['factor']:,} events",
              m["worst_large_mb"] < 100)
    if "startup" in r:
        s = r["startup"]
        t.add("Startup: no-news run --once <= 2x a bare `import requests` (CPU)", f"{s['ratio_cpu']:.2f}x",
              s["ratio_cpu"] <= 2)
        t.info("Startup: the same, wall", f"{s['ratio_wall']:.2f}x")
    if "api" in r:
        api_targets(t, r["api"])
    for name in EXTRA_TARGETS:
        if name in r:
            for item in r[name].get("targets", []):
                target, measured, ok = (item["target"], item["measured"], item["ok"]) if isinstance(item, dict) else item
                if ok is None:
                    t.info(target, measured)
                else:
                    t.add(target, measured, bool(ok))
    return table("Summary against the targets", ["target", "measured", "verdict"], t.rows), t.ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller backlogs, fewer repeats, shorter daemon runs")
    ap.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    a = ap.parse_args()
    only = [s.strip() for s in a.only.split(",")] if a.only else list(SECTIONS)
    unknown = set(only) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")

    print(f"# genesys-audit-shipper benchmarks{' (--quick)' if a.quick else ''}")
    print(f"machine: {machine()}")
    started = time.monotonic()
    results: dict[str, Any] = {}
    for name in only:
        t0 = time.monotonic()
        print(f"\n[{name}] running ...", file=sys.stderr, flush=True)
        mod = __import__(f"bench_{name}")
        try:
            res = mod.run(a.quick)
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
            print(f"\n## {name}: FAILED TO RUN: {type(exc).__name__}: {exc}")
            continue
        results[name] = res
        print(res["table"])
        if name == "pipeline":
            print(res["stages_table"])
            for note in res["notes"]:
                print(f"note: {note}")
        print(f"\n({name}: {time.monotonic() - t0:.0f} s)", flush=True)
    text, ok = summary(results)
    print(text)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({k: {kk: vv for kk, vv in v.items() if not kk.endswith("table")} for k, v in results.items()},
                      fh, indent=2, default=str)
    return 1 if a.strict and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())

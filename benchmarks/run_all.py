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

SECTIONS = ("pipeline", "e2e", "memory", "startup", "api")


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


def summary(r: dict[str, Any]) -> tuple[str, bool]:
    rows: list[list[Any]] = []
    all_ok = True

    def add(target: str, measured: str, ok: bool) -> None:
        nonlocal all_ok
        all_ok &= ok
        rows.append([target, measured, verdict(ok)])

    if "e2e" in r:
        e = r["e2e"]
        add("End to end: >= 3x less CPU per event than the guide poller (page 100)",
            f"{e['ratio']:.2f}x ({e['shipper']['per10k']:.3f} vs {e['guide']['per10k']:.3f} CPU s / 10k events, "
            f"{e['events']:,}-event runs incl. start-up)", e["ratio"] >= 3)
        rows.append(["  (same, net of each client's fixed start-up cost; informational)",
                     f"{e['net_ratio']:.2f}x ({e['shipper']['net_per10k']:.3f} vs {e['guide']['net_per10k']:.3f})",
                     "info"])
    if "pipeline" in r:
        p = r["pipeline"]
        siem = p["schemas"].get("siem")
        if siem is None:
            add("Pipeline: siem >= 5x the baseline's events/s", "siem not measured", False)
        else:
            add("Pipeline: siem >= 5x the baseline's events/s",
                f"{siem['x_baseline']:.2f}x ({siem['eps']:,.0f} vs {p['baseline_eps']:,.0f} events/s)",
                siem["x_baseline"] >= 5)
    if "memory" in r:
        m = r["memory"]
        add(f"Memory: peak RSS grows <= 1.25x for a {m['factor']}x backlog (every late_window measured)",
            f"{m['worst_ratio']:.3f}x (late_window 30s: {m['ratio']:.3f}x)", m["worst_ratio"] <= 1.25)
        add("Memory: peak RSS < 100 MB", f"{m['worst_large_mb']:.1f} MB at {m['small'] * m['factor']:,} events",
            m["worst_large_mb"] < 100)
    if "startup" in r:
        s = r["startup"]
        add("Startup: no-news run --once <= 2.5x a bare `import requests` (CPU)", f"{s['ratio_cpu']:.2f}x",
            s["ratio_cpu"] <= 2.5)
        add("Startup: no-news run --once <= 2.5x a bare `import requests` (wall)", f"{s['ratio_wall']:.2f}x",
            s["ratio_wall"] <= 2.5)
    if "api" in r:
        for b in r["api"]["budget"]:
            add(f"API: large catch-up uses >= 90 % of the budget ({b['limit']}/{b['window']:.0f}s = "
                f"{b['rpm']:.0f}/min)", f"{b['share'] * 100:.1f} %", b["share"] >= 0.9)
            add(f"API: zero 429s at budget = server limit ({b['limit']}/{b['window']:.0f}s)",
                f"{b['throttled']} x 429 in {b['requests']} requests", b["throttled"] == 0)
    return table("Summary against the targets", ["target", "measured", "verdict"], rows), all_ok


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

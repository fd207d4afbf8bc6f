"""Memory: peak RSS of `run --once` catching up a small and a 10x larger backlog.

    python benchmarks/bench_memory.py [--small 20000] [--factor 10]

Each backlog is served by its own simulator process (same 6 h span, so the larger one is 10x as
dense); the shipper starts from an empty state and catches up everything. Peak RSS is the
child's own ru_maxrss (os.wait4, through measure.py). Pacing is off. With the benchmark config's
late_window of 30 s the dedupe ledger stays about one page long during a catch-up; the 30 m row
(the product default) shows the ledger's effect when the newest half hour of a dense backlog
must be remembered (~15k ids at 200k events). The targets are judged on the worst row.
"""

from __future__ import annotations

import argparse
from typing import Any

from common import SHIPPER, SimProcess, check, count_lines, run_child, scratch, table, write_config


def one(sim: SimProcess, events: int, late_window: str) -> dict[str, Any]:
    with scratch("mem") as tmp:
        cfg = write_config(tmp, sim.url, poll={"late_window": late_window, "page_size": 500})
        out = tmp / "out.ndjson"
        r = run_child([*SHIPPER, "run", "--once", "--config", str(cfg)], timeout=900, stdout_path=out)
        check(r, f"run --once ({events} events)")
        # Served counts can exceed the events: realtime pages re-anchor inside a burst and the
        # ledger drops the repeats. What counts is every event written once.
        written = count_lines(out)
        if written != events:
            raise RuntimeError(f"wrote {written} lines for {events} events")
        return {"events": events, "rss_mb": r.maxrss_kb / 1024, "cpu": r.cpu, "wall": r.wall}


def run(quick: bool = False, small: int | None = None, factor: int = 10,
        late_windows: tuple[str, ...] | None = None) -> dict[str, Any]:
    small = small or (5000 if quick else 20000)
    late_windows = late_windows or (("30s",) if quick else ("30s", "30m"))
    res: dict[str, Any] = {"small": small, "factor": factor, "by_late_window": {}}
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    for events in (small, small * factor):
        with SimProcess(events=events) as sim:
            for lw in late_windows:
                runs[lw, events] = one(sim, events, lw)
    rows = []
    for lw in late_windows:
        a, b = runs[lw, small], runs[lw, small * factor]
        ratio = b["rss_mb"] / a["rss_mb"]
        res["by_late_window"][lw] = {"small": a, "large": b, "ratio": ratio}
        for x in (a, b):
            rows.append([x["events"], lw, x["rss_mb"], x["cpu"], x["wall"], x["cpu"] * 10_000 / x["events"]])
        rows.append([f"ratio {factor}x backlog", lw, ratio, "", "", ""])
    first = res["by_late_window"][late_windows[0]]
    res["ratio"], res["large_mb"] = first["ratio"], first["large"]["rss_mb"]
    res["worst_ratio"] = max(v["ratio"] for v in res["by_late_window"].values())
    res["worst_large_mb"] = max(v["large"]["rss_mb"] for v in res["by_late_window"].values())
    res["table"] = table("Memory: peak RSS of a run --once catch-up (child ru_maxrss)",
                         ["backlog events", "late_window", "peak RSS MB", "CPU s", "wall s", "CPU s / 10k ev"], rows)
    return res


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--small", type=int)
    p.add_argument("--factor", type=int, default=10)
    p.add_argument("--late-window", action="append", help="repeatable; default 30s and 30m (30s with --quick)")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    print(run(a.quick, a.small, a.factor, tuple(a.late_window) if a.late_window else None)["table"])


if __name__ == "__main__":
    main()

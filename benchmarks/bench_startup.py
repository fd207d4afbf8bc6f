"""Startup: a `run --once` with nothing new vs `python -c "import requests"`.

    python benchmarks/bench_startup.py [--runs 10]

A simulator (own process, query_delay 0 so the no-news run does not sleep on a server-side
delay) serves a small history; one `run --once` catches up, then each timed `run --once` finds
nothing new: it loads config and state, takes a token, re-reads the late window and queries up to
now (a handful of requests, zero events), saves state and exits. Runs alternate with the bare
import; medians of wall and CPU (user+sys of the child) are reported, and the ratio. Children run
with bytecode cached as from a wheel (see common.CHILD_ENV); an extra row shows the no-news run
without a bytecode cache for the shipper's own modules (this machine's PYTHONDONTWRITEBYTECODE=1).
"""

from __future__ import annotations

import argparse
from typing import Any

from common import NO_BYTECODE_ENV, PY, SHIPPER, SimProcess, check, median, run_child, scratch, table, write_config


def run(quick: bool = False, runs: int | None = None) -> dict[str, Any]:
    runs = runs or (5 if quick else 11)
    with SimProcess(events=500, query_delay=0.0) as sim, scratch("startup") as tmp:
        cfg = write_config(tmp, sim.url)
        cmd = [*SHIPPER, "run", "--once", "--config", str(cfg)]
        check(run_child(cmd), "catch-up")  # also fills the bytecode cache
        run_child([PY, "-c", "import requests"])
        ship, bare, python_only, cold = [], [], [], []
        before = sim.stats()
        for _ in range(runs):
            r = run_child(cmd)
            check(r, "no-news run --once")
            ship.append(r)
            bare.append(run_child([PY, "-c", "import requests"]))
            python_only.append(run_child([PY, "-c", "pass"]))
        after = sim.stats()
        for _ in range(max(3, runs // 2)):
            r = run_child(cmd, env=NO_BYTECODE_ENV)
            check(r, "no-news run --once, no bytecode")
            cold.append(r)
    req_per_run = (after["requests"] - before["requests"]) / runs
    cold_name = "run --once, nothing new, PYTHONDONTWRITEBYTECODE=1 (info)"
    tok_per_run = (after["token_requests"] - before["token_requests"]) / runs
    res: dict[str, Any] = {"runs": runs, "requests_per_run": req_per_run, "tokens_per_run": tok_per_run}
    rows = []
    for name, rs in (("run --once, nothing new", ship), ('python -c "import requests"', bare),
                     ('python -c "pass"', python_only), (cold_name, cold)):
        res[name] = {"wall": median([r.wall for r in rs]), "cpu": median([r.cpu for r in rs]),
                     "rss_mb": median([r.maxrss_kb for r in rs]) / 1024}
    b = res['python -c "import requests"']
    for name in ("run --once, nothing new", 'python -c "import requests"', 'python -c "pass"', cold_name):
        v = res[name]
        rows.append([name, v["wall"], v["cpu"], v["rss_mb"], v["wall"] / b["wall"], v["cpu"] / b["cpu"]])
    s = res["run --once, nothing new"]
    res["ratio_cpu"], res["ratio_wall"] = s["cpu"] / b["cpu"], s["wall"] / b["wall"]
    res["table"] = table(
        f"Startup: median of {runs} (no-news run: {req_per_run:.0f} API requests + {tok_per_run:.0f} token request)",
        ["command", "wall s", "CPU s", "peak RSS MB", "wall × import requests", "CPU × import requests"], rows)
    return res


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    print(run(a.quick, a.runs)["table"])


if __name__ == "__main__":
    main()

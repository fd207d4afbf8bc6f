"""API efficiency: requests per 1000 events, token requests per hour, 429s and budget use.

    python benchmarks/bench_api.py [--quick]

1. Requests per 1000 events: a catch-up (`run --once`, pacing off, page size 100) of a fresh
   simulator; requests are the simulator's gated API requests (/__sim/stats `requests`), tokens apart.
2. Token requests per hour of daemon time: the daemon (`run --max-runtime D`) against a simulator
   whose tokens live token_ttl seconds (short, so refreshes happen inside the run), with a live
   trickle of events. The measured refresh period is compared with the TokenProvider rule
   (refresh when min(token_refresh_margin, lifetime/2) is left), then extrapolated, clearly labelled,
   to real lifetimes (the guide's 3600 s, Genesys' default 86400 s) with the default 500 s margin.
3. Budget = server limit: the simulator allows N requests per W seconds and the shipper's
   rate_limit.requests_per_minute is exactly N*60/W. A catch-up large enough to last about D
   seconds counts the 429s the server sent and the share of the budget used:
   gated requests / (N/W × wall seconds of the run).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from common import SHIPPER, SimProcess, check, run_child, scratch, table, write_config

DEFAULT_MARGIN = 500.0


def requests_per_1000(events: int) -> dict[str, Any]:
    with SimProcess(events=events) as sim, scratch("api-req") as tmp:
        cfg = write_config(tmp, sim.url)
        r = run_child([*SHIPPER, "run", "--once", "--config", str(cfg)])
        check(r, "catch-up")
        st = sim.stats()
    return {"events": st["events_served"], "requests": st["requests"], "tokens": st["token_requests"],
            "per_1000": st["requests"] * 1000 / max(1, st["events_served"]), "paths": st["paths"]}


def token_rate(seconds: int, ttl: int, interval: str) -> dict[str, Any]:
    with SimProcess(events=2000, token_ttl=ttl, live_rate=2.0, query_delay=0.0) as sim, scratch("api-tok") as tmp:
        cfg = write_config(tmp, sim.url, poll={"interval": interval})
        r = run_child([*SHIPPER, "run", "--max-runtime", f"{seconds}s", "--config", str(cfg)], timeout=seconds + 60)
        check(r, "daemon")
        st = sim.stats()
    unauthorized = len(re.findall(r"\b401\b", r.stderr))
    tokens = st["token_requests"]
    refresh_every = ttl - min(DEFAULT_MARGIN, ttl / 2)
    predicted = 1 + int(r.wall // refresh_every)
    return {"seconds": r.wall, "ttl": ttl, "tokens": tokens, "predicted": predicted,
            "rule_period": refresh_every,
            "per_hour_measured": tokens * 3600 / r.wall, "requests": st["requests"], "interval": interval,
            "queries": st["paths"].get("POST /api/v2/audits/query", 0), "unauthorized": unauthorized,
            "cpu": r.cpu}


def budget_run(limit: int, window: float, seconds: float) -> dict[str, Any]:
    rps = limit / window
    pages = int(rps * seconds)
    events = pages * 100
    with SimProcess(events=events, rate_limit=limit, rate_window=window) as sim, scratch("api-budget") as tmp:
        cfg = write_config(tmp, sim.url, rate_limit={"requests_per_minute": limit * 60 / window})
        r = run_child([*SHIPPER, "run", "--once", "--config", str(cfg)], timeout=seconds * 4 + 120)
        check(r, "budget catch-up")
        st = sim.stats()
    return {"limit": limit, "window": window, "rpm": limit * 60 / window, "events": st["events_served"],
            "requests": st["requests"], "throttled": st["throttled"],
            "violations": st["retry_after_violations"], "wall": r.wall,
            "share": st["requests"] / (rps * r.wall), "ok_share": (st["requests"] - st["throttled"]) / (rps * r.wall)}


def run(quick: bool = False) -> dict[str, Any]:
    res: dict[str, Any] = {}
    res["req"] = requests_per_1000(5000 if quick else 20000)
    res["token"] = token_rate(30 if quick else 75, ttl=20, interval="2s")
    scenarios = [(50, 10.0, 20.0)] if quick else [(50, 10.0, 60.0), (300, 60.0, 90.0)]
    res["budget"] = [budget_run(*s) for s in scenarios]
    q = res["req"]
    t1 = table("API: requests per 1000 events (catch-up, page size 100)",
               ["events", "API requests", "token requests", "requests / 1000 events", "minimum at page 100"],
               [[q["events"], q["requests"], q["tokens"], q["per_1000"], 10.0]])
    t = res["token"]
    per_query = t["requests"] / max(1, t["queries"])
    cycles = t["seconds"] / float(t["interval"].rstrip("s"))
    queries_per_cycle = t["queries"] / max(1.0, cycles)
    rows = [
        [f"MEASURED: daemon {t['seconds']:.0f} s, token_ttl {t['ttl']} s", t["tokens"], t["predicted"],
         f"{t['rule_period']:.0f} s", t["unauthorized"], (t["tokens"] - 1) * 3600 / t["seconds"]],
    ]
    for life in (3600, 86400):
        period = life - min(DEFAULT_MARGIN, life / 2)
        rows.append([f"EXTRAPOLATED: token lifetime {life} s, margin 500 s", "", "", f"{period:.0f} s", "",
                     3600 / period])
    t2 = table("API: token requests per hour of daemon time",
               ["case", "token requests (incl. the first)", "predicted by the refresh rule", "refresh period",
                "401s logged", "refreshes / hour"], rows)
    idle = per_query * queries_per_cycle * 60
    t2 += (f"\n\nDaemon: {t['requests']} API requests for {t['queries']} audit queries ({per_query:.1f} per query:"
           f" submit, status, results) in ~{cycles:.0f} cycles at poll.interval {t['interval']}"
           f" ({queries_per_cycle:.1f} queries per cycle: late re-read + main pass). EXTRAPOLATED to the default"
           f" 60 s interval: {idle:.0f} API requests / hour when idle. Daemon CPU {t['cpu']:.2f} s in"
           f" {t['seconds']:.0f} s.")
    res["idle_requests_per_hour_60s"] = idle
    t3 = table("API: budget equal to the server limit (large catch-up, pacing on)",
               ["server limit", "requests_per_minute", "events", "requests", "429s", "Retry-After violations",
                "wall s", "budget used", "budget used by 2xx"],
               [[f"{b['limit']} / {b['window']:.0f} s", b["rpm"], b["events"], b["requests"], b["throttled"],
                 b["violations"], b["wall"], f"{b['share'] * 100:.1f} %", f"{b['ok_share'] * 100:.1f} %"]
                for b in res["budget"]])
    res["table"] = "\n".join((t1, t2, t3))
    return res


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    print(run(a.quick)["table"])


if __name__ == "__main__":
    main()

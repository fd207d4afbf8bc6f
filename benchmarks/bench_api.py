"""API efficiency: requests per 1000 events, token requests per hour, 429s and budget use.

    python benchmarks/bench_api.py [--quick]

1. Requests per 1000 events: a catch-up (`run --once`, pacing off) of a fresh simulator at the
   default page size (500) and at 100; requests are the simulator's gated API requests
   (/__sim/stats `requests`), tokens apart.
2. Token requests per hour of daemon time: the daemon (`run --max-runtime D`) against a simulator
   whose tokens live token_ttl seconds (short, so refreshes happen inside the run), with a live
   trickle of events. The measured refresh period is compared with the TokenProvider rule
   (refresh when min(token_refresh_margin, lifetime/2) is left), then extrapolated, clearly labelled,
   to real lifetimes (the guide's 3600 s, Genesys' default 86400 s) with the default 500 s margin.
3. Idle daemon: a caught-up daemon with no new events, defaults (late window 30 m, settle 30 s,
   `poll.tail` realtime, and `query` for comparison), run at a short interval; the requests per
   cycle are counted (cycles: the daemon's own `pass done` debug lines of main passes) and multiplied by
   the 60 cycles an hour of the default 60 s interval.
4. Budget = server limit: the simulator allows 300 requests per 60 s (Genesys's documented
   default) and the shipper runs with every default (300 requests per minute, page size 500). A
   200k-event catch-up (quick: 50k) counts the 429s the server sent, events per second against
   the ceiling page size × 300 / 60, and the share of the budget used:
   gated requests / (5 per second × wall seconds of the run).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from common import SHIPPER, SimProcess, check, count_lines, run_child, scratch, table, write_config

DEFAULT_MARGIN = 500.0


def requests_per_1000(events: int, page_size: int) -> dict[str, Any]:
    with SimProcess(events=events) as sim, scratch("api-req") as tmp:
        cfg = write_config(tmp, sim.url, poll={"page_size": page_size})
        r = run_child([*SHIPPER, "run", "--once", "--config", str(cfg)])
        check(r, "catch-up")
        st = sim.stats()
    return {"events": events, "requests": st["requests"], "tokens": st["token_requests"],
            "per_1000": st["requests"] * 1000 / events, "paths": st["paths"], "page_size": page_size}


def idle_requests(tail: str, seconds: int, interval: float = 3.0) -> dict[str, Any]:
    """Requests per hour of a caught-up daemon with every default but the interval."""
    with SimProcess(events=2000, query_delay=0.0) as sim, scratch("api-idle") as tmp:
        poll = {"page_size": 500, "late_window": "30m", "settle_delay": "30s", "tail": tail, "interval": f"{interval}s"}
        cfg = write_config(tmp, sim.url, poll=poll)
        check(run_child([*SHIPPER, "run", "--once", "--config", str(cfg)]), "catch-up")
        before = sim.stats()
        r = run_child([*SHIPPER, "--log-level", "debug", "run", "--max-runtime", f"{seconds}s", "--config", str(cfg)],
                      timeout=seconds + 60)
        check(r, "idle daemon")
        after = sim.stats()
    cycles = len(re.findall(r'"message":"pass done".*"late":false', r.stderr))
    requests = after["requests"] - before["requests"]
    paths = {k: v - before["paths"].get(k, 0) for k, v in after["paths"].items() if v - before["paths"].get(k, 0)}
    per_cycle = requests / max(1, cycles)
    return {"tail": tail, "cycles": cycles, "requests": requests, "per_cycle": per_cycle, "per_hour": per_cycle * 60,
            "paths": paths, "cpu": r.cpu, "seconds": r.wall}


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


def budget_run(events: int, limit: int = 300, window: float = 60.0, page_size: int = 500) -> dict[str, Any]:
    rps = limit / window
    with SimProcess(events=events, rate_limit=limit, rate_window=window, span=7 * 3600.0) as sim, \
            scratch("api-budget") as tmp:
        cfg = write_config(tmp, sim.url, poll={"page_size": page_size, "late_window": "30m"},
                           rate_limit={"requests_per_minute": limit * 60 / window, "backoff_base": "1s",
                                       "backoff_max": "60s"})
        out = tmp / "out.ndjson"
        r = run_child([*SHIPPER, "run", "--once", "--config", str(cfg)], timeout=events / 500 + 300, stdout_path=out)
        check(r, "budget catch-up")
        st = sim.stats()
        written = count_lines(out)
    if written != events:
        raise RuntimeError(f"budget catch-up wrote {written} lines for {events} events")
    ceiling = page_size * rps
    # Rates count the distinct events written: a realtime page that re-anchors inside a burst
    # serves some events twice (`served`), which the ledger drops.
    return {"limit": limit, "window": window, "rpm": limit * 60 / window, "events": written,
            "served": st["events_served"], "requests": st["requests"], "throttled": st["throttled"],
            "violations": st["retry_after_violations"], "wall": r.wall, "page_size": page_size,
            "events_per_s": written / r.wall, "ceiling": ceiling,
            "of_ceiling": written / r.wall / ceiling,
            "per_1000": st["requests"] * 1000 / written,
            "share": st["requests"] / (rps * r.wall), "ok_share": (st["requests"] - st["throttled"]) / (rps * r.wall)}


def run(quick: bool = False) -> dict[str, Any]:
    res: dict[str, Any] = {}
    size = 5000 if quick else 20000
    res["req"] = [requests_per_1000(size, 500), requests_per_1000(size, 100)]
    res["idle"] = [idle_requests(tail, 30 if quick else 60) for tail in ("realtime", "query")]
    res["token"] = token_rate(30 if quick else 75, ttl=20, interval="2s")
    res["budget"] = [budget_run(50_000 if quick else 200_000)]
    t1 = table("API: requests per 1000 events (catch-up)",
               ["page size", "events", "API requests", "token requests", "requests / 1000 events", "minimum"],
               [[q["page_size"], q["events"], q["requests"], q["tokens"], q["per_1000"], 1000 / q["page_size"]]
                for q in res["req"]])
    t_idle = table("API: idle daemon (caught up, no new events; defaults: late window 30 m, settle 30 s)",
                   ["poll.tail", "cycles", "requests", "per cycle", "EXTRAPOLATED per hour at interval 60 s",
                    "requests by path", "CPU s"],
                   [[i["tail"], i["cycles"], i["requests"], i["per_cycle"], i["per_hour"],
                     ", ".join(f"{k} {v}" for k, v in sorted(i["paths"].items())), i["cpu"]] for i in res["idle"]])
    t = res["token"]
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
    res["idle_requests_per_hour_60s"] = res["idle"][0]["per_hour"]
    t3 = table("API: large catch-up at the default budget (server limit 300 / 60 s, every default)",
               ["events written", "served", "page size", "requests", "requests / 1000 ev", "429s",
                "Retry-After violations", "wall s", "events / s", "ceiling (page × 5 / s)", "of ceiling",
                "budget used"],
               [[b["events"], b["served"], b["page_size"], b["requests"], b["per_1000"], b["throttled"], b["violations"],
                 b["wall"],
                 b["events_per_s"], b["ceiling"], f"{b['of_ceiling'] * 100:.1f} %", f"{b['share'] * 100:.1f} %"]
                for b in res["budget"]])
    res["table"] = "\n".join((t1, t_idle, t2, t3))
    return res


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    print(run(a.quick)["table"])


if __name__ == "__main__":
    main()

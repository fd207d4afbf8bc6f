"""End to end: CPU seconds per 10k events of `genesys-audit-shipper run --once` vs the guide poller.

    python benchmarks/bench_e2e.py [--events 50000] [--runs 3] [--page-size 100]

One simulator (its own process, so its CPU is not counted) serves the same history to both. Each
run is a fresh catch-up from an empty state over the whole history, at page size 100 and at 500
(the API's maximum and the shipper's default), client pacing off (requests_per_minute 1,000,000)
so only CPU matters. The shipper runs with its default hash chain (`output.chain: sha256`) and,
as an extra row, with `output.chain: off`, which is what the guide poller does. CPU is user+sys of the child alone
(os.wait4 rusage). Runs alternate shipper/guide; the median is reported. stdout goes to a file
whose lines are counted, to check that both wrote every event.

The backlog is 50k events so the fixed start-up cost (~0.15 s of CPU, a tenth of a 10k-event
run) does not decide the per-event figure; the second table removes it exactly: each client's
no-news run (start, token, one query, an empty page, exit) is measured and subtracted.
"""

from __future__ import annotations

import argparse
from typing import Any

from common import GUIDE, SHIPPER, SimProcess, check, count_lines, median, run_child, scratch, table, write_config


def run(quick: bool = False, events: int | None = None, runs: int | None = None,
        sim: SimProcess | None = None, page_sizes: tuple[int, ...] = (100, 500)) -> dict[str, Any]:
    """One section per page size; `ratio` and `net_ratio` are those of the first."""
    own = sim is None
    events = events or (10000 if quick else 50000)
    sim = sim or SimProcess(events=events)
    try:
        by_size = {size: run_page_size(quick, events, runs, sim, size) for size in page_sizes}
    finally:
        if own:
            sim.stop()
    first = by_size[page_sizes[0]]
    return {**first, "by_page_size": by_size, "table": "\n".join(r["table"] for r in by_size.values())}


def run_page_size(quick: bool, events: int, runs: int | None, sim: SimProcess, page_size: int) -> dict[str, Any]:
    runs = runs or (2 if quick else 3)
    variants: dict[str, list[Any]] = {"shipper": [], "shipper, chain off": [], "guide": [],
                                      "guide --no-session": []}
    before = sim.stats()
    with scratch("e2e") as tmp:
        for i in range(runs):
            for name in variants:
                if name == "guide --no-session" and i > 0:
                    continue  # one run is enough for the extra row
                d = tmp / f"{name.replace(' ', '')}{i}"
                d.mkdir()
                out = d / "out.ndjson"
                if name.startswith("shipper"):
                    chain = "off" if name.endswith("chain off") else "sha256"
                    ship_cfg = write_config(d, sim.url, poll={"page_size": page_size}, output={"chain": chain})
                    if chain == "sha256":
                        cfg = ship_cfg  # the no-news runs below reuse the last default-chain state
                    cmd = [*SHIPPER, "run", "--once", "--config", str(ship_cfg)]
                else:
                    cmd = [*GUIDE, "--url", sim.url, "--since", "8h", "--page-size", str(page_size),
                           "--state", str(d / "cursor.json")]
                    if name.endswith("--no-session"):
                        cmd.append("--no-session")
                r = run_child(cmd, stdout_path=out)
                check(r, name)
                n = count_lines(out)
                out.unlink()
                if n != events:
                    raise RuntimeError(f"{name} wrote {n} lines for {events} events")
                variants[name].append(r)
        # Fixed cost of each client (start, token, one query, an empty page, exit): the shipper's
        # caught-up state from its last run, the guide over a 1 s window with no events.
        fixed: dict[str, list[Any]] = {"shipper": [], "guide": []}
        for _ in range(runs):
            fixed["shipper"].append(run_child([*SHIPPER, "run", "--once", "--config", str(cfg)]))
            fixed["guide"].append(run_child([*GUIDE, "--url", sim.url, "--since", "2s"]))
        for name, rs in fixed.items():
            for r in rs:
                check(r, f"{name} no-news")
    after = sim.stats()
    res: dict[str, Any] = {"events": events, "runs": runs, "page_size": page_size}
    rows = []
    for name, rs in variants.items():
        cpu = median([r.cpu for r in rs])
        per10k = cpu * 10_000 / events
        res[name] = {"cpu": cpu, "per10k": per10k, "user": median([r.user for r in rs]),
                     "sys": median([r.sys for r in rs]), "wall": median([r.wall for r in rs]),
                     "rss_mb": median([r.maxrss_kb for r in rs]) / 1024}
    for name, rs in fixed.items():
        res[name]["fixed_cpu"] = median([r.cpu for r in rs])
        res[name]["net_per10k"] = (res[name]["cpu"] - res[name]["fixed_cpu"]) * 10_000 / events
    ship = res["shipper"]["per10k"]
    for name in variants:
        v = res[name]
        rows.append([name, len(variants[name]), v["user"], v["sys"], v["cpu"], v["per10k"], v["wall"], v["rss_mb"],
                     v["per10k"] / ship])
    res["ratio"] = res["guide"]["per10k"] / ship
    res["ratio_chain_off"] = res["guide"]["per10k"] / res["shipper, chain off"]["per10k"]
    res["net_ratio"] = res["guide"]["net_per10k"] / res["shipper"]["net_per10k"]
    res["requests"] = after["requests"] - before["requests"]
    res["table"] = table(
        f"End to end: {events:,}-event catch-up, page size {page_size}, pacing off, median of {runs}",
        ["client", "runs", "user s", "sys s", "CPU s", "CPU s / 10k ev", "wall s", "peak RSS MB", "× shipper CPU"],
        rows)
    net_rows = [[name, res[name]["fixed_cpu"], res[name]["net_per10k"],
                 res[name]["net_per10k"] / res["shipper"]["net_per10k"]] for name in fixed]
    res["table"] += "\n" + table("End to end, net of fixed cost: (catch-up CPU - no-news run CPU) per 10k events",
                                 ["client", "no-news run CPU s", "net CPU s / 10k ev", "× shipper"], net_rows)
    return res


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int)
    p.add_argument("--runs", type=int)
    p.add_argument("--page-size", type=int, action="append", help="repeat for several (default 100 and 500)")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    print(run(a.quick, a.events, a.runs, page_sizes=tuple(a.page_size or (100, 500)))["table"])


if __name__ == "__main__":
    main()

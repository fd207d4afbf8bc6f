"""Run the project's simulator in its own process, with any SimConfig field.

    python benchmarks/sim_server.py '{"events": 20000, "query_delay": 0.0}'
    python benchmarks/sim_server.py '{"orgs": 50, "events": 2000}'   # org_configs(50, events=2000)

`python -m shipper.simulator` has no flags for query_delay, newest_age, large_fraction and the
like, so the benchmarks start the simulator through this launcher instead. It binds a free
loopback port, prints the URL as its first stdout line (the parent waits for it), and serves until
SIGTERM/SIGINT. Running it in its own process keeps its CPU out of the shipper's child rusage.
Set BENCH_SIM_NAGLE=1 to keep the simulator's original socket options.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from shipper.simulator import SimConfig, Simulator, org_configs


def main(argv: list[str]) -> int:
    fields = json.loads(argv[1]) if len(argv) > 1 else {}
    for key in ("burst_size", "late_delay"):
        if key in fields:
            fields[key] = tuple(fields[key])
    orgs = fields.pop("orgs", 0)
    sim = Simulator(orgs=org_configs(orgs, **fields), port=0) if orgs else Simulator(SimConfig(**fields), port=0)
    # The handler writes headers and body in two sends; with Nagle on, every answer on a kept-alive
    # connection waits ~40 ms for the client's delayed ACK. That is a loopback artifact (it made a
    # no-news run 0.45 s of wall for 0.18 s of CPU), so the benchmarks turn Nagle off.
    if os.environ.get("BENCH_SIM_NAGLE") != "1":
        sim.server.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sim.start()
    print(sim.url, flush=True)
    stop.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

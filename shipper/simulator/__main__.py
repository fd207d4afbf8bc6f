"""python -m shipper.simulator: serve the default org until Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from . import __doc__ as package_doc
from .config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimConfig
from .server import Simulator


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shipper.simulator", description=(package_doc or "").split("\n\n")[0])
    p.add_argument("--port", type=int, default=8089)
    p.add_argument("--events", type=int, default=3000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--span", type=float, default=6 * 3600, help="seconds of history")
    p.add_argument("--live-rate", type=float, default=1.0, help="new events per second")
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--rate-limit", type=int, default=0, help="requests per --rate-window (0: none)")
    p.add_argument("--rate-window", type=float, default=60.0)
    p.add_argument("--token-ttl", type=int, default=86400)
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args(argv)
    sim = Simulator(SimConfig(seed=a.seed, events=a.events, span=a.span, live_rate=a.live_rate,
                              fault_rate=a.fault_rate, rate_limit=a.rate_limit, rate_window=a.rate_window,
                              token_ttl=a.token_ttl, quiet=not a.verbose), port=a.port)
    print(f"simulator listening on {sim.url}  (client id {DEFAULT_CLIENT_ID!r}, secret {DEFAULT_CLIENT_SECRET!r})",
          file=sys.stderr, flush=True)
    try:
        sim.server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

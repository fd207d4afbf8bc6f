"""The `demo` verb: the real program against the built-in simulator, with no credentials."""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

from .. import logs
from ..errors import ConfigError
from ..lifecycle import Lifecycle
from ..orgs import deployment_from_mapping
from ..schemas import SCHEMAS
from ..simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimConfig, Simulator, org_configs
from .run import ship


def cmd_demo(args: argparse.Namespace, lifecycle: Lifecycle) -> int:
    if args.schema not in SCHEMAS or args.schema == "custom":
        names = ", ".join(s for s in SCHEMAS if s != "custom")
        raise ConfigError(f"--schema {args.schema!r} is unknown: use one of {names}")
    if not 1 <= args.orgs <= 100:
        raise ConfigError("--orgs must be between 1 and 100")
    common: dict[str, Any] = {"events": args.events, "span": 2 * 3600, "newest_age": 30, "live_rate": 1.0}
    sims = org_configs(args.orgs, **common) if args.orgs > 1 else [SimConfig(**common)]
    sim = Simulator(orgs=sims).start()
    logs.info("demo: simulator started", url=sim.url, orgs=args.orgs)
    try:
        with tempfile.TemporaryDirectory(prefix="genesys-demo-") as tmp:
            dep = deployment_from_mapping(_demo_config(sim.url, sims, args.schema, tmp), "demo")
            return ship(dep, dep.orgs, lifecycle, lambda rt: lambda: rt.engine.run(once=args.once), once=args.once)
    finally:
        sim.stop()


def _demo_config(url: str, sims: list[SimConfig], schema: str, tmp: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "genesys": {"api_url": url, "login_url": url, "client_id": DEFAULT_CLIENT_ID,
                    "client_secret": DEFAULT_CLIENT_SECRET},
        "poll": {"start_from": "3h", "interval": "2s", "settle_delay": "1s", "late_window": "20s"},
        "state": {"path": f"{tmp}/state.json"},
        "output": {"schema": schema},
    }
    if len(sims) > 1:
        doc["orgs"] = [{"name": f"org{i + 1}", "genesys": {"client_id": s.client_id, "client_secret": s.client_secret}}
                       for i, s in enumerate(sims)]
    return doc

"""Command line: run, demo, check, status, backfill, services. Exit codes are documented in --help."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import EXIT_RUNTIME, ConfigError, ShipperError

if TYPE_CHECKING:
    from .config import Config
    from .engine import Engine
    from .http import HttpClient

EPILOG = """\
exit codes:
  0  ok (also after SIGTERM/SIGINT, --max-runtime, or a closed stdout)
  1  runtime failure (API unreachable after retries, bad credentials, corrupt state)
  2  config or usage error
  3  the state file is locked by another instance

Events go to stdout as NDJSON; logs go to stderr (JSON lines unless stderr is a terminal).
"""
LEVELS = ("debug", "info", "warning", "error")


def _duration(text: str) -> float:
    from .config import parse_duration

    try:
        return float(parse_duration(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    common.add_argument("--log-level", choices=LEVELS, default=argparse.SUPPRESS,
                        help="log verbosity on stderr (default info)")
    cfg_arg = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    cfg_arg.add_argument("--config", "-c", required=True, metavar="FILE", help="YAML config file")

    p = argparse.ArgumentParser(
        prog="genesys-audit-shipper",
        allow_abbrev=False,
        description="Pull Genesys Cloud audit events and print them as NDJSON for Vector or Fluent Bit.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--log-level", choices=LEVELS, default="info", help="log verbosity on stderr (default info)")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True

    run = sub.add_parser("run", parents=[common, cfg_arg], help="ship events (daemon, or --once)",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--once", action="store_true", help="catch up to now minus settle_delay, then exit 0")
    run.add_argument("--max-runtime", type=_duration, metavar="DURATION",
                     help="stop cleanly at a page boundary before this much time (e.g. 55s)")

    demo = sub.add_parser("demo", parents=[common], help="run the real engine against the built-in simulator")
    demo.add_argument("--once", action="store_true", help="catch up once and exit instead of streaming")
    demo.add_argument("--events", type=int, default=500, help="simulated history size (default 500)")
    demo.add_argument("--schema", default="siem", help="output schema (siem, ecs, ocsf, cim, asim, raw)")

    sub.add_parser("check", parents=[common, cfg_arg], help="verify config, credentials, permission, state")
    status = sub.add_parser("status", parents=[common, cfg_arg], help="show position, lag and health")
    status.add_argument("--json", action="store_true", help="print JSON")
    backfill = sub.add_parser("backfill", parents=[common, cfg_arg], help="re-export a past range to stdout")
    backfill.add_argument("--from", dest="start", required=True, metavar="TIME", help="ISO time or lookback, e.g. 7d")
    backfill.add_argument("--to", dest="end", default="0s", metavar="TIME", help="ISO time or lookback (default now)")
    backfill.add_argument("--state", dest="backfill_state", metavar="FILE",
                          help="its own state file, to resume (default: next to state.path)")
    sub.add_parser("services", parents=[common, cfg_arg], help="list service, entity and action names")
    return p


STOP = threading.Event()
ABORT_GRACE_S = 3.0
_active_clients: list[HttpClient] = []


def request_stop(stop: threading.Event = STOP, grace: float = ABORT_GRACE_S) -> None:
    """Stop at the next page boundary; abandon a request still in flight after `grace` seconds."""
    # Event.set takes a lock the interrupted main thread may hold: set it from a helper thread.
    threading.Thread(target=stop.set, daemon=True).start()
    signal.setitimer(signal.ITIMER_REAL, max(grace, 0.01))


def _install_signals(stop: threading.Event = STOP) -> None:
    """SIGTERM/SIGINT: finish the page and stop. A request still in flight after a short grace is
    abandoned (its page was not written, so nothing is lost), so a slow API cannot hold a shutdown."""

    def on_stop(signum: int, _frame: Any) -> None:
        if stop.is_set():
            return  # already stopping: a second Ctrl-C must not re-arm the abort timer
        request_stop(stop)

    def on_alarm(signum: int, _frame: Any) -> None:
        from .errors import Interrupted

        if any(c.in_flight for c in _active_clients):
            raise Interrupted("stop signal: abandoned an HTTP request still in flight")

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGALRM, on_alarm)


def build_client(cfg: Config, stop: threading.Event, max_retries: int | None = None) -> HttpClient:
    """The HTTP client with its TokenProvider attached."""
    from .auth import TokenProvider
    from .config import require_credentials
    from .http import HttpClient

    client_id, secret = require_credentials(cfg)
    g, rl = cfg.genesys, cfg.rate_limit
    client = HttpClient(
        requests_per_minute=rl.requests_per_minute,
        max_retries=rl.max_retries if max_retries is None else max_retries,
        backoff_base=rl.backoff_base, backoff_max=rl.backoff_max, connect_timeout=g.connect_timeout,
        read_timeout=g.read_timeout, proxy=g.proxy, ca_bundle=g.ca_bundle, stop=stop,
        user_agent=f"genesys-audit-shipper/{__version__}",
    )
    tokens = TokenProvider(f"{cfg.login_base}/oauth/token", client_id, secret, margin=g.token_refresh_margin)
    tokens.client = client
    client.tokens = tokens
    _active_clients.append(client)
    return client


def build_engine(cfg: Config, stop: threading.Event, *, state_path: str | None = None,
                 progress: bool = False) -> Engine:
    """Wire config → auth → HTTP client → source → checkpoint → emitter → engine."""
    from .checkpoint import CheckpointStore
    from .emitter import RotatingFileSink, StdoutSink
    from .engine import Engine
    from .metrics import Metrics
    from .sources import build_source

    client = build_client(cfg, stop)
    store = CheckpointStore(state_path or cfg.state.path)
    store.acquire()
    metrics = Metrics(client.stats, cfg.metrics.textfile, cfg.metrics.stats_interval)
    sink = (RotatingFileSink(cfg.output.path, cfg.output.rotate_bytes, cfg.output.keep_files)
            if cfg.output.path else StdoutSink(stop=stop))
    source = build_source(cfg, client)
    reporter = None
    if progress and sys.stderr.isatty():
        from .progress import ProgressLine

        reporter = ProgressLine()
    return Engine(cfg, source, store, sink, stop=stop, metrics=metrics, progress=reporter,
                  request_stop=lambda grace: request_stop(stop, grace), stop_grace=ABORT_GRACE_S)


def cmd_run(args: argparse.Namespace) -> int:
    from .config import load_config

    cfg = load_config(args.config)
    engine = build_engine(cfg, STOP, progress=True)
    engine.load()
    engine.run(once=args.once, max_runtime=args.max_runtime)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from . import logs
    from .config import SCHEMAS, config_from_mapping
    from .simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimConfig, Simulator

    if args.schema not in SCHEMAS or args.schema == "custom":
        raise ConfigError(f"--schema {args.schema!r} is unknown: use one of siem, ecs, ocsf, cim, asim, raw")
    sim = Simulator(SimConfig(events=args.events, span=2 * 3600, newest_age=30, live_rate=1.0)).start()
    logs.info("demo: simulator started", url=sim.url)
    with tempfile.TemporaryDirectory(prefix="genesys-demo-") as tmp:
        cfg = config_from_mapping({
            "genesys": {"api_url": sim.url, "login_url": sim.url, "client_id": DEFAULT_CLIENT_ID,
                        "client_secret": DEFAULT_CLIENT_SECRET},
            "poll": {"start_from": "3h", "interval": "2s", "settle_delay": "1s", "late_window": "20s"},
            "state": {"path": f"{tmp}/state.json"},
            "output": {"schema": args.schema},
        }, "demo")
        engine = build_engine(cfg, STOP)
        engine.load()
        engine.run(once=args.once)
        engine.store.release()
    sim.stop()
    return 0


def dispatch(args: argparse.Namespace) -> int:
    verb = args.verb
    if verb == "run":
        return cmd_run(args)
    if verb == "demo":
        return cmd_demo(args)
    from . import operate

    return int(getattr(operate, f"cmd_{verb}")(args))


def main(argv: list[str] | None = None) -> int:
    from . import logs

    _install_signals()  # first: a SIGTERM during start-up must still mean a clean exit 0
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup_logging(args.log_level)
    try:
        code = dispatch(args)
    except ShipperError as exc:
        logs.fatal(str(exc), exc.exit_code)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 0
    except Exception as exc:  # never a traceback for the user; the detail goes to debug logs
        logs.get_logger().debug("internal error", exc_info=True)
        logs.fatal(f"internal error: {type(exc).__name__}: {str(exc)[:300]} (rerun with --log-level debug "
                   "and report it)", EXIT_RUNTIME)
        code = EXIT_RUNTIME
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    return code


__all__ = ["build_engine", "main"]

"""Command line: argparse and dispatch only. Exit codes are documented in --help."""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import sys
from collections.abc import Callable
from typing import cast

from . import __version__, logs
from .config import parse_duration
from .content.cli import add_arguments as content_arguments
from .errors import EXIT_CONFIG, EXIT_RUNTIME, ShipperError
from .lifecycle import Lifecycle
from .schemas import SCHEMAS
from .sources import SOURCES

EPILOG = """\
exit codes:
  0  ok (also after SIGTERM/SIGINT, --max-runtime, or a closed stdout)
  1  runtime failure (API unreachable after retries, bad credentials, corrupt state)
  2  config or usage error
  3  the state file is locked by another instance

Events go to stdout as NDJSON; logs go to stderr (JSON lines unless stderr is a terminal).
"""
LEVELS = ("debug", "info", "warning", "error")
Command = Callable[[argparse.Namespace, Lifecycle], int]
# Each verb's module is imported when the verb runs: `run` need not load the simulator (demo),
# multiprocessing (verify) or an etcd client, and its start-up stays small.
COMMANDS: dict[str, str] = {
    "run": "shipper.commands.run:cmd_run",
    "demo": "shipper.commands.demo:cmd_demo",
    "backfill": "shipper.commands.run:cmd_backfill",
    "check": "shipper.commands.inspect:cmd_check",
    "status": "shipper.commands.inspect:cmd_status",
    "services": "shipper.commands.inspect:cmd_services",
    "verify": "shipper.commands.verify:cmd_verify",
    "migrate-state": "shipper.commands.state:cmd_migrate",
    "content": "shipper.content.cli:cmd_content",
}


def command(verb: str) -> Command:
    module, _, name = COMMANDS[verb].partition(":")
    return cast(Command, getattr(importlib.import_module(module), name))


def _duration(text: str) -> float:
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
        description="Pull Genesys Cloud audit events and print them as NDJSON for Vector or Fluent Bit. "
                    f"Sources (genesys.api): {', '.join(SOURCES)}. Schemas (output.schema): {', '.join(SCHEMAS)}.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--log-level", choices=LEVELS, default="info", help="log verbosity on stderr (default info)")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True

    run_p = sub.add_parser("run", parents=[common, cfg_arg], help="ship events (daemon, or --once)",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run_p.add_argument("--once", action="store_true", help="catch up to now minus settle_delay, then exit 0")
    run_p.add_argument("--max-runtime", type=_duration, metavar="DURATION",
                       help="stop cleanly at a page boundary before this much time (e.g. 55s)")
    run_p.add_argument("--org", metavar="NAME", help="ship only this org of the config's orgs: list")

    demo = sub.add_parser("demo", parents=[common], help="run the real engine against the built-in simulator")
    demo.add_argument("--once", action="store_true", help="catch up once and exit instead of streaming")
    demo.add_argument("--events", type=int, default=500, help="simulated history size (default 500)")
    shown = ", ".join(s for s in SCHEMAS if s != "custom")
    demo.add_argument("--schema", default="siem", help=f"output schema ({shown})")
    demo.add_argument("--orgs", type=int, default=1, help="simulated orgs, shipped from one process (default 1)")

    check = sub.add_parser("check", parents=[common, cfg_arg], help="verify config, credentials, permission, state")
    check.add_argument("--org", metavar="NAME", help="only this org")
    status = sub.add_parser("status", parents=[common, cfg_arg], help="show position, lag and health")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--org", metavar="NAME", help="only this org")
    backfill = sub.add_parser("backfill", parents=[common, cfg_arg], help="re-export a past range to stdout")
    backfill.add_argument("--from", dest="start", required=True, metavar="TIME", help="ISO time or lookback, e.g. 7d")
    backfill.add_argument("--to", dest="end", default="0s", metavar="TIME", help="ISO time or lookback (default now)")
    backfill.add_argument("--state", dest="backfill_state", metavar="FILE",
                          help="its own state file, to resume (default: next to state.path)")
    backfill.add_argument("--org", metavar="NAME", help="the org to re-export (required with an orgs: list)")
    services = sub.add_parser("services", parents=[common, cfg_arg], help="list service, entity and action names")
    services.add_argument("--org", metavar="NAME", help="the org to ask (default: the first)")
    ver = sub.add_parser("verify", parents=[common], help="prove an export of the SIEM complete and unaltered",
                         description="Checks the sequence numbers and hash chain of exported records. Exit 0: no "
                                     "gap and no break; 1: not proven; 2: unreadable input.")
    ver.add_argument("files", nargs="*", metavar="FILE", help="NDJSON or SIEM exports, any order (default: stdin, -)")
    ver.add_argument("--key-file", action="append", metavar="FILE", help="HMAC key (repeat for rotated keys)")
    ver.add_argument("--drop", action="append", metavar="FIELD", help="a top-level field the SIEM added (repeat)")
    ver.add_argument("--json", action="store_true", help="print the report as JSON")
    ver.add_argument("--config", "-c", metavar="FILE", help="the shipper's config: its state tells the last sequence "
                                                             "written per stream, so a missing tail is a gap too")
    ver.add_argument("--partial", action="store_true", help="the export may start after sequence 1 (SIEM retention)")
    mig = sub.add_parser("migrate-state", parents=[common, cfg_arg],
                         help="move the checkpoints from the state file into etcd, or back (collectors stopped)")
    mig.add_argument("--to", choices=("etcd", "file"), required=True, help="where the state goes")
    mig.add_argument("--org", metavar="NAME", help="only this org")
    mig.add_argument("--force", action="store_true", help="replace a state the target already holds")
    cont = sub.add_parser("content", parents=[common],
                          help="print, write or check the SIEM content generated from the record structs")
    content_arguments(cont)
    return p


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null, so the interpreter's last flush of what stdout could not take stays quiet."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    lifecycle = Lifecycle()
    lifecycle.install_signals()  # first: a SIGTERM during start-up must still mean a clean exit 0
    args = build_parser().parse_args(argv)
    logs.setup_logging(args.log_level)
    try:
        code = command(args.verb)(args, lifecycle)
    except ShipperError as exc:
        logs.fatal(str(exc), exc.exit_code)
        code = exc.exit_code
    except OSError as exc:
        # stdout closed (`>&-`) or full (/dev/full) while a command printed its report.
        reason = "stdout is closed" if exc.errno in (errno.EBADF, errno.EPIPE) else (exc.strerror or str(exc))
        logs.fatal(f"cannot write the report: {reason}", EXIT_RUNTIME)
        code = EXIT_CONFIG if exc.errno == errno.EBADF else EXIT_RUNTIME
        _silence_stdout()
    except Exception as exc:  # never a traceback for the user; the detail goes to debug logs
        logs.get_logger().debug("internal error", exc_info=True)
        logs.fatal(f"internal error: {type(exc).__name__}: {str(exc)[:300]} (rerun with --log-level debug "
                   "and report it)", EXIT_RUNTIME)
        code = EXIT_RUNTIME
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):
        pass
    return code

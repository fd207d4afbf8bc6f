"""A real Fluent Bit on both ends: the harness behind tests/test_delivery.py and benchmarks/bench_delivery.py.

host       A real Fluent Bit runs one shipped template, rewritten only where a test must (`rewrite`):
           storage and tail paths into a temp dir, the shipper command to `python -m shipper run --config
           <test config>`, inputs and outputs to loopback ports, TLS off on loopback, placeholders filled.
receivers  One process per output, so that one can be down while the others run: a real Fluent Bit
           whose `splunk`, `elasticsearch` or `syslog` input writes what it receives to a JSON-lines
           file, and two stand-ins in Python where Fluent Bit cannot be the receiver: the Sentinel Logs
           Ingestion API (Fluent Bit's azure output sends absolute-form request lines, which its own
           http input answers with 400) and a generic NDJSON collector (Fluent Bit's http output sends
           application/x-ndjson, which its own http input answers with 400).
sources    exec: the host runs the shipper. tail: the shipper writes output.path, the host tails it.
           http: the shipper's NDJSON pages are POSTed to the host's http input, and only a 2xx moves
           on to the next page (what the shipper's output.http will do; once it exists,
           `shipper_supports("output.http")` makes the harness run the real shipper instead).
truth      The simulator's own events; each output's share follows the template's tier routes.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
CERT, KEY = DATA / "loopback-cert.pem", DATA / "loopback-key.pem"  # test-only, for 127.0.0.1
LOOPBACK = "127.0.0.1"
PYTHON = sys.executable

# The SIEM-side names the templates promise.
SPLUNK_SOURCETYPE = "genesyscloud:shipper:audit"
SPLUNK_INDEX = "genesys_audit"
ES_INDEX = "logs-genesys_cloud.audit-default"
SENTINEL_STREAM = "Custom-GenesysCloudAudit_CL"
SYSLOG_APP = "genesys-audit"
# The record's own id field for each output.schema (what every template dedupes or keys on).
ID_FIELDS = {"siem": "siem_event_id", "ecs": "event.id", "ocsf": "metadata.uid", "cim": "id",
             "asim": "EventOriginalUid", "raw": "id"}
SECRETS = {"SPLUNK_HEC_TOKEN": "hec-token-for-tests", "AZURE_CLIENT_SECRET": "azure-secret-for-tests",
           "ELASTIC_API_KEY": "elastic-key-for-tests", "HTTP_COLLECTOR_TOKEN": "collector-token-for-tests",
           "INGEST_TOKEN": "ingest-token-for-tests"}


# ---------------------------------------------------------------------------------------------
# The binary


def find_fluent_bit() -> str | None:
    """FLUENT_BIT (a path) wins, else `fluent-bit` on PATH; None when neither exists.

    A FLUENT_BIT that names no executable is an error, not a reason to skip.
    """
    value = os.environ.get("FLUENT_BIT")
    if value:
        path = Path(value).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FileNotFoundError(f"FLUENT_BIT={value!r} is not an executable file")
        return str(path.resolve())
    return shutil.which("fluent-bit")


# ---------------------------------------------------------------------------------------------
# Fluent Bit configs: one model for both formats, and the test rewrite


@dataclass
class Section:
    """One [SERVICE]/[PARSER]/[INPUT]/[FILTER]/[OUTPUT] (or its YAML equivalent).

    Keys are lower-case, in file order. Classic values are strings (a list when a key repeats);
    YAML values are what the YAML holds (routes and processors stay nested).
    """

    kind: str
    props: dict[str, Any]

    @property
    def plugin(self) -> str:
        return str(self.props.get("name", ""))

    @property
    def label(self) -> str:
        alias = self.props.get("alias")
        return f"{self.kind} {self.plugin}" + (f" ({alias})" if alias else "")


@dataclass
class FbConfig:
    fmt: str  # "yaml" or "classic": Fluent Bit chooses by the file extension, and so do we
    sections: list[Section]

    def of(self, kind: str) -> list[Section]:
        return [s for s in self.sections if s.kind == kind]


def config_format(path: Path) -> str:
    return "yaml" if path.suffix in (".yaml", ".yml") else "classic"


def parse_classic(text: str) -> list[Section]:
    sections: list[Section] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            raise ValueError(f"line {lineno}: @-commands are not supported: {line}")
        header = re.fullmatch(r"\[([A-Z_]+)\]", line)
        if header:
            sections.append(Section(header.group(1), {}))
            continue
        if not sections or not raw[:1].isspace():
            raise ValueError(f"line {lineno}: a property must be indented under a [SECTION]: {raw!r}")
        key, _, value = line.partition(" ")
        key, value = key.lower(), value.strip()
        if not value:
            raise ValueError(f"line {lineno}: {key} has no value")
        props = sections[-1].props
        if key in props:
            old = props[key]
            props[key] = [*(old if isinstance(old, list) else [old]), value]
        else:
            props[key] = value
    return sections


def dump_classic(sections: list[Section]) -> str:
    out: list[str] = []
    for section in sections:
        out.append(f"[{section.kind}]")
        width = max((len(k) for k in section.props), default=0)
        for key, value in section.props.items():
            for item in value if isinstance(value, list) else [value]:
                out.append(f"    {key.ljust(width)} {item}")
        out.append("")
    return "\n".join(out)


_YAML_LISTS = (("inputs", "INPUT"), ("filters", "FILTER"), ("outputs", "OUTPUT"))


def parse_yaml(text: str) -> list[Section]:
    doc = yaml.safe_load(text) or {}
    unknown = set(doc) - {"service", "parsers", "pipeline"}
    if unknown:
        raise ValueError(f"top-level keys this harness does not handle: {sorted(unknown)}")

    def section(kind: str, mapping: dict[str, Any]) -> Section:
        return Section(kind, {str(k).lower(): v for k, v in mapping.items()})

    sections = [section("SERVICE", doc.get("service") or {})]
    sections += [section("PARSER", p) for p in doc.get("parsers") or []]
    pipeline = doc.get("pipeline") or {}
    for key, kind in _YAML_LISTS:
        sections += [section(kind, item) for item in pipeline.get(key) or []]
    return sections


def dump_yaml(sections: list[Section]) -> str:
    doc: dict[str, Any] = {}
    services = [s.props for s in sections if s.kind == "SERVICE"]
    if services:
        doc["service"] = services[0]
    parsers = [s.props for s in sections if s.kind == "PARSER"]
    if parsers:
        doc["parsers"] = parsers
    pipeline = {key: [s.props for s in sections if s.kind == kind] for key, kind in _YAML_LISTS}
    doc["pipeline"] = {k: v for k, v in pipeline.items() if v}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)


def load_fb_config(path: Path) -> FbConfig:
    fmt = config_format(path)
    text = path.read_text()
    return FbConfig(fmt, parse_yaml(text) if fmt == "yaml" else parse_classic(text))


def render(cfg: FbConfig) -> str:
    return dump_yaml(cfg.sections) if cfg.fmt == "yaml" else dump_classic(cfg.sections)


@dataclass
class Rewire:
    """Everything a test may change in a shipped template; anything else stays as shipped."""

    storage_path: Path
    exec_command: str | None = None
    http_port: int | None = None
    tail_path: Path | None = None
    tail_db: Path | None = None
    outputs: dict[str, int] = field(default_factory=dict)  # output plugin name -> receiver port
    azure_auth_url: str | None = None  # the Sentinel stand-in's token endpoint
    ca_file: Path | None = None  # trusts the stand-ins' certificate (Sentinel needs TLS)


Change = tuple[str, str, Any, Any]  # (section label, key, old value, new value)
_PLACEHOLDER = re.compile(r"<[^<>]+>")


def rewrite(cfg: FbConfig, wire: Rewire, base_dir: Path) -> list[Change]:
    """Point a shipped template at test paths and loopback receivers, in place; returns the changes.

    Raises ValueError for anything it does not know how to point at a test receiver, so a template
    can never reach out to a placeholder host from a test.
    """
    changes: list[Change] = []

    def put(section: Section, key: str, value: Any) -> None:
        old = section.props.get(key)
        if old != value:
            section.props[key] = value
            changes.append((section.label, key, old, value))

    for section in cfg.sections:
        props, plugin = section.props, section.plugin
        if section.kind == "SERVICE":
            put(section, "storage.path", str(wire.storage_path))
            parsers_file = props.get("parsers_file")
            if isinstance(parsers_file, str) and not Path(parsers_file).is_absolute():
                resolved = (base_dir / parsers_file).resolve()
                if not resolved.is_file():
                    raise ValueError(f"parsers_file {parsers_file} is not beside the template ({resolved})")
                put(section, "parsers_file", str(resolved))
        elif section.kind == "INPUT":
            if plugin == "exec":
                if wire.exec_command is None:
                    raise ValueError("the template runs the shipper (exec input): give Rewire.exec_command")
                put(section, "command", wire.exec_command)
            elif plugin == "http":
                if wire.http_port is None:
                    raise ValueError("the template has an http input: give Rewire.http_port")
                put(section, "listen", LOOPBACK)
                put(section, "port", wire.http_port)
                if "tls" in props:
                    put(section, "tls", "off")
            elif plugin == "tail":
                if wire.tail_path is None or wire.tail_db is None:
                    raise ValueError("the template tails a file: give Rewire.tail_path and tail_db")
                put(section, "path", str(wire.tail_path))
                put(section, "db", str(wire.tail_db))
            else:
                raise ValueError(f"no test rewrite for input {plugin!r}")
        elif section.kind == "OUTPUT":
            if plugin not in wire.outputs:
                raise ValueError(f"no receiver port for output {plugin!r}")
            port = wire.outputs[plugin]
            for key, value in list(props.items()):
                if isinstance(value, str) and _PLACEHOLDER.search(value) and key != "dce_url":
                    put(section, key, _PLACEHOLDER.sub("test", value))
            if plugin == "azure_logs_ingestion":
                # Its client always speaks TLS to the DCE; the token URL may be plain http.
                if wire.azure_auth_url is None or wire.ca_file is None:
                    raise ValueError("Sentinel needs Rewire.azure_auth_url and ca_file")
                put(section, "dce_url", f"https://{LOOPBACK}:{port}")
                put(section, "auth_url", wire.azure_auth_url)
                put(section, "tls.ca_file", str(wire.ca_file))
            else:
                put(section, "host", LOOPBACK)
                put(section, "port", port)
                if "tls" in props:
                    put(section, "tls", "off")
                if plugin == "syslog" and props.get("mode") == "tls":
                    put(section, "mode", "tcp")
    return changes


def rewrite_template(path: Path, wire: Rewire) -> tuple[str, list[Change]]:
    cfg = load_fb_config(path)
    changes = rewrite(cfg, wire, path.parent)
    return render(cfg), changes


def installed(template: Path, where: Path) -> Path:
    """The template as its header installs it: next to parsers.conf when its parsers_file is not
    found beside it in the repository (the sidecar ConfigMap holds both)."""
    service = load_fb_config(template).of("SERVICE")
    parsers_file = service[0].props.get("parsers_file") if service else None
    if not isinstance(parsers_file, str) or (template.parent / parsers_file).is_file():
        return template
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "configs" / "fluent-bit" / Path(parsers_file).name, where)
    return Path(shutil.copy(template, where))


def env_refs(text: str) -> set[str]:
    """The ${VAR} a config uses (comments aside)."""
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", code))


# ---------------------------------------------------------------------------------------------
# The shipped Fluent Bit templates and what each one promises

# The per-SIEM templates of Elasticsearch and Sentinel run the shipper with the schema their content
# is built on (configs/elastic/shipper.yaml, configs/sentinel/shipper.yaml); the others with siem.
SIEM_SCHEMAS = {"elastic": "ecs", "sentinel": "asim"}
ALL_TIERS = None  # every tier
NOT_HIGH_VOLUME = frozenset({"high_value", "standard"})
HIGH_VALUE = frozenset({"high_value"})
PLUGIN_OF = {"splunk": "splunk", "elastic": "es", "sentinel": "azure_logs_ingestion", "syslog": "syslog",
             "http": "http"}


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    path: Path
    source: str  # exec | http | tail
    outputs: dict[str, frozenset[str] | None]  # receiver kind -> the tiers routed there (None: all)
    down: str  # the output whose receiver is down in the output_down scenario
    schema: str | None = None  # the output.schema of the shipper config it runs (None: Settings.schema)

    @property
    def command(self) -> str:
        """The check its header tells users to run."""
        return f"fluent-bit --dry-run -c {self.path.name}"


TEMPLATES: list[TemplateSpec] = [
    TemplateSpec("fluent-bit.example.yaml", REPO / "fluent-bit.example.yaml", "exec",
                 {"splunk": ALL_TIERS, "sentinel": NOT_HIGH_VOLUME, "elastic": ALL_TIERS, "syslog": HIGH_VALUE,
                  "http": ALL_TIERS}, down="sentinel"),
    TemplateSpec("fluent-bit.conf.example", REPO / "fluent-bit.conf.example", "exec",
                 {"splunk": ALL_TIERS, "sentinel": ALL_TIERS, "elastic": ALL_TIERS, "http": ALL_TIERS},
                 down="sentinel"),
    *(TemplateSpec(f"{kind}.conf", REPO / "configs" / "fluent-bit" / f"{kind}.conf", "exec", {kind: ALL_TIERS},
                   down=kind, schema=SIEM_SCHEMAS.get(kind)) for kind in ("splunk", "elastic", "sentinel", "syslog")),
    TemplateSpec("http-input.yaml", REPO / "configs" / "fluent-bit" / "http-input.yaml", "http",
                 {"splunk": ALL_TIERS, "sentinel": NOT_HIGH_VOLUME, "elastic": ALL_TIERS, "http": ALL_TIERS},
                 down="elastic"),
    TemplateSpec("http-input.conf", REPO / "configs" / "fluent-bit" / "http-input.conf", "http",
                 {"splunk": ALL_TIERS, "sentinel": ALL_TIERS, "elastic": ALL_TIERS, "http": ALL_TIERS},
                 down="splunk"),
    TemplateSpec("fluent-bit-tail.conf", REPO / "configs" / "sidecar" / "fluent-bit-tail.conf", "tail",
                 {"splunk": ALL_TIERS}, down="splunk"),
]
SCENARIOS = ("burst", "output_down", "sigterm", "kill9")


def production_routing() -> dict[str, Any]:
    """The tiers of configs/production.yaml, which the templates' routes are written for."""
    doc = yaml.safe_load((REPO / "configs" / "production.yaml").read_text())
    return dict(doc["routing"])


_EVENT_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "service": lambda d: d.get("serviceName"), "entity_type": lambda d: d.get("entityType"),
    "action": lambda d: d.get("action"), "status": lambda d: d.get("status"), "level": lambda d: d.get("level"),
    "user_id": lambda d: (d.get("user") or {}).get("id"),
}


def tier_of(doc: dict[str, Any], routing: dict[str, Any]) -> str:
    """The shipper's rule, restated: the first tier with a rule whose every field matches (glob)."""
    for tier in routing.get("tiers", []):
        for rule in tier["rules"]:
            if all((have := _EVENT_FIELDS[k](doc)) is not None and fnmatchcase(have, want) for k, want in rule.items()):
                return str(tier["tier"])
    return str(routing.get("default_tier", "standard"))


def shipper_supports(key: str) -> bool:
    """Whether the shipper's config accepts a key yet (output.http, output.replay_on_start)."""
    from shipper.config import config_from_mapping
    from shipper.errors import ConfigError

    samples = {"output.http": {"url": f"http://{LOOPBACK}:9/genesys"}, "output.replay_on_start": 1}
    section, _, name = key.partition(".")
    try:
        config_from_mapping({section: {name: samples[key]}}, env={})
    except ConfigError as exc:
        if "unknown key" in str(exc):
            return False
        raise
    return True


# ---------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} listened")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {timeout}s")


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state == "Z"
    return False


def _reap(pids: list[int], timeout: float) -> None:
    """SIGTERM, then SIGKILL what is left: what systemd does to a unit's cgroup after its main process died."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


class Process:
    """A child process (own session) with its output appended to a log file."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.argv, self.log, self.env, self.cwd = argv, log, env, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as fh:
            fh.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(self.argv)}\n".encode())
            self.proc = subprocess.Popen(self.argv, stdout=fh, stderr=subprocess.STDOUT, env=self.env,
                                         cwd=self.cwd, start_new_session=True)
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait (the graceful restart); SIGKILL after `timeout`."""
        if self.proc is None:
            return None
        kids = descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _reap([k for k in kids if not _gone(k)], 15.0)
        return self.proc.returncode

    def kill9(self) -> None:
        """kill -9 of the process alone; then its leftover children get SIGTERM, as under systemd."""
        assert self.proc is not None
        kids = descendants(self.proc.pid)
        self.proc.kill()
        self.proc.wait()
        _reap(kids, 15.0)

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


# ---------------------------------------------------------------------------------------------
# Receivers


class Receiver:
    kind: str
    port: int
    path: Path  # JSON lines, one received record each

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


def receiver_config(kind: str, port: int, out: Path) -> dict[str, Any]:
    """A Fluent Bit receiver: one input, everything it receives to `out` as JSON lines."""
    inputs = {
        "splunk": {"name": "splunk", "splunk_token": SECRETS["SPLUNK_HEC_TOKEN"]},
        "elastic": {"name": "elasticsearch"},
        # The whole frame, unparsed: the test checks it against RFC 5424 itself.
        "syslog": {"name": "syslog", "mode": "tcp", "parser": "raw_frame", "buffer_chunk_size": "256k",
                   "buffer_max_size": "1M"},
    }[kind]
    if kind != "syslog":
        inputs["http_server.buffer_max_size"] = "64M"
    doc: dict[str, Any] = {
        "service": {"flush": 0.5, "grace": 5, "log_level": "warn"},
        "parsers": [{"name": "raw_frame", "format": "regex", "regex": "^(?<frame>.*)$"}],
        "pipeline": {
            "inputs": [{**inputs, "tag": "received", "listen": LOOPBACK, "port": port}],
            "outputs": [{"name": "file", "match": "*", "path": str(out.parent), "file": out.name, "format": "plain"}],
        },
    }
    return doc


class FluentBitReceiver(Receiver):
    def __init__(self, binary: str, kind: str, port: int, work: Path) -> None:
        self.kind, self.port = kind, port
        self.path = work / f"received-{kind}.jsonl"
        self.config = work / f"receiver-{kind}.yaml"
        self.config.write_text(yaml.safe_dump(receiver_config(kind, port, self.path), sort_keys=False))
        self.process = Process([binary, "-c", str(self.config)], work / f"receiver-{kind}.log")

    def start(self) -> None:
        self.process.start()
        wait_port(self.port, proc=self.process.proc)

    def stop(self) -> None:
        self.process.stop(30)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-request (kill -9 of Fluent Bit) is part of the test, not an error to print."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            super().handle_error(request, client_address)


class _Server:
    """A stdlib HTTP(S) server on a fixed loopback port that can stop and start again."""

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], tls: bool) -> None:
        self.port, self.handler, self.tls = port, handler, tls
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        server = _QuietServer((LOOPBACK, self.port), self.handler)
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(CERT), str(KEY))
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self.server = server

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    def body(self) -> bytes:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return gzip.decompress(data) if self.headers.get("Content-Encoding") == "gzip" else data

    def answer(self, status: int, body: bytes = b"", ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Sink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def write(self, records: list[Any]) -> None:
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with self.lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(data)


class HttpCollector(Receiver):
    """Any HTTP collector that takes NDJSON: what the templates' `http` output is for."""

    kind = "http"

    def __init__(self, port: int, work: Path) -> None:
        self.port = port
        self.path = work / "received-http.jsonl"
        sink, token = _Sink(self.path), SECRETS["HTTP_COLLECTOR_TOKEN"]

        class Handler(_Handler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.body()
                if self.headers.get("Authorization") != f"Bearer {token}":
                    self.answer(401, b'{"error":"bad token"}')
                    return
                sink.write([json.loads(line) for line in body.splitlines() if line.strip()])
                self.answer(200, b"{}")

        self.server = _Server(port, Handler, tls=False)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


class SentinelReceiver(Receiver):
    """The Logs Ingestion API: an OAuth token endpoint (plain http) and the DCE (https)."""

    kind = "sentinel"

    def __init__(self, port: int, work: Path) -> None:
        self.port, self.token_port = port, free_port()
        self.path = work / "received-sentinel.jsonl"
        sink = _Sink(self.path)

        class Token(_Handler):
            def do_POST(self) -> None:  # noqa: N802
                form = self.body().decode()
                ok = f"client_secret={SECRETS['AZURE_CLIENT_SECRET']}" in form
                body = {"token_type": "Bearer", "expires_in": 3600, "access_token": "dce-token"} if ok else {}
                self.answer(200 if ok else 401, json.dumps(body).encode())

        class Dce(_Handler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.body()
                path = self.path.split("?", 1)[0]
                if self.headers.get("Authorization") != "Bearer dce-token":
                    self.answer(401)
                elif not path.endswith(f"/streams/{SENTINEL_STREAM}"):
                    self.answer(404, json.dumps({"error": f"no stream at {path}"}).encode())
                else:
                    sink.write(json.loads(body))
                    self.answer(204)

        self.token = _Server(self.token_port, Token, tls=False)
        self.dce = _Server(port, Dce, tls=True)

    @property
    def auth_url(self) -> str:
        return f"http://{LOOPBACK}:{self.token_port}/oauth2/v2.0/token"

    def start(self) -> None:
        self.token.start()
        self.dce.start()

    def stop(self) -> None:
        self.dce.stop()
        self.token.stop()


def make_receiver(binary: str, kind: str, port: int, work: Path) -> Receiver:
    if kind == "sentinel":
        return SentinelReceiver(port, work)
    if kind == "http":
        return HttpCollector(port, work)
    return FluentBitReceiver(binary, kind, port, work)


# ---------------------------------------------------------------------------------------------
# What arrived: ids and the fields each SIEM needs

RFC5424 = re.compile(r"<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\]) (.*)", re.S)
BOM = "\ufeff"


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def get_path(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def unwrap(kind: str, rec: dict[str, Any], id_field: str = "siem_event_id") -> tuple[dict[str, Any] | None, list[str]]:
    """The shipper's record inside what a receiver stored, and what is wrong with the envelope."""
    problems: list[str] = []
    if kind == "splunk":
        for key, want in (("sourcetype", SPLUNK_SOURCETYPE), ("index", SPLUNK_INDEX)):
            if rec.get(key) != want:
                problems.append(f"splunk {key} {rec.get(key)!r}, expected {want!r}")
        doc = rec.get("event")
        if not isinstance(doc, dict):
            return None, [*problems, "splunk event is not the record"]
        if not isinstance(rec.get("time"), (int, float)):
            problems.append("splunk time is missing")
        elif doc.get("siem_timestamp") and abs(rec["time"] - _epoch(doc["siem_timestamp"])) > 0.002:
            problems.append(f"splunk time {rec['time']} is not the event time {doc['siem_timestamp']}")
    elif kind == "elastic":
        meta = rec.pop("@meta", None)
        doc = rec
        if not isinstance(meta, dict) or len(meta) != 1:
            return doc, ["elastic: no bulk action"]
        (op, info), = meta.items()
        if op != "create":
            problems.append(f"elastic op {op!r}, expected create")
        if info.get("_index") != ES_INDEX:
            problems.append(f"elastic _index {info.get('_index')!r}, expected {ES_INDEX!r}")
        if info.get("_id") != get_path(doc, id_field):
            problems.append(f"elastic _id {info.get('_id')!r} is not the event id")
        stamp = doc.get("@timestamp")
        if not stamp or (doc.get("siem_timestamp") and abs(_epoch(stamp) - _epoch(doc["siem_timestamp"])) > 0.002):
            problems.append(f"elastic @timestamp {stamp!r} is not the event time")
    elif kind == "syslog":
        m = RFC5424.fullmatch(str(rec.get("frame", "")))
        if m is None:
            return None, [f"syslog frame is not RFC 5424: {str(rec.get('frame'))[:120]!r}"]
        hostname, app, msg = m.group(3), m.group(4), m.group(8)
        if hostname == "-":
            problems.append("syslog HOSTNAME is nil")
        if app != SYSLOG_APP:
            problems.append(f"syslog APP-NAME {app!r}, expected {SYSLOG_APP!r}")
        try:
            doc = json.loads(msg.removeprefix(BOM))
        except ValueError:
            return None, [*problems, f"syslog MSG is not JSON ({len(msg)} bytes): {msg[:80]!r}"]
    elif kind == "sentinel":
        doc = rec
        if not doc.get("TimeGenerated"):
            problems.append("sentinel TimeGenerated is missing")
    else:
        doc = rec
    if isinstance(doc, dict) and "exec" in doc:
        problems.append(f"{kind}: the raw line `exec` rides along")
    return doc if isinstance(doc, dict) else None, problems


class Tally:
    """Reads a receiver's file as it grows; counts ids and envelope problems."""

    def __init__(self, kind: str, path: Path, id_field: str) -> None:
        self.kind, self.path, self.id_field = kind, path, id_field
        self.offset = 0
        self.ids: Counter[str] = Counter()
        self.problems: Counter[str] = Counter()
        self.records = 0

    def update(self) -> int:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return 0
        end = data.rfind(b"\n") + 1
        self.offset += end
        new = 0
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            new += 1
            try:
                rec = json.loads(line)
            except ValueError:
                self.problems["receiver stored a line that is not JSON"] += 1
                continue
            doc, problems = unwrap(self.kind, rec, self.id_field)
            for p in problems:
                self.problems[re.sub(r"\d{4,}", "N", p)[:160]] += 1
            event_id = get_path(doc, self.id_field) if doc is not None else None
            if event_id is None:
                self.problems[f"{self.kind}: a record without {self.id_field}"] += 1
            else:
                self.ids[str(event_id)] += 1
        self.records += new
        return new


# ---------------------------------------------------------------------------------------------
# Sources of records for http mode


class PagePoster:
    """Plays the shipper's coming output.http: POST one page, move on only after a 2xx, else retry.

    Content-Type is application/json: Fluent Bit 5.1.1's http input answers 400 to
    application/x-ndjson and takes an NDJSON body as application/json.
    """

    def __init__(self, url: str, pages: list[bytes], token: str | None = None, timeout: float = 30.0,
                 interval: float = 0.0) -> None:
        self.url, self.pages, self.timeout, self.interval = url, pages, timeout, interval
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.acked = 0
        self.failures: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        session = requests.Session()
        for page in self.pages:
            attempt = 0
            while not self.stop_event.is_set():
                try:
                    r = session.post(self.url, data=page, headers=self.headers, timeout=self.timeout)
                    self.statuses[r.status_code] += 1
                    if 200 <= r.status_code < 300:
                        break
                    self.failures[f"HTTP {r.status_code}"] += 1
                except requests.RequestException as exc:
                    self.failures[type(exc).__name__] += 1
                    session.close()
                    session = requests.Session()
                attempt += 1
                self.stop_event.wait(random.uniform(0, min(2.0, 0.1 * 2 ** attempt)))  # full jitter
            else:
                return
            self.acked += 1
            self.stop_event.wait(self.interval)  # the API's pace between pages

    @property
    def done(self) -> bool:
        return self.acked == len(self.pages)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)


def pages_of(lines: list[bytes], page_size: int) -> list[bytes]:
    return [b"".join(lines[i:i + page_size]) for i in range(0, len(lines), page_size)]


# ---------------------------------------------------------------------------------------------
# One case: template x scenario


@dataclass
class Settings:
    events: int = 2000
    large_fraction_burst: float = 0.5  # the burst: half the events over 4 KB
    large_fraction: float = 0.2
    page_size: int = 100
    requests_per_minute: float = 1200  # paces the shipper so a backlog lasts a few seconds
    post_interval: float = 0.15  # the same pace for pages POSTed by the test
    down_seconds: float = 60.0
    restart_at: float = 0.3  # restart the host when the first output holds this share of its truth
    kills: int = 3  # kill -9 restarts in the kill9 scenario, each right after a page was handed over
    # FLB_DEV_RB_MS for an exec host in kill9 cases: how often Fluent Bit moves records from a threaded
    # input's ring buffer to its chunks when the ring is under thread.ring_buffer.window (default 250
    # ms). Stretched, every kill -9 finds records waiting there: the loss replay_on_start must cover
    # happens every time instead of in about one kill in four. None: Fluent Bit's own timing.
    ring_buffer_ms: int | None = 2000
    replay: int | None = None  # output.replay_on_start for exec cases (when the shipper has it)
    schema: str = "siem"  # for the templates that do not name theirs (TemplateSpec.schema)
    timeout: float = 300.0
    quiet: float = 40.0  # no new record for this long ends a case (above scheduler.cap 30 s)
    seed: int = 7


@dataclass
class OutputResult:
    output: str
    truth: int
    distinct: int
    lost: int
    duplicates: int
    unexpected: int
    problems: dict[str, int]
    complete_after: float | None  # seconds from the host's first start
    backlog: int = 0  # ids it had received that were still in Fluent Bit's chunks at a kill -9


@dataclass
class CaseResult:
    template: str
    scenario: str
    source: str
    outputs: list[OutputResult]
    restarts: int
    page_size: int
    replay: int | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    work: Path | None = None
    error: str | None = None

    @property
    def lost(self) -> int:
        return sum(o.lost for o in self.outputs)

    @property
    def duplicates(self) -> int:
        return max((o.duplicates for o in self.outputs), default=0)

    @property
    def allowed_duplicates(self) -> int:
        """Per crash or restart: one page, plus the replayed events when output.replay_on_start is on."""
        return (self.page_size + (self.replay or 0)) * self.restarts

    def allowed(self, o: OutputResult) -> int:
        """Repeats the shipper may cause, plus what Fluent Bit's own backlog sends again after a kill -9:
        ids the output had already received that were still in chunk files when Fluent Bit died."""
        return self.allowed_duplicates + o.backlog

    def failures(self) -> list[str]:
        """The acceptance rule: nothing lost, nothing foreign, fields right, repeats within the bound."""
        out = [f"case did not run: {self.error}"] if self.error else []
        for o in self.outputs:
            if o.lost:
                out.append(f"{o.output}: {o.lost} of {o.truth} lost")
            if o.unexpected:
                out.append(f"{o.output}: {o.unexpected} ids that are not in its share of the truth")
            if o.duplicates > self.allowed(o):
                out.append(f"{o.output}: {o.duplicates} duplicates > {self.allowed(o)} allowed "
                           f"({self.restarts} restart(s) x (page {self.page_size} + replay {self.replay or 0})"
                           f" + {o.backlog} in Fluent Bit's backlog)")
            out += [f"{o.output}: {p} (x{n})" for p, n in o.problems.items()]
        return out


def _shipper_config(work: Path, sim_url: str, s: Settings, scenario: str, source: str,
                    extra_output: dict[str, Any], schema: str) -> Path:
    from tests.conftest import write_config

    output: dict[str, Any] = {"schema": schema, **extra_output}
    if source == "exec" and scenario == "kill9" and s.replay:
        output["replay_on_start"] = s.replay
    return write_config(
        work, sim_url,
        poll={"page_size": s.page_size, "start_from": "8h", "interval": "1s", "settle_delay": "1s",
              "late_window": "30s"},
        rate_limit={"requests_per_minute": s.requests_per_minute, "backoff_base": "0.05s", "backoff_max": "1s"},
        routing=production_routing(), output=output)


_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def backlog_ids(storage: Path) -> set[str]:
    """Every UUID in Fluent Bit's chunk files (msgpack keeps strings as they are)."""
    found: set[str] = set()
    for chunk in storage.rglob("*.flb"):
        with contextlib.suppress(OSError):
            found.update(m.decode() for m in _UUID.findall(chunk.read_bytes()))
    return found


def _wait_hand_off(state: Path, poster: PagePoster | None, timeout: float = 30.0) -> str:
    """Block until the shipper hands a page over, so kill -9 lands at the riskiest moment.

    exec and tail: the checkpoint file is replaced (the page was read from the pipe, or fsynced to
    output.path). http: a page was acknowledged with a 2xx.
    """
    deadline = time.monotonic() + timeout
    if poster is not None:
        seen = poster.acked
        while time.monotonic() < deadline:
            if poster.acked != seen:
                return "right after a 2xx for a page"
            time.sleep(0.0005)
        return "(no page acknowledged within the wait)"

    def mark() -> tuple[int, int] | None:
        try:
            st = state.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    seen_mark = mark()
    while time.monotonic() < deadline:
        if mark() != seen_mark:
            return "right after the shipper's checkpoint moved past a page"
        time.sleep(0.0005)
    return "(the checkpoint did not move within the wait)"


def run_case(binary: str, spec: TemplateSpec, scenario: str, root: Path, s: Settings,
             log: Callable[[str], None] = lambda _m: None) -> CaseResult:
    from shipper.simulator import SimConfig, Simulator

    work = root / f"{spec.name.replace('.', '_')}-{scenario}"
    schema = spec.schema or s.schema
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    large = s.large_fraction_burst if scenario == "burst" else s.large_fraction
    sim = Simulator(SimConfig(events=s.events, large_fraction=large, seed=s.seed)).start()
    result = CaseResult(spec.name, scenario, spec.source, [], 0, s.page_size,
                        s.replay if spec.source == "exec" and scenario == "kill9" else None, 0.0, work=work)
    stack = contextlib.ExitStack()
    try:
        stack.callback(sim.stop)
        routing = production_routing()
        tiers = {doc["id"]: tier_of(doc, routing) for doc in sim.all_events()}
        expected = {kind: {i for i, t in tiers.items() if allowed is None or t in allowed}
                    for kind, allowed in spec.outputs.items()}
        ports = {kind: free_port() for kind in spec.outputs}
        receivers = {kind: make_receiver(binary, kind, ports[kind], work) for kind in spec.outputs}
        down = spec.down if scenario == "output_down" else None
        for kind, receiver in receivers.items():
            stack.callback(receiver.stop)
            if kind != down:
                receiver.start()
        id_field = ID_FIELDS[schema]
        tallies = {kind: Tally(kind, r.path, id_field) for kind, r in receivers.items()}

        # the host, as shipped but for what a test must change
        wire = Rewire(storage_path=work / "storage", outputs={PLUGIN_OF[k]: p for k, p in ports.items()},
                      ca_file=CERT)
        if "sentinel" in receivers:
            sentinel = receivers["sentinel"]
            assert isinstance(sentinel, SentinelReceiver)
            wire.azure_auth_url = sentinel.auth_url
        poster: PagePoster | None = None
        shipper: Process | None = None
        if spec.source == "exec":
            cfg = _shipper_config(work, sim.url, s, scenario, "exec", {}, schema)
            wire.exec_command = f"exec {PYTHON} -m shipper run --config {cfg}"
        elif spec.source == "tail":
            ndjson = work / "audit.ndjson"
            cfg = _shipper_config(work, sim.url, s, scenario, "tail", {"path": str(ndjson)}, schema)
            wire.tail_path, wire.tail_db = ndjson, work / "tail.db"
            shipper = Process([PYTHON, "-m", "shipper", "run", "--config", str(cfg)], work / "shipper.log")
        else:
            wire.http_port = free_port()
            url = f"http://{LOOPBACK}:{wire.http_port}/genesys"
            if shipper_supports("output.http"):
                cfg = _shipper_config(work, sim.url, s, scenario, "http", {"http": {"url": url}}, schema)
                shipper = Process([PYTHON, "-m", "shipper", "run", "--config", str(cfg)], work / "shipper.log")
                result.notes.append("source: the shipper's output.http")
            else:
                cfg = _shipper_config(work, sim.url, s, scenario, "http", {}, schema)
                once = subprocess.run([PYTHON, "-m", "shipper", "run", "--once", "--config", str(cfg)],
                                      capture_output=True, timeout=300)
                if once.returncode != 0:
                    raise RuntimeError(f"shipper run --once failed: {once.stderr.decode()[-2000:]}")
                lines = once.stdout.splitlines(keepends=True)
                poster = PagePoster(url, pages_of(lines, s.page_size), token=SECRETS["INGEST_TOKEN"],
                                    interval=s.post_interval)
                result.notes.append(f"source: {len(poster.pages)} pages POSTed by the test (output.http stand-in)")
        text, _changes = rewrite_template(installed(spec.path, work / "etc"), wire)
        host_cfg = work / f"host{'.yaml' if config_format(spec.path) == 'yaml' else '.conf'}"
        host_cfg.write_text(text)
        env = {**os.environ, **SECRETS}
        if scenario == "kill9" and spec.source == "exec" and s.ring_buffer_ms is not None:
            env["FLB_DEV_RB_MS"] = str(s.ring_buffer_ms)
        host = Process([binary, "-c", str(host_cfg)], work / "host.log", env=env, cwd=work)
        stack.callback(host.stop)

        def start_host() -> None:
            host.start()
            if wire.http_port is not None:
                wait_port(wire.http_port, proc=host.proc)

        if shipper is not None and spec.source == "tail":
            shipper.start()
            stack.callback(shipper.stop)
        start_host()
        t0 = time.monotonic()
        if shipper is not None and spec.source == "http":
            shipper.start()
            stack.callback(shipper.stop)
        if poster is not None:
            poster.start()
            stack.callback(poster.stop)
        complete_at: dict[str, float] = {}
        backlog: Counter[str] = Counter()

        def poll() -> int:
            new = sum(t.update() for t in tallies.values())
            now = time.monotonic() - t0
            for kind, tally in tallies.items():
                if kind not in complete_at and expected[kind] <= tally.ids.keys():
                    complete_at[kind] = now
            return new

        def sleep_polling(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                poll()
                time.sleep(min(0.25, max(0.0, end - time.monotonic())))

        # the scenario's action
        if scenario == "output_down":
            sleep_polling(s.down_seconds)
            result.notes.append("healthy outputs complete during the outage: " + ", ".join(
                f"{k} {complete_at[k]:.0f}s" if k in complete_at else f"{k} no"
                for k in receivers if k != down))
            receivers[down].start()
            log(f"{spec.name} {scenario}: {down} receiver up after {s.down_seconds:.0f}s")
        elif scenario in ("sigterm", "kill9"):
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                poll()
                shares = [len(tallies[k].ids.keys() & expected[k]) / max(1, len(expected[k])) for k in tallies]
                if max(shares) >= s.restart_at:
                    break
                time.sleep(0.05)
            if len(complete_at) == len(tallies):
                result.notes.append("the backlog was gone before the restart")
            if scenario == "sigterm":
                code = host.stop(90)
                result.notes.append(f"host exit code after SIGTERM: {code}")
                result.restarts += 1
                start_host()
            else:
                moments: Counter[str] = Counter()
                for _ in range(s.kills):
                    moments[_wait_hand_off(work / "state.json", poster)] += 1
                    host.kill9()
                    result.restarts += 1
                    on_disk = backlog_ids(work / "storage")
                    sleep_polling(1.0)  # what the receivers got before the kill reaches their files
                    for kind, tally in tallies.items():
                        backlog[kind] += len(on_disk & tally.ids.keys())
                    start_host()
                result.notes.append("kill -9 " + "; ".join(f"{n} x {m}" for m, n in moments.items()))
            log(f"{spec.name} {scenario}: {result.restarts} restart(s) done at {time.monotonic() - t0:.1f}s")
        # wait for completion, or for nothing more to come
        last_new, deadline = time.monotonic(), started + s.timeout
        while time.monotonic() < deadline:
            if poll():
                last_new = time.monotonic()
            if len(complete_at) == len(tallies):
                sleep_polling(2.0)  # late repeats
                break
            if time.monotonic() - last_new > s.quiet and (poster is None or poster.done):
                break
            time.sleep(0.25)
        if poster is not None:
            result.notes.append(f"poster: {poster.acked}/{len(poster.pages)} pages acknowledged, statuses "
                                f"{dict(poster.statuses)}, failures {dict(poster.failures)}")
        for kind, tally in tallies.items():
            got = tally.ids
            result.outputs.append(OutputResult(
                output=kind, truth=len(expected[kind]), distinct=len(got.keys() & expected[kind]),
                lost=len(expected[kind] - got.keys()), duplicates=sum(n - 1 for n in got.values()),
                unexpected=len(got.keys() - expected[kind]), problems=dict(tally.problems),
                complete_after=complete_at.get(kind), backlog=backlog[kind]))
        host_log = host.log.read_text(errors="replace") if host.log.exists() else ""
        for needle in ("invalid crc32", "format check failed", "cannot be retried", "[error]"):
            count = host_log.count(needle)
            if count:
                result.notes.append(f"host log: {count} x {needle!r}")
    except Exception as exc:  # a case that cannot run is a failed case, with its reason
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        stack.close()
        result.seconds = time.monotonic() - started
    log(f"{spec.name} {scenario}: done in {result.seconds:.0f}s, lost {result.lost}, duplicates {result.duplicates}")
    return result


def run_matrix(binary: str, specs: list[TemplateSpec], scenarios: tuple[str, ...], root: Path, s: Settings,
               workers: int = 6, log: Callable[[str], None] = lambda _m: None) -> dict[tuple[str, str], CaseResult]:
    """Every template x scenario, `workers` at a time; the long output_down cases start first."""
    cases = [(spec, sc) for sc in sorted(scenarios, key=lambda x: x != "output_down") for spec in specs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {(spec.name, sc): pool.submit(run_case, binary, spec, sc, root, s, log) for spec, sc in cases}
        return {key: f.result() for key, f in futures.items()}


def format_matrix(results: dict[tuple[str, str], CaseResult]) -> str:
    header = ("template", "scenario", "output", "truth", "received", "lost", "dups", "allowed", "restarts", "secs")
    rows = [header]
    for (template, scenario), r in results.items():
        if r.error:
            rows.append((template, scenario, "-", "-", "-", "-", "-", "-", str(r.restarts), f"{r.seconds:.0f}"))
            continue
        for o in r.outputs:
            rows.append((template, scenario, o.output, str(o.truth), str(o.distinct), str(o.lost), str(o.duplicates),
                         str(r.allowed(o)), str(r.restarts), f"{r.seconds:.0f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"{t} {sc}: {n}" for (t, sc), r in results.items() for n in ([r.error] if r.error else []) + r.notes]
    return "\n".join(lines + ([""] + notes if notes else []))


def iter_cases(specs: list[TemplateSpec], scenarios: tuple[str, ...]) -> Iterator[tuple[TemplateSpec, str]]:
    for spec in specs:
        for scenario in scenarios:
            yield spec, scenario

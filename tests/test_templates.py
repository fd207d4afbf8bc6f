"""The host templates (Vector, Fluent Bit, sidecar, systemd) and the shipped shipper configs.

Every template is parsed (TOML, YAML, Fluent Bit classic with a small parser below) and checked:
- each place that starts our CLI passes flags that exist (parsed with shipper.cli.build_parser);
- the options that make delivery safe are set (exec mode, JSON decoding, dedupe, tiers, disk buffers…);
- every Vector component option exists in Vector 0.57's own reference (name, type, enum, required),
  and every `inputs` entry names a component output;
- Fluent Bit keys are checked against the plugins' known keys, and records are routed through the
  filters to prove every tier reaches an output.
Every checker returns a list of problems; the mutation tests at the end feed it broken configs to
prove that each check reports what it should.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from shipper.cli import build_parser
from shipper.config import Config, load_config
from shipper.schemas.siem import SiemRecord

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SHIPPER = "genesys-audit-shipper"
CONFIG_PATH = "/etc/genesys-audit-shipper/config.yaml"
EVENT_ID = "siem_event_id"
TIERS = ("high_value", "standard", "high_volume")
MIN_DISK_BUFFER = 268435488
MAX_LINE_BYTES = Config().output.max_line_bytes  # 65536, what the host must accept
SIEM_FIELDS = frozenset(SiemRecord.__struct_fields__)  # the keys of one record in the default schema

VECTOR_MAIN = REPO / "vector.toml.example"
VECTOR_SIEMS = {"splunk": "splunk_hec_logs", "sentinel": "azure_logs_ingestion", "elastic": "elasticsearch",
                "syslog": "socket"}
FB_CLASSIC = REPO / "fluent-bit.conf.example"
FB_YAML = REPO / "fluent-bit.yaml.example"
FB_PARSERS = CONFIGS / "fluent-bit" / "parsers.conf"
FB_SIEMS = {"splunk": "splunk", "sentinel": "azure_logs_ingestion", "elastic": "es", "syslog": "syslog"}
SHIPPER_YAMLS = [CONFIGS / "minimal.yaml", CONFIGS / "full.yaml", CONFIGS / "production.yaml",
                 CONFIGS / "sidecar" / "shipper.yaml", CONFIGS / "systemd" / "config.yaml"]


# ---------------------------------------------------------------------------------------------
# Shared helpers


def cli_problems(argv: list[str], where: str, *, once: bool | None = None) -> list[str]:
    """Problems with an argv that should start `genesys-audit-shipper run --config ...`."""
    if not argv or Path(argv[0]).name != SHIPPER:
        return [f"{where}: does not start {SHIPPER}: {argv!r}"]
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit:
        return [f"{where}: the CLI rejects {argv[1:]!r}"]
    problems = []
    if args.verb != "run":
        problems.append(f"{where}: verb is {args.verb!r}, not run")
    elif once is not None and args.once != once:
        problems.append(f"{where}: --once is {'missing' if once else 'set'}")
    return problems


def parse_cli(argv: list[str]) -> Any:
    return build_parser().parse_args(argv[1:])


def shell_argv(command: str) -> list[str]:
    """What /bin/sh -c runs for a simple command line (`exec` replaces the shell)."""
    words = shlex.split(command)
    return words[1:] if words[:1] == ["exec"] else words


def env_refs(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}", text))


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load keeps the last of two equal keys silently; templates must not have any."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_all(path: Path) -> list[Any]:
    return list(yaml.load_all(path.read_text(), Loader=UniqueKeyLoader))  # noqa: S506 - SafeLoader subclass


def shipper_config(path: Path) -> Config:
    """load_config with every ${VAR} the file references set (to a harmless value)."""
    env = {name: f"/run/{name.lower()}" for name in env_refs(path.read_text())}
    return load_config(path, env=env)


# ---------------------------------------------------------------------------------------------
# Vector: validation against Vector 0.57's component reference


def _reference_path() -> Path | None:
    name = "vector-0.57-components.json"
    for base in (REPO.parent / "shared" / "reference", Path("/work/shared/reference")):
        if (base / name).is_file():
            return base / name
    return None


@cache
def vector_reference() -> dict[str, Any]:
    path = _reference_path()
    if path is None:
        pytest.skip("vector-0.57-components.json not found in ../shared/reference beside the repository")
    return json.loads(path.read_text())


VECTOR_TOP_LEVEL = {"data_dir", "secret", "sources", "transforms", "sinks", "api", "enrichment_tables", "schema",
                    "healthchecks", "acknowledgements", "timezone", "log_schema", "proxy", "expire_metrics_secs"}
SECRET_BACKENDS = {"file": {"path"}, "directory": {"path", "remove_trailing_whitespace"},
                   "exec": {"command", "timeout", "protocol"}, "aws_secrets_manager": {"secret_id", "region", "auth"}}
# Untagged enums the reference flattens into "all required": one of each group is enough.
ONE_OF = ({"match", "ignore"},)
# AWS credential variants of `auth` (strategy aws) are alternatives, none of them mandatory.
OPTIONAL_ALTERNATIVES = {"access_key_id", "secret_access_key", "assume_role", "credentials_file"}
_COND = re.compile(r'(\w+) = \\?"([^"\\]+)')


def relevant(condition: str, siblings: dict[str, Any]) -> bool:
    pairs = _COND.findall(condition)
    if not pairs:
        raise ValueError(f"cannot read relevant_when {condition!r}")
    return any(str(siblings.get(key)) == value for key, value in pairs)


def type_ok(value: Any, types: list[str]) -> bool:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    checks = {
        "string": isinstance(value, str),
        "uint": is_int and value >= 0,
        "int": is_int,
        "float": is_int or isinstance(value, float),
        "bool": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
        "ascii_char": isinstance(value, str) and len(value) == 1 and value.isascii(),
        "condition": isinstance(value, (str, dict)),
    }
    unknown = set(types) - checks.keys()
    if unknown:
        raise ValueError(f"unknown reference type(s) {unknown}")
    return any(checks[t] for t in types)


def check_options(spec: dict[str, Any], values: dict[str, Any], where: str, problems: list[str]) -> None:
    for key, value in values.items():
        opt = spec.get(key, spec.get("*"))
        path = f"{where}.{key}"
        if opt is None:
            problems.append(f"{path}: unknown option")
            continue
        if "relevant_when" in opt and not relevant(opt["relevant_when"], values):
            problems.append(f"{path}: only valid when {opt['relevant_when']}")
        if not type_ok(value, opt["types"]):
            problems.append(f"{path}: expected {'/'.join(opt['types'])}, got {type(value).__name__} {value!r}")
        elif "enum" in opt and isinstance(value, str) and value not in opt["enum"]:
            problems.append(f"{path}: {value!r} is not one of {opt['enum']}")
        if isinstance(value, dict) and "options" in opt:
            check_options(opt["options"], value, path, problems)
        if isinstance(value, list) and opt["types"] == ["array"] and not all(
                isinstance(v, (str, int, float, bool)) for v in value):
            problems.append(f"{path}: array items must be scalars")
    for key, opt in spec.items():
        if key == "*" or not opt.get("required") or key in values or key in OPTIONAL_ALTERNATIVES:
            continue
        if "relevant_when" in opt and not relevant(opt["relevant_when"], values):
            continue
        group = next((g for g in ONE_OF if key in g), None)
        if group and group & values.keys():
            continue
        problems.append(f"{where}.{key}: required option missing")


def component_outputs(cfg: dict[str, Any]) -> set[str]:
    outputs = set(cfg.get("sources", {}))
    for cid, comp in cfg.get("transforms", {}).items():
        if comp.get("type") == "route":
            outputs |= {f"{cid}.{name}" for name in comp.get("route", {})}
            if comp.get("reroute_unmatched", True):
                outputs.add(f"{cid}._unmatched")
        else:
            outputs.add(cid)
    return outputs


def walk_strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, str):
        return [(path, node)]
    if isinstance(node, dict):
        return [item for k, v in node.items() for item in walk_strings(v, f"{path}.{k}" if path else k)]
    if isinstance(node, list):
        return [item for i, v in enumerate(node) for item in walk_strings(v, f"{path}[{i}]")]
    return []


def vector_problems(cfg: dict[str, Any]) -> list[str]:
    """Everything Vector 0.57 itself would reject, plus graph and secret hygiene."""
    ref = vector_reference()
    problems = [f"{key}: unknown top-level key" for key in cfg if key not in VECTOR_TOP_LEVEL]
    ids: dict[str, tuple[str, dict[str, Any]]] = {}
    for kind in ("sources", "transforms", "sinks"):
        for cid, comp in cfg.get(kind, {}).items():
            if cid in ids:
                problems.append(f"{kind}.{cid}: component id used twice")
            ids[cid] = (kind, comp)
            ctype = comp.get("type")
            if ctype not in ref[kind]:
                problems.append(f"{kind}.{cid}: unknown {kind[:-1]} type {ctype!r}")
                continue
            spec = {**ref["common"][kind], **ref[kind][ctype]}
            check_options(spec, {k: v for k, v in comp.items() if k != "type"}, f"{kind}.{cid}", problems)
    outputs = component_outputs(cfg)
    consumed: set[str] = set()
    for cid, (kind, comp) in ids.items():
        if kind == "sources":
            continue
        if not comp.get("inputs"):
            problems.append(f"{kind}.{cid}: no inputs")
        for name in comp.get("inputs", []):
            consumed.add(name)
            if name not in outputs:
                problems.append(f"{kind}.{cid}: input {name!r} is not a component output")
    problems += [f"output {name!r} goes nowhere" for name in sorted(outputs - consumed)]
    backends = cfg.get("secret", {})
    for name, backend in backends.items():
        allowed = SECRET_BACKENDS.get(backend.get("type"))
        if allowed is None:
            problems.append(f"secret.{name}: unknown backend type {backend.get('type')!r}")
        else:
            problems += [f"secret.{name}.{k}: unknown option" for k in backend if k not in allowed | {"type"}]
    for path, text in walk_strings({k: v for k, v in cfg.items() if k != "secret"}):
        if "${" in text:
            problems.append(f"{path}: ${{...}} interpolation is off in Vector 0.57; use SECRET[backend.key]")
        for backend in re.findall(r"SECRET\[([A-Za-z0-9_]+)\.[A-Za-z0-9_.-]+\]", text):
            if backend not in backends:
                problems.append(f"{path}: secret backend {backend!r} is not defined under [secret]")
    return problems


def upstream(cfg: dict[str, Any], name: str) -> list[list[str]]:
    """Every chain of component ids from a sink/transform back to a source."""
    cid = name.split(".")[0]
    for kind in ("sources", "transforms", "sinks"):
        if cid in cfg.get(kind, {}):
            comp = cfg[kind][cid]
            if kind == "sources":
                return [[cid]]
            return [[cid, *chain] for inp in comp.get("inputs", []) for chain in upstream(cfg, inp)]
    return [[cid, "<missing>"]]


def vector_contract_problems(cfg: dict[str, Any], text: str, *, source_type: str = "exec") -> list[str]:
    """What our pipeline needs from a Vector config, beyond Vector's own validity."""
    problems: list[str] = []
    sources = {cid: s for cid, s in cfg.get("sources", {}).items() if s.get("type") == source_type}
    if len(sources) != 1:
        return [f"expected one {source_type} source, found {len(sources)}"]
    (src_id, src), = sources.items()
    if source_type == "exec":
        if src.get("mode") != "streaming":
            problems.append(f"sources.{src_id}.mode: {src.get('mode')!r}, expected streaming (a daemon)")
        if src.get("decoding", {}).get("codec") != "json":
            problems.append(f"sources.{src_id}.decoding.codec must be json (default bytes)")
        if src.get("include_stderr") is not False:
            problems.append(f"sources.{src_id}.include_stderr must be false (default true)")
        argv = src.get("command", [])
        problems += cli_problems(argv, f"sources.{src_id}.command", once=False)
        if not problems and parse_cli(argv).config != CONFIG_PATH:
            problems.append(f"sources.{src_id}.command: --config is not {CONFIG_PATH}")
        max_length = src.get("framing", {}).get("newline_delimited", {}).get("max_length", 102400)
        if max_length < MAX_LINE_BYTES:
            problems.append(f"sources.{src_id}: framing max_length {max_length} < {MAX_LINE_BYTES}")
        problems += scheduled_alternative_problems(text, src_id)
    transforms = cfg.get("transforms", {})
    dedupes = [t for t in transforms.values() if t.get("type") == "dedupe"]
    if not any(d.get("fields", {}).get("match") == [EVENT_ID] for d in dedupes):
        problems.append(f"no dedupe transform with fields.match = [{EVENT_ID!r}]")
    routes = {cid: t for cid, t in transforms.items() if t.get("type") == "route"}
    if not routes:
        problems.append("no route transform")
    for cid, route in routes.items():
        for name, cond in route.get("route", {}).items():
            if not re.fullmatch(rf'\.audit_tier == "{re.escape(name)}"', str(cond)):
                problems.append(f"transforms.{cid}.route.{name}: {cond!r} does not route on .audit_tier")
        missing = set(TIERS) - set(route.get("route", {}))
        if missing:
            problems.append(f"transforms.{cid}: no route for tier(s) {sorted(missing)}")
    sinks = cfg.get("sinks", {})
    if not sinks:
        problems.append("no sinks")
    for cid, sink in sinks.items():
        buffer = sink.get("buffer", {})
        if buffer.get("type") != "disk":
            problems.append(f"sinks.{cid}.buffer.type must be disk")
        if buffer.get("max_size", 0) < MIN_DISK_BUFFER:
            problems.append(f"sinks.{cid}.buffer.max_size must be >= {MIN_DISK_BUFFER}")
        if buffer.get("when_full", "block") != "block":
            problems.append(f"sinks.{cid}.buffer.when_full drops events")
        if sink.get("type") == "azure_monitor_logs":
            problems.append(f"sinks.{cid}: azure_monitor_logs is deprecated; use azure_logs_ingestion")
        if sink.get("type") == "elasticsearch" and sink.get("id_key") != EVENT_ID:
            problems.append(f"sinks.{cid}.id_key must be {EVENT_ID!r} so replays overwrite")
        if sink.get("type") == "socket" and sink.get("encoding", {}).get("codec") != "syslog":
            problems.append(f"sinks.{cid}.encoding.codec must be syslog")
        for name in sink.get("inputs", []):
            for chain in upstream(cfg, name):
                kinds = [transforms.get(c, {}).get("type") for c in chain]
                if "dedupe" not in kinds or "route" not in kinds or chain[-1] != src_id:
                    problems.append(f"sinks.{cid}: path {' <- '.join(chain)} skips dedupe or route")
    return problems


def scheduled_alternative_problems(text: str, source_id: str = "genesys_audit") -> list[str]:
    """The commented `mode = "scheduled"` alternative must be a valid --once run within the interval."""
    section = re.search(rf"(?ms)^\[sources\.{re.escape(source_id)}\]$(.*?)(?=^\[|\Z)", text)
    if section is None:
        return [f"no [sources.{source_id}] section"]
    commented = "\n".join(m.group(1) for m in re.finditer(r"(?m)^#\s?(\w[\w.]* = .+)$", section.group(1)))
    try:
        alt = tomllib.loads(commented)
    except tomllib.TOMLDecodeError as exc:
        return [f"commented scheduled alternative is not TOML: {exc}"]
    if alt.get("mode") != "scheduled" or "command" not in alt:
        return ["no commented scheduled alternative (mode, command)"]
    argv = alt["command"]
    problems = cli_problems(argv, "scheduled alternative", once=True)
    if problems:
        return problems
    runtime = parse_cli(argv).max_runtime
    interval = alt.get("scheduled", {}).get("exec_interval_secs", 60)
    if runtime is None or runtime >= interval:
        problems.append(f"scheduled alternative: --max-runtime {runtime} must be below the interval {interval}s")
    return problems


def load_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


# ---------------------------------------------------------------------------------------------
# Fluent Bit: a classic-format parser, the YAML equivalent, and the checks


Section = tuple[str, dict[str, list[str]]]


def parse_fluent_bit_classic(text: str) -> list[Section]:
    """[SECTION] headers and indented `key value` lines; a key may repeat (rule, header)."""
    sections: list[Section] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            raise ValueError(f"line {lineno}: @-commands are not supported here: {line}")
        header = re.fullmatch(r"\[([A-Z_]+)\]", line)
        if header:
            sections.append((header.group(1), {}))
            continue
        if not raw[:1].isspace() or not sections:
            raise ValueError(f"line {lineno}: a property must be indented under a [SECTION]: {raw!r}")
        key, _, value = line.partition(" ")
        value = value.strip()
        if not value:
            raise ValueError(f"line {lineno}: {key} has no value")
        if " #" in value:
            raise ValueError(f"line {lineno}: no inline comments in classic configs: {value!r}")
        sections[-1][1].setdefault(key.lower(), []).append(value)
    return sections


def _fb_value(value: Any) -> list[str]:
    if isinstance(value, list):
        return [v for item in value for v in _fb_value(item)]
    if isinstance(value, bool):
        return ["on" if value else "off"]
    return [str(value)]


def fluent_bit_yaml_sections(doc: dict[str, Any]) -> list[Section]:
    def section(name: str, mapping: dict[str, Any]) -> Section:
        return name, {str(k).lower(): _fb_value(v) for k, v in mapping.items()}

    unknown = set(doc) - {"service", "parsers", "pipeline"}
    if unknown:
        raise ValueError(f"unknown top-level sections {unknown}")
    sections = [section("SERVICE", doc.get("service", {}))]
    sections += [section("PARSER", p) for p in doc.get("parsers", [])]
    pipeline = doc.get("pipeline", {})
    for key, name in (("inputs", "INPUT"), ("filters", "FILTER"), ("outputs", "OUTPUT")):
        sections += [section(name, item) for item in pipeline.get(key, [])]
    return sections


def fb_get(props: dict[str, list[str]], key: str, default: str | None = None) -> str | None:
    values = props.get(key)
    return values[-1] if values else default


def fb_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}.get(value.lower())


def fb_size(value: str) -> int:
    """Fluent Bit sizes ("128k", "64M"); the smaller 1000-based reading, to be safe."""
    m = re.fullmatch(r"(\d+)\s*([kKmMgG]?)[bB]?", value)
    if not m:
        raise ValueError(f"not a size: {value!r}")
    return int(m.group(1)) * {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[m.group(2).lower()]


# Keys from the plugins' config maps (Fluent Bit 5.1 source), to catch typos without the binary.
FB_COMMON = {
    "SERVICE": {"flush", "grace", "daemon", "log_level", "log_file", "parsers_file", "plugins_file", "http_server",
                "http_listen", "http_port", "health_check", "hc_errors_count", "hc_retry_failure_count",
                "hc_period", "storage.path", "storage.sync", "storage.checksum", "storage.backlog.mem_limit",
                "storage.max_chunks_up", "storage.metrics", "storage.delete_irrecoverable_chunks",
                "scheduler.base", "scheduler.cap"},
    "PARSER": {"name", "format", "regex", "time_key", "time_format", "time_keep", "time_offset", "time_strict",
               "types", "decode_field", "decode_field_as", "skip_empty_values", "time_system_timezone"},
    "INPUT": {"name", "tag", "alias", "threaded", "storage.type", "mem_buf_limit", "log_level",
              "storage.pause_on_chunks_overlimit"},
    "FILTER": {"name", "match", "match_regex", "alias", "log_level"},
    "OUTPUT": {"name", "match", "match_regex", "alias", "retry_limit", "workers", "storage.total_limit_size",
               "log_level", "host", "port", "tls", "tls.verify", "tls.ca_file", "tls.crt_file", "tls.key_file",
               "tls.vhost", "net.keepalive", "net.connect_timeout"},
}
FB_PLUGINS = {
    ("INPUT", "exec"): {"command", "parser", "interval_sec", "interval_nsec", "buf_size", "oneshot",
                        "exit_after_oneshot", "propagate_exit_code"},
    ("INPUT", "tail"): {"path", "exclude_path", "parser", "db", "db.locking", "db.sync", "db.journal_mode",
                        "read_from_head", "buffer_chunk_size", "buffer_max_size", "skip_long_lines",
                        "skip_empty_lines", "refresh_interval", "rotate_wait", "path_key", "offset_key"},
    ("FILTER", "parser"): {"key_name", "parser", "preserve_key", "reserve_data", "unescape_key"},
    ("FILTER", "rewrite_tag"): {"rule", "emitter_name", "emitter_storage.type", "emitter_mem_buf_limit"},
    ("FILTER", "record_modifier"): {"record", "remove_key", "allowlist_key", "uuid_key"},
    ("OUTPUT", "splunk"): {"splunk_token", "http_user", "http_passwd", "http_buffer_size", "compress", "channel",
                           "event_key", "event_host", "event_source", "event_sourcetype", "event_sourcetype_key",
                           "event_index", "event_index_key", "event_field", "splunk_send_raw"},
    ("OUTPUT", "azure_logs_ingestion"): {"tenant_id", "client_id", "client_secret", "dce_url", "dcr_id",
                                         "table_name", "time_key", "time_generated", "compress"},
    ("OUTPUT", "es"): {"index", "type", "http_user", "http_passwd", "http_api_key", "cloud_id", "cloud_auth",
                       "id_key", "suppress_type_name", "write_operation", "generate_id", "logstash_format",
                       "logstash_prefix", "replace_dots", "trace_error", "trace_output", "buffer_size",
                       "pipeline", "compress"},
    ("OUTPUT", "syslog"): {"mode", "syslog_format", "syslog_maxsize", "syslog_severity_key",
                           "syslog_facility_key", "syslog_hostname_key", "syslog_appname_key",
                           "syslog_procid_key", "syslog_msgid_key", "syslog_sd_key", "syslog_message_key"},
    ("OUTPUT", "http"): {"uri", "format", "json_date_key", "json_date_format", "header", "http_user",
                         "http_passwd", "compress", "allow_duplicated_headers", "log_response_payload"},
}
FB_ENUMS = {
    "storage.type": {"memory", "filesystem"}, "emitter_storage.type": {"memory", "filesystem"},
    "format": {"json", "json_lines", "json_stream", "msgpack", "gelf", "regex", "logfmt", "ltsv"},
    "syslog_format": {"rfc3164", "rfc5424"}, "mode": {"tcp", "udp", "tls"},
    "write_operation": {"create", "index", "update", "upsert"}, "storage.sync": {"normal", "full"},
}
SAMPLE_TIME = "2026-01-15T00:00:00.123Z"


def fb_rules(props: dict[str, list[str]]) -> list[tuple[str, str, str, bool]]:
    rules = []
    for rule in props.get("rule", []):
        key, regex, tag, keep = rule.split()
        rules.append((key, regex, tag, fb_bool(keep) is True))
    return rules


def fb_route(sections: list[Section], tiers: tuple[str, ...] = (*TIERS, "custom tier")
             ) -> list[tuple[str, frozenset[str], str]]:
    """Send one record per tier through the filters; returns (final tag, record keys, tier)."""
    inputs = [p for name, p in sections if name == "INPUT"]
    filters = [p for name, p in sections if name == "FILTER"]
    finals: list[tuple[str, frozenset[str], str]] = []
    for inp in inputs:
        keys0 = set(SIEM_FIELDS) if fb_get(inp, "parser") else {"log" if fb_get(inp, "name") == "tail" else "exec"}
        for tier in tiers:
            pending = [(fb_get(inp, "tag", ""), set(keys0))]
            hops = 0
            while pending:
                tag, keys = pending.pop()
                hops += 1
                assert hops < 50, "rewrite_tag loop"
                rewritten = False
                for f in filters:
                    if not fb_matches(f, tag):
                        continue
                    kind = fb_get(f, "name")
                    if kind == "parser" and fb_get(f, "key_name") in keys:
                        key_name = fb_get(f, "key_name")
                        keys = set(SIEM_FIELDS) | (keys if fb_bool(fb_get(f, "reserve_data")) else set())
                        keys = keys | {key_name} if fb_bool(fb_get(f, "preserve_key")) else keys - {key_name}
                    elif kind == "record_modifier":
                        keys -= set(f.get("remove_key", []))
                    elif kind == "rewrite_tag":
                        for key, regex, new_tag, keep in fb_rules(f):
                            if key.lstrip("$") in keys and re.search(regex, tier):
                                m = re.search(regex, tier)
                                assert m is not None
                                new = re.sub(r"\$(\d)", lambda g, m=m: m.group(int(g.group(1))), new_tag)
                                pending.append((new, set(keys)))
                                rewritten = not keep
                                break
                        if rewritten:
                            break
                if not rewritten:
                    finals.append((tag, frozenset(keys), tier))
    return finals


def fb_matches(props: dict[str, list[str]], tag: str) -> bool:
    pattern = fb_get(props, "match")
    if pattern is not None:
        return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), tag) is not None
    regex = fb_get(props, "match_regex")
    return regex is not None and re.search(regex, tag) is not None


def fluent_bit_problems(sections: list[Section], text: str, *, parsers: list[Section] | None = None,
                        input_kind: str = "exec") -> list[str]:
    problems: list[str] = []
    names = [name for name, _ in sections]
    if names.count("SERVICE") != 1:
        problems.append("expected exactly one [SERVICE]")
    service = next((p for name, p in sections if name == "SERVICE"), {})
    all_parsers = [p for name, p in [*(parsers or []), *sections] if name == "PARSER"]
    if "PARSER" in names and parsers is not None:
        problems.append("[PARSER] in a classic main file is refused; use parsers_file")
    # keys and enumerated values
    for name, props in sections + (parsers or []):
        kind = fb_get(props, "name")
        allowed = FB_COMMON.get(name, set()) | FB_PLUGINS.get((name, kind or ""), set())
        if name in ("INPUT", "FILTER", "OUTPUT") and (name, kind) not in FB_PLUGINS:
            problems.append(f"[{name}] {kind}: plugin not covered by this test")
        for key, values in props.items():
            if key not in allowed:
                problems.append(f"[{name}] {kind}: unknown key {key!r}")
            if len(values) > 1 and key not in ("rule", "header", "remove_key", "record"):
                problems.append(f"[{name}] {kind}: {key} set {len(values)} times")
            if key in FB_ENUMS and values[-1] not in FB_ENUMS[key]:
                problems.append(f"[{name}] {kind}: {key} {values[-1]!r} is not one of {sorted(FB_ENUMS[key])}")
    if not fb_get(service, "storage.path"):
        problems.append("[SERVICE] storage.path is not set: storage.type filesystem needs it")
    # the input
    inputs = [p for name, p in sections if name == "INPUT"]
    if len(inputs) != 1 or fb_get(inputs[0], "name") != input_kind:
        return [*problems, f"expected one [INPUT] {input_kind}"]
    inp = inputs[0]
    if fb_get(inp, "storage.type") != "filesystem":
        problems.append("[INPUT] storage.type must be filesystem (paused inputs lose lines)")
    if input_kind == "exec":
        buf = fb_get(inp, "buf_size", "4096")
        assert buf is not None
        if fb_size(buf) < MAX_LINE_BYTES:
            problems.append(f"[INPUT] buf_size {buf} is below output.max_line_bytes {MAX_LINE_BYTES}")
        if fb_bool(fb_get(inp, "oneshot")) is not True:
            problems.append("[INPUT] oneshot must be true for the daemon")
        if fb_bool(fb_get(inp, "threaded")) is not True:
            problems.append("[INPUT] threaded must be on, or the daemon blocks the engine")
        argv = shell_argv(fb_get(inp, "command") or "")
        problems += cli_problems(argv, "[INPUT] command", once=False)
        if not problems and parse_cli(argv).config != CONFIG_PATH:
            problems.append(f"[INPUT] command: --config is not {CONFIG_PATH}")
        problems += interval_alternative_problems(text)
    else:
        size = fb_get(inp, "buffer_max_size", "32k")
        assert size is not None
        if fb_size(size) < MAX_LINE_BYTES:
            problems.append(f"[INPUT] buffer_max_size {size} is below output.max_line_bytes {MAX_LINE_BYTES}")
        if not fb_get(inp, "db"):
            problems.append("[INPUT] tail needs a db to remember positions")
    # the parser
    parser_names = [fb_get(inp, "parser")] + [fb_get(f, "parser") for n, f in sections
                                                if n == "FILTER" and fb_get(f, "name") == "parser"]
    used = [n for n in parser_names if n]
    if not used:
        problems.append("no JSON parser is used")
    for parser_name in used:
        parser = next((p for p in all_parsers if fb_get(p, "name") == parser_name), None)
        if parser is None:
            problems.append(f"parser {parser_name!r} is not defined")
            continue
        problems += parser_problems(parser)
    # outputs and routing
    outputs = [p for name, p in sections if name == "OUTPUT"]
    for out in outputs:
        if fb_get(out, "retry_limit") != "no_limits":
            problems.append(f"[OUTPUT] {fb_get(out, 'name')}: retry_limit must be no_limits (default 1)")
        if fb_get(out, "name") == "http" and fb_get(out, "format") != "json_lines":
            problems.append("[OUTPUT] http: format must be json_lines")
    rewrites = [f for n, f in sections if n == "FILTER" and fb_get(f, "name") == "rewrite_tag"]
    if not any(key == "$audit_tier" for f in rewrites for key, *_ in fb_rules(f)):
        problems.append("no rewrite_tag rule on $audit_tier")
    for f in rewrites:
        if fb_get(f, "emitter_storage.type") != "filesystem":
            problems.append(f"rewrite_tag {fb_get(f, 'emitter_name')}: emitter_storage.type must be filesystem")
    finals = fb_route(sections)
    for tag, keys, tier in finals:
        hits = [o for o in outputs if fb_matches(o, tag)]
        if not hits:
            problems.append(f"tier {tier!r} ends as tag {tag!r}, which no output matches")
        for out in hits:
            need = {"id_key", "syslog_message_key"} & out.keys()
            for option in need:
                field = fb_get(out, option)
                if field not in keys:
                    problems.append(f"[OUTPUT] {fb_get(out, 'name')}: {option} {field!r} is not in records of {tag}")
        if "exec" in keys and not all(fb_get(o, "syslog_message_key") == "exec" for o in hits):
            problems.append(f"records of {tag} still carry the raw line `exec` to a non-syslog output")
    for out in outputs:
        if not any(fb_matches(out, tag) for tag, _, _ in finals):
            problems.append(f"[OUTPUT] {fb_get(out, 'name')}: matches no tag the pipeline produces")
        if fb_get(out, "name") == "syslog":
            if not fb_get(out, "syslog_message_key"):
                problems.append("[OUTPUT] syslog: syslog_message_key is required (else the message is empty)")
            if fb_size(fb_get(out, "syslog_maxsize", "2048") or "2048") < MAX_LINE_BYTES:
                problems.append("[OUTPUT] syslog: syslog_maxsize (default 2048) cuts audit events")
        if fb_get(out, "name") == "es":
            if fb_get(out, "id_key") != EVENT_ID:
                problems.append(f"[OUTPUT] es: id_key must be {EVENT_ID!r}")
            if fb_get(out, "write_operation", "create") == "create":
                problems.append("[OUTPUT] es: write_operation create turns replays into endless conflicts")
    return problems


def parser_problems(parser: dict[str, list[str]]) -> list[str]:
    problems = []
    name = fb_get(parser, "name")
    if fb_get(parser, "format") != "json":
        problems.append(f"parser {name}: format must be json")
    if fb_get(parser, "time_key") != "siem_timestamp":
        problems.append(f"parser {name}: time_key must be siem_timestamp (the event's time)")
    if fb_bool(fb_get(parser, "time_keep")) is not True:
        problems.append(f"parser {name}: time_keep must be on (the default removes siem_timestamp)")
    fmt = fb_get(parser, "time_format") or ""
    try:
        parsed = datetime.strptime(SAMPLE_TIME, fmt.replace("%L", "%f"))
    except ValueError:
        problems.append(f"parser {name}: time_format {fmt!r} does not read {SAMPLE_TIME}")
    else:
        if parsed.tzinfo is None or parsed != datetime(2026, 1, 15, 0, 0, 0, 123000, tzinfo=timezone.utc):
            problems.append(f"parser {name}: time_format {fmt!r} reads {SAMPLE_TIME} as {parsed}")
    return problems


def interval_alternative_problems(text: str) -> list[str]:
    """The commented interval alternative must be a valid --once run that ends within interval_sec."""
    commands = re.findall(r"(?m)^\s*#\s*command:?\s+(.+?)\s*$", text)
    intervals = re.findall(r"(?m)^\s*#\s*interval_sec:?\s+(\d+)\s*$", text)
    if not commands or not intervals:
        return ["no commented interval alternative (interval_sec, command ... --once)"]
    argv = shell_argv(commands[0])
    problems = cli_problems(argv, "interval alternative", once=True)
    if problems:
        return problems
    runtime = parse_cli(argv).max_runtime
    if runtime is None or runtime >= int(intervals[0]):
        problems.append(f"interval alternative: --max-runtime {runtime} must be below interval_sec {intervals[0]}")
    return problems


def fb_parsers_file(sections: list[Section], config: Path) -> list[Section]:
    service = next(p for name, p in sections if name == "SERVICE")
    rel = fb_get(service, "parsers_file")
    assert rel, f"{config.name}: [SERVICE] parsers_file is not set"
    path = (config.parent / rel) if not rel.startswith("/") else Path(rel)
    assert path.resolve() == FB_PARSERS.resolve(), f"{config.name}: parsers_file {rel} is not {FB_PARSERS}"
    return parse_fluent_bit_classic(path.read_text())


def load_fb_classic(path: Path) -> tuple[list[Section], list[Section]]:
    sections = parse_fluent_bit_classic(path.read_text())
    return sections, fb_parsers_file(sections, path)


# ---------------------------------------------------------------------------------------------
# Shipper YAML configs


@pytest.mark.parametrize("path", SHIPPER_YAMLS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_shipper_yaml_loads(path: Path) -> None:
    cfg = shipper_config(path)
    assert cfg.genesys.client_id, "every shipped config names its client id"
    assert cfg.genesys.client_secret or cfg.genesys.client_secret_file


def test_shipper_yaml_env_refs_are_required() -> None:
    """load_config must fail without the variables: proves shipper_config's env really matters."""
    from shipper.errors import ConfigError

    with pytest.raises(ConfigError, match="GENESYS_CLIENT_ID"):
        load_config(CONFIGS / "minimal.yaml", env={})


def _field_paths(struct: type[msgspec.Struct], prefix: str = "") -> set[str]:
    paths = set()
    for field in msgspec.structs.fields(struct):
        sub = field.type
        if isinstance(sub, type) and issubclass(sub, msgspec.Struct) and field.name not in ("match",):
            paths |= _field_paths(sub, f"{prefix}{field.name}.")
        else:
            paths.add(f"{prefix}{field.name}")
    return paths


def _yaml_paths(node: Any, prefix: str = "") -> set[str]:
    if isinstance(node, dict) and node:
        return {p for k, v in node.items() for p in _yaml_paths(v, f"{prefix}{k}.")}
    return {prefix[:-1]}


def test_full_yaml_lists_every_key_with_its_default() -> None:
    text = (CONFIGS / "full.yaml").read_text()
    written = _yaml_paths(yaml.safe_load(text))
    missing = {p for p in _field_paths(Config) - written
               if not re.search(rf"(?m)^\s*#\s*{re.escape(p.split('.')[-1])}:", text)}
    assert not missing, f"full.yaml does not mention {sorted(missing)}"
    unknown = written - _field_paths(Config)
    assert not unknown, f"full.yaml sets keys the config does not have: {sorted(unknown)}"
    got = msgspec.structs.asdict(shipper_config(CONFIGS / "full.yaml"))
    want = msgspec.structs.asdict(Config())
    for section, values in want.items():
        mine = msgspec.structs.asdict(got[section])
        theirs = msgspec.structs.asdict(values)
        if section == "genesys":
            for key in ("client_id", "client_secret"):
                mine.pop(key)
                theirs.pop(key)
        assert mine == theirs, f"full.yaml {section}: not the defaults"


# ---------------------------------------------------------------------------------------------
# Vector templates

VECTOR_FILES = [VECTOR_MAIN, *(CONFIGS / "vector" / f"{name}.toml" for name in VECTOR_SIEMS)]


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name)
def test_vector_config_is_valid_for_vector_057(path: Path) -> None:
    cfg = load_toml(path)
    assert vector_problems(cfg) == []
    assert vector_contract_problems(cfg, path.read_text()) == []


def test_vector_example_has_every_siem_sink() -> None:
    sinks = {s["type"] for s in load_toml(VECTOR_MAIN)["sinks"].values()}
    assert sinks == set(VECTOR_SIEMS.values())


@pytest.mark.parametrize("name", sorted(VECTOR_SIEMS))
def test_vector_siem_config_has_its_sink(name: str) -> None:
    cfg = load_toml(CONFIGS / "vector" / f"{name}.toml")
    assert [s["type"] for s in cfg["sinks"].values()] == [VECTOR_SIEMS[name]]


def test_vector_sidecar_file_source() -> None:
    path = CONFIGS / "sidecar" / "vector-file.toml"
    cfg = load_toml(path)
    assert vector_problems(cfg) == []
    assert vector_contract_problems(cfg, path.read_text(), source_type="file") == []
    (src,) = cfg["sources"].values()
    shipper = shipper_config(CONFIGS / "sidecar" / "shipper.yaml")
    assert shipper.output.path
    assert any(Path(shipper.output.path).match(pattern) for pattern in src["include"])
    assert src["max_line_bytes"] >= shipper.output.max_line_bytes
    assert src.get("read_from") == "beginning"


# ---------------------------------------------------------------------------------------------
# Fluent Bit templates


def test_fluent_bit_classic_example() -> None:
    sections, parsers = load_fb_classic(FB_CLASSIC)
    assert fluent_bit_problems(sections, FB_CLASSIC.read_text(), parsers=parsers) == []
    kinds = {fb_get(p, "name") for name, p in sections if name == "OUTPUT"}
    assert kinds == {"splunk", "azure_logs_ingestion", "es", "syslog", "http"}


def test_fluent_bit_yaml_example() -> None:
    (doc,) = load_yaml_all(FB_YAML)
    sections = fluent_bit_yaml_sections(doc)
    assert fluent_bit_problems(sections, FB_YAML.read_text()) == []


def fb_normalized(sections: list[Section]) -> list[Section]:
    """Sections with on/true/yes spelled one way, without parsers_file (YAML inlines the parsers)."""
    def norm(value: str) -> str:
        flag = fb_bool(value)
        return value if flag is None else ("on" if flag else "off")

    return [(name, {k: [norm(v) for v in vs] for k, vs in props.items() if k != "parsers_file"})
            for name, props in sections]


def classic_as_yaml_order() -> list[Section]:
    classic, parsers = load_fb_classic(FB_CLASSIC)
    return [s for s in classic if s[0] == "SERVICE"] + parsers + [s for s in classic if s[0] != "SERVICE"]


def test_fluent_bit_yaml_is_the_same_pipeline_as_classic() -> None:
    (doc,) = load_yaml_all(FB_YAML)
    assert fb_normalized(fluent_bit_yaml_sections(doc)) == fb_normalized(classic_as_yaml_order())


@pytest.mark.parametrize("name", sorted(FB_SIEMS))
def test_fluent_bit_siem_config(name: str) -> None:
    path = CONFIGS / "fluent-bit" / f"{name}.conf"
    sections, parsers = load_fb_classic(path)
    assert fluent_bit_problems(sections, path.read_text(), parsers=parsers) == []
    assert [fb_get(p, "name") for n, p in sections if n == "OUTPUT"] == [FB_SIEMS[name]]


def test_fluent_bit_sidecar_tail() -> None:
    path = CONFIGS / "sidecar" / "fluent-bit-tail.conf"
    sections = parse_fluent_bit_classic(path.read_text())
    parsers = parse_fluent_bit_classic(FB_PARSERS.read_text())
    assert fluent_bit_problems(sections, path.read_text(), parsers=parsers, input_kind="tail") == []
    tail = next(p for n, p in sections if n == "INPUT")
    shipper = shipper_config(CONFIGS / "sidecar" / "shipper.yaml")
    assert fb_get(tail, "path") == shipper.output.path
    assert fb_size(fb_get(tail, "buffer_max_size") or "0") >= shipper.output.max_line_bytes


# ---------------------------------------------------------------------------------------------
# Kubernetes sidecar Pod


def _mount_for(container: dict[str, Any], path: str) -> dict[str, Any] | None:
    mounts = [m for m in container.get("volumeMounts", []) if path == m["mountPath"]
              or path.startswith(m["mountPath"].rstrip("/") + "/")]
    return max(mounts, key=lambda m: len(m["mountPath"]), default=None)


def test_sidecar_pod() -> None:
    docs = load_yaml_all(CONFIGS / "sidecar" / "pod.yaml")
    (pod,) = [d for d in docs if d and d.get("kind") == "Pod"]
    claims = {d["metadata"]["name"] for d in docs if d and d.get("kind") == "PersistentVolumeClaim"}
    spec = pod["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    shipper_c, agent = (next(c for c in spec["containers"] if c["name"] == n) for n in ("shipper", "fluent-bit"))
    argv = [*shipper_c["command"], *shipper_c.get("args", [])]
    assert cli_problems(argv, "shipper container", once=False) == []
    cfg_path = parse_cli(argv).config
    cfg_mount = _mount_for(shipper_c, cfg_path)
    assert cfg_mount and "configMap" in volumes[cfg_mount["name"]]
    shipper = shipper_config(CONFIGS / "sidecar" / "shipper.yaml")
    # the handoff: an emptyDir written by the shipper and read by the agent at the same path
    assert shipper.output.path
    out_mount = _mount_for(shipper_c, shipper.output.path)
    assert out_mount and "emptyDir" in volumes[out_mount["name"]]
    agent_mount = _mount_for(agent, shipper.output.path)
    assert agent_mount and agent_mount["name"] == out_mount["name"] and agent_mount.get("readOnly")
    # the checkpoint and the agent's positions survive the Pod
    state_mount = _mount_for(shipper_c, shipper.state.path)
    assert state_mount and volumes[state_mount["name"]]["persistentVolumeClaim"]["claimName"] in claims
    tail_conf = parse_fluent_bit_classic((CONFIGS / "sidecar" / "fluent-bit-tail.conf").read_text())
    tail_db = fb_get(next(p for n, p in tail_conf if n == "INPUT"), "db") or ""
    db_mount = _mount_for(agent, tail_db)
    assert db_mount and "persistentVolumeClaim" in volumes[db_mount["name"]]
    # credentials and env the configs refer to are provided
    assert shipper.genesys.client_secret_file
    secret_mount = _mount_for(shipper_c, shipper.genesys.client_secret_file)
    assert secret_mount and "secret" in volumes[secret_mount["name"]]
    shipper_env = {e["name"] for e in shipper_c.get("env", [])}
    assert env_refs((CONFIGS / "sidecar" / "shipper.yaml").read_text()) <= shipper_env
    agent_env = {e["name"] for e in agent.get("env", [])}
    assert env_refs((CONFIGS / "sidecar" / "fluent-bit-tail.conf").read_text()) <= agent_env
    agent_conf = agent["args"][agent["args"].index("-c") + 1]
    conf_mount = _mount_for(agent, agent_conf)
    assert conf_mount and "configMap" in volumes[conf_mount["name"]]
    # hardening
    assert spec["securityContext"]["runAsNonRoot"] is True
    for c in spec["containers"]:
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["readOnlyRootFilesystem"] is True


# ---------------------------------------------------------------------------------------------
# systemd unit

UNIT = CONFIGS / "systemd" / "genesys-audit-shipper.service"
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
             "PrivateDevices": "yes", "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": "",
             "RestrictNamespaces": "yes", "LockPersonality": "yes", "ProtectKernelTunables": "yes"}


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            current = sections.setdefault(header.group(1), {})
            continue
        assert current is not None and "=" in line, f"bad unit line {raw!r}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_systemd_unit() -> None:
    unit = parse_unit(UNIT.read_text())
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"][-1])
    assert cli_problems(argv, "ExecStart", once=False) == []
    assert parse_cli(argv).config == CONFIG_PATH
    for key, value in HARDENING.items():
        assert service.get(key, [None])[-1] == value, f"{key}={value} is missing"
    assert "User" in service or service.get("DynamicUser") == ["yes"]
    cfg = shipper_config(CONFIGS / "systemd" / "config.yaml")
    assert Path(cfg.state.path).parent == Path("/var/lib") / service["StateDirectory"][-1]
    assert cfg.output.path and Path(cfg.output.path).parent == Path("/var/log") / service["LogsDirectory"][-1]
    credential = service["LoadCredential"][-1].split(":")[0]
    assert (CONFIGS / "systemd" / "config.yaml").read_text().count(f"${{CREDENTIALS_DIRECTORY}}/{credential}") == 1
    assert service["KillSignal"] == ["SIGTERM"]
    assert "2" in service["RestartPreventExitStatus"][-1].split()


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    script = Path(os.environ.get("VIRTUAL_ENV", "/usr")) / "bin" / SHIPPER
    exe = shutil.which(SHIPPER) or str(script)
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(f"/usr/local/bin/{SHIPPER}", exe))
    result = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# Real binaries, when present


@pytest.mark.parametrize("path", [FB_CLASSIC, FB_YAML, *(CONFIGS / "fluent-bit" / f"{n}.conf" for n in FB_SIEMS)],
                         ids=lambda p: p.name)
def test_fluent_bit_dry_run(path: Path) -> None:
    binary = shutil.which("fluent-bit")
    if binary is None:
        pytest.skip("fluent-bit is not on PATH (not in Debian's archive, PyPI or npm; no other downloads here)")
    env = {**os.environ, "SPLUNK_HEC_TOKEN": "x", "AZURE_CLIENT_SECRET": "x", "ELASTIC_API_KEY": "x",
           "HTTP_COLLECTOR_TOKEN": "x"}
    result = subprocess.run([binary, "--dry-run", "-c", str(path)], capture_output=True, text=True, timeout=60,
                            env=env, cwd=path.parent)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", [*VECTOR_FILES, CONFIGS / "sidecar" / "vector-file.toml"], ids=lambda p: p.name)
def test_vector_validate(path: Path) -> None:
    binary = shutil.which("vector")
    if binary is None:
        pytest.skip("vector is not on PATH (not in Debian's archive, PyPI or npm; no other downloads here)")
    result = subprocess.run([binary, "validate", "--no-environment", str(path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# The checks can fail: broken configs must be reported


def _vector_main() -> dict[str, Any]:
    return copy.deepcopy(load_toml(VECTOR_MAIN))


def _mutate(cfg: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()
VECTOR_BREAKAGES = [
    ("sources.genesys_audit.include_stdrr", False, "include_stdrr: unknown option"),
    ("sinks.splunk.default_token", _DELETE, "sinks.splunk.default_token: required option missing"),
    ("sinks.elastic.mode", "bulky", "'bulky' is not one of"),
    ("sinks.splunk.buffer.max_size", "1GB", "buffer.max_size: expected uint"),
    ("sources.genesys_audit.framing.method", "bytes", "framing.newline_delimited: only valid when"),
    ("sinks.syslog.inputs", ["genesys_audit_syslog"], "input 'genesys_audit_syslog' is not a component output"),
    ("sinks.elastic.inputs", ["genesys_audit_tiers.high-value", "genesys_audit_tiers.standard",
                              "genesys_audit_tiers._unmatched"], "'genesys_audit_tiers.high-value' is not"),
    ("sinks.elastic.inputs", ["genesys_audit_tiers.standard"], "'genesys_audit_tiers.high_volume' goes nowhere"),
    ("sinks.sentinel.type", "azure_monitor_logz", "unknown sink type 'azure_monitor_logz'"),
    ("sinks.sentinel.auth.azure_client_secret", _DELETE, "auth.azure_client_secret: required option missing"),
    ("sinks.splunk.default_token", "SECRET[vault.hec]", "secret backend 'vault' is not defined"),
    ("sinks.splunk.endpoint", "${SPLUNK_URL}", "interpolation is off"),
    ("transforms.genesys_audit_dedupe.fields", {}, "fields.match: required option missing"),
    ("transforms.genesys_audit_dedupe.cache.num_events", -5, "cache.num_events: expected uint"),
    ("secret.genesys_audit.paht", "/x", "secret.genesys_audit.paht: unknown option"),
    ("sinks.syslog.encoding.syslog.rfc", "rfc9999", "'rfc9999' is not one of"),
    ("sinks.syslog.tls", {"enabled": True, "verify_certs": True}, "tls.verify_certs: unknown option"),
]


@pytest.mark.parametrize(("path", "value", "expected"), VECTOR_BREAKAGES, ids=[b[2][:40] for b in VECTOR_BREAKAGES])
def test_vector_validator_reports(path: str, value: Any, expected: str) -> None:
    cfg = _vector_main()
    _mutate(cfg, path, value)
    problems = vector_problems(cfg)
    assert any(expected in p for p in problems), problems


CONTRACT_BREAKAGES = [
    ("sources.genesys_audit.mode", "scheduled", "expected streaming"),
    ("sources.genesys_audit.decoding", {"codec": "bytes"}, "decoding.codec must be json"),
    ("sources.genesys_audit.include_stderr", True, "include_stderr must be false"),
    ("sources.genesys_audit.command", ["genesys-audit-shipper", "run", "--cfg", CONFIG_PATH], "CLI rejects"),
    ("sources.genesys_audit.command", ["genesys-audit-shipper", "status", "--config", CONFIG_PATH], "not run"),
    ("sources.genesys_audit.command", ["genesys-audit-shipper", "run", "--config", CONFIG_PATH, "--once"],
     "--once is set"),
    ("sources.genesys_audit.command", ["shipper", "run", "--config", CONFIG_PATH], "does not start"),
    ("sources.genesys_audit.framing.newline_delimited.max_length", 4096, "framing max_length 4096"),
    ("transforms.genesys_audit_dedupe.fields.match", ["id"], "no dedupe transform"),
    ("transforms.genesys_audit_tiers.route.high_value", '.tier == "high_value"', "does not route on .audit_tier"),
    ("sinks.elastic.id_key", _DELETE, "id_key must be"),
    ("sinks.splunk.buffer.type", "memory", "sinks.splunk.buffer.type must be disk"),
    ("sinks.sentinel.buffer.max_size", 1000000, "buffer.max_size must be >= 268435488"),
    ("sinks.sentinel.buffer.when_full", "drop_newest", "when_full drops events"),
    ("sinks.syslog.encoding.codec", "json", "codec must be syslog"),
    ("sinks.syslog.inputs", ["genesys_audit_clean"], "skips dedupe or route"),
    ("sinks.sentinel.type", "azure_monitor_logs", "azure_monitor_logs is deprecated"),
]


@pytest.mark.parametrize(("path", "value", "expected"), CONTRACT_BREAKAGES,
                         ids=[b[2][:40] for b in CONTRACT_BREAKAGES])
def test_vector_contract_reports(path: str, value: Any, expected: str) -> None:
    cfg = _vector_main()
    _mutate(cfg, path, value)
    problems = vector_contract_problems(cfg, VECTOR_MAIN.read_text())
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('"--max-runtime", "50s"]', '"--max-runtime", "90s"]', "must be below the interval"),
    ('"--once", "--max-runtime"', '"--max-runtime"', "--once is missing"),
    ("# mode = \"scheduled\"\n", "", "no commented scheduled alternative"),
])
def test_vector_scheduled_alternative_reports(old: str, new: str, expected: str) -> None:
    text = VECTOR_MAIN.read_text()
    assert old in text
    problems = scheduled_alternative_problems(text.replace(old, new, 1))
    assert any(expected in p for p in problems), problems


def _fb_classic_text() -> str:
    return FB_CLASSIC.read_text()


FB_BREAKAGES = [
    ("    buf_size            128k\n", "    buf_size            32k\n", "buf_size 32k is below"),
    ("    buf_size            128k\n", "", "buf_size 4096 is below"),
    ("    oneshot             true\n", "    oneshot             false\n", "oneshot must be true"),
    ("    threaded            on\n", "", "threaded must be on"),
    ("    storage.type        filesystem\n", "    storage.type        memory\n", "storage.type must be filesystem"),
    ("    storage.path              /var/lib/fluent-bit/storage\n", "", "storage.path is not set"),
    ("    retry_limit      no_limits\n", "    retry_limit      5\n", "retry_limit must be no_limits"),
    ("    syslog_message_key exec\n", "", "syslog_message_key is required"),
    ("    syslog_message_key exec\n", "    syslog_message_key message\n", "syslog_message_key 'message' is not"),
    ("    syslog_maxsize     65536\n", "", "syslog_maxsize (default 2048)"),
    ("    id_key             siem_event_id\n", "    id_key             id\n", "id_key must be"),
    ("    write_operation    index\n", "", "write_operation create"),
    ("    format           json_lines\n", "    format           json\n", "format must be json_lines"),
    ("    remove_key exec\n", "    remove_key other\n", "still carry the raw line"),
    ("genesys.tier.$1 false", "genesys.level.$1 false", "which no output matches"),
    ("    rule                  $audit_tier ^.+$ genesys.tier.other false\n", "", "'custom tier' ends as tag"),
    ("    emitter_storage.type  filesystem\n", "    emitter_storage.type  memory\n",
     "emitter_storage.type must be filesystem"),
    ("    tls.verify       on\n", "    tls.verfy        on\n", "unknown key 'tls.verfy'"),
    ("    suppress_type_name on\n", "    suppress_type_names on\n", "unknown key 'suppress_type_names'"),
    ("    mode               tls\n", "    mode               tlss\n", "'tlss' is not one of"),
    ("    parser       genesys_audit_json\n", "    parser       genesys_json\n", "'genesys_json' is not defined"),
    ("run --config /etc/genesys-audit-shipper/config.yaml\n    oneshot",
     "run --configuration /etc/genesys-audit-shipper/config.yaml\n    oneshot", "CLI rejects"),
    ("--once --max-runtime 50s", "--max-runtime 50s", "--once is missing"),
    ("--once --max-runtime 50s", "--once --max-runtime 2m", "must be below interval_sec"),
    ("    match_regex    ^genesys\\.tier\\.(high_value|standard|other)$\n",
     "    match_regex    ^genesys\\.tiers\\.x$\n", "matches no tag"),
]


@pytest.mark.parametrize(("old", "new", "expected"), FB_BREAKAGES, ids=[b[2][:40] for b in FB_BREAKAGES])
def test_fluent_bit_checker_reports(old: str, new: str, expected: str) -> None:
    text = _fb_classic_text()
    assert old in text, old
    broken = text.replace(old, new)
    sections = parse_fluent_bit_classic(broken)
    parsers = fb_parsers_file(sections, FB_CLASSIC)
    problems = fluent_bit_problems(sections, broken, parsers=parsers)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("time_keep   on", "time_keep   off", "time_keep must be on"),
    ("time_key    siem_timestamp", "time_key    time", "time_key must be siem_timestamp"),
    ("%S.%L%z", "%S", "does not read"),
    ("%S.%L%z", "%S.%LZ", "reads 2026-01-15T00:00:00.123Z as"),
    ("format      json", "format      regex", "format must be json"),
])
def test_parser_checker_reports(old: str, new: str, expected: str) -> None:
    text = FB_PARSERS.read_text()
    assert old in text
    (parser,) = [p for n, p in parse_fluent_bit_classic(text.replace(old, new)) if n == "PARSER"]
    assert any(expected in p for p in parser_problems(parser)), parser_problems(parser)


@pytest.mark.parametrize("text", [
    "[SERVICE]\nflush 1\n",                       # not indented
    "[INPUT]\n    name exec # inline\n",           # inline comment
    "@INCLUDE other.conf\n",
    "[OUTPUT]\n    name\n",                         # no value
])
def test_classic_parser_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fluent_bit_classic(text)


def test_yaml_loader_rejects_duplicate_keys(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("a: 1\nb: 2\na: 3\n")
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key"):
        load_yaml_all(path)


@pytest.mark.parametrize(("where", "key", "value"), [
    ("inputs", "buf_size", "64k"), ("filters", "reserve_data", "off"), ("outputs", "retry_limit", 5)])
def test_yaml_equivalence_check_notices_a_difference(where: str, key: str, value: Any) -> None:
    (doc,) = load_yaml_all(FB_YAML)
    doc["pipeline"][where][0][key] = value
    assert fb_normalized(fluent_bit_yaml_sections(doc)) != fb_normalized(classic_as_yaml_order())


def test_full_yaml_check_notices_a_changed_default(tmp_path: Path) -> None:
    changed = (CONFIGS / "full.yaml").read_text().replace("\n  page_size: 100", "\n  page_size: 200")
    path = tmp_path / "full.yaml"
    path.write_text(changed)
    got = msgspec.structs.asdict(shipper_config(path).poll)
    assert got != msgspec.structs.asdict(Config().poll)

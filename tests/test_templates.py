"""The host templates (Vector, Fluent Bit, sidecar, systemd) and the shipped shipper configs.

Every template is parsed (TOML, YAML, Fluent Bit classic and YAML with tests/delivery_harness.py's
model) and checked:
- each place that starts our CLI passes flags that exist (parsed with shipper.cli.build_parser);
- the options that make delivery safe are set (exec mode, JSON decoding, dedupe on the record's own
  id, tiers, disk buffers, storage that survives kill -9, the SIEM-side names…);
- every Vector component option exists in Vector 0.57's own reference (name, type, enum, required),
  and every `inputs` entry names a component output; what the VRL programs must set is read from
  them, and the dedupe key and the id and time chains are run on real records of every schema;
- Fluent Bit keys are checked against the plugins' known keys (`--dry-run` ignores [SERVICE] keys,
  routes and processors), records are followed through parsers, processors, filters and routes to
  prove what each output receives, and each template's routes are held to what it promises.
Every checker returns a list of problems; the mutation tests feed it broken configs to prove that
each check reports what it should. The real binaries run in test_fluent_bit_dry_run (and
tests/test_delivery.py) when present.
"""

from __future__ import annotations

import copy
import json
import os
import random
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
from shipper.schemas.asim import AsimRecord
from shipper.schemas.ecs import EcsRecord
from shipper.schemas.siem import SiemRecord
from tests import delivery_harness as harness

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SHIPPER = "genesys-audit-shipper"
CONFIG_PATH = "/etc/genesys-audit-shipper/config.yaml"
EVENT_ID = "siem_event_id"
# The shipper config each schema's templates run, and the repository file installed there: the
# Elasticsearch and Sentinel templates run the schemas their content is built on (ecs, asim).
SCHEMA_CONFIGS = {"siem": CONFIG_PATH, "ecs": "/etc/genesys-audit-shipper/elastic.yaml",
                  "asim": "/etc/genesys-audit-shipper/sentinel.yaml"}
CONFIG_FILES = {CONFIG_PATH: CONFIGS / "production.yaml", SCHEMA_CONFIGS["ecs"]: CONFIGS / "elastic" / "shipper.yaml",
                SCHEMA_CONFIGS["asim"]: CONFIGS / "sentinel" / "shipper.yaml"}
TIME_KEYS = {"siem": "siem_timestamp", "ecs": "@timestamp", "asim": "TimeGenerated"}  # the event time, by schema
ES_ID_KEYS = {"siem": EVENT_ID, "ecs": "$event['id']"}  # the Fluent Bit es output's id_key, by schema
# The records a Fluent Bit json parser reads, by parser (its schema) and schema (its top-level keys).
PARSER_SCHEMAS = {"genesys_audit_json": "siem", "genesys_audit_time": "siem", "genesys_audit_ecs": "ecs",
                  "genesys_audit_asim": "asim"}
TIERS = ("high_value", "standard", "high_volume")
MIN_DISK_BUFFER = 268435488
MAX_LINE_BYTES = Config().output.max_line_bytes  # 65536, what the host must accept
SIEM_FIELDS = frozenset(SiemRecord.__struct_fields__)  # the keys of one record in the default schema
SCHEMA_KEYS = {name: frozenset(f.encode_name for f in msgspec.structs.fields(struct))
               for name, struct in (("siem", SiemRecord), ("ecs", EcsRecord), ("asim", AsimRecord))}

VECTOR_MAIN = REPO / "vector.toml.example"
VECTOR_SIEMS = {"splunk": "splunk_hec_logs", "sentinel": "azure_logs_ingestion", "elastic": "elasticsearch",
                "syslog": "socket"}
FB_PARSERS = CONFIGS / "fluent-bit" / "parsers.conf"
FB_SIEMS = {"splunk": "splunk", "sentinel": "azure_logs_ingestion", "elastic": "es", "syslog": "syslog"}
SHIPPER_YAMLS = [CONFIGS / "minimal.yaml", CONFIGS / "full.yaml", CONFIGS / "production.yaml",
                 CONFIGS / "sidecar" / "shipper.yaml", CONFIGS / "systemd" / "config.yaml",
                 CONFIGS / "elastic" / "shipper.yaml", CONFIGS / "sentinel" / "shipper.yaml"]


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
    """Every chain of inputs (component ids, route outputs as `route.name`) from a component back to a source."""
    cid = name.split(".")[0]
    for kind in ("sources", "transforms", "sinks"):
        if cid in cfg.get(kind, {}):
            comp = cfg[kind][cid]
            if kind == "sources":
                return [[name]]
            return [[name, *chain] for inp in comp.get("inputs", []) for chain in upstream(cfg, inp)]
    return [[name, "<missing>"]]


SIEM_SINKS = {"splunk_hec_logs", "azure_logs_ingestion", "elasticsearch", "socket"}
ID_PATHS = list(dict.fromkeys(harness.ID_FIELDS.values()))  # the record's own id, by output.schema
_IF_CHAIN = re.compile(r"exists\(\.(\"@timestamp\"|[\w.]+)\)")


def remap_sources(cfg: dict[str, Any], chain: list[str]) -> list[str]:
    transforms = cfg.get("transforms", {})
    return [transforms[c.split(".")[0]].get("source", "") for c in chain
            if transforms.get(c.split(".")[0], {}).get("type") == "remap"]


def vrl_assigns(sources: list[str], target: str) -> str | None:
    """The right-hand side of the last `<target> = ...` line in these VRL programs."""
    found = None
    for src in sources:
        for m in re.finditer(rf"(?m)^\s*{re.escape(target)}\s*=\s*(.+)$", src):
            found = m.group(1)
    return found


def vrl_exists_chain(expr: str | None) -> list[str]:
    """The fields of an `if exists(.a) { .a } else if exists(.b) { .b } ... else { .z }` expression, in order."""
    if not expr:
        return []
    fields = [f.strip('"') for f in _IF_CHAIN.findall(expr)]
    last = re.search(r"else \{ \.(\"@timestamp\"|[\w.]+) \}\s*$", expr)
    return fields + ([last.group(1).strip('"')] if last else [])


def vector_contract_problems(cfg: dict[str, Any], text: str, *, source_type: str = "exec",
                             config_path: str = CONFIG_PATH) -> list[str]:
    """What our pipeline needs from a Vector config, beyond Vector's own validity."""
    problems: list[str] = []
    sources = {cid: s for cid, s in cfg.get("sources", {}).items() if s.get("type") == source_type}
    if len(sources) != 1:
        return [f"expected one {source_type} source, found {len(sources)}"]
    (src_id, src), = sources.items()
    transforms = cfg.get("transforms", {})
    sinks = cfg.get("sinks", {})
    records_from = src_id  # the component output that carries audit records only
    if source_type in ("exec", "http_server"):
        if src.get("decoding", {}).get("codec") != "json":
            problems.append(f"sources.{src_id}.decoding.codec must be json (default bytes)")
        framing = src.get("framing", {})
        if framing.get("method") != "newline_delimited":
            problems.append(f"sources.{src_id}.framing.method must be newline_delimited (NDJSON)")
        max_length = framing.get("newline_delimited", {}).get("max_length", 102400)
        if max_length < MAX_LINE_BYTES:
            problems.append(f"sources.{src_id}: framing max_length {max_length} < {MAX_LINE_BYTES}")
    if source_type == "exec":
        if src.get("mode") != "streaming":
            problems.append(f"sources.{src_id}.mode: {src.get('mode')!r}, expected streaming (a daemon)")
        if src.get("include_stderr", True) is not True:
            problems.append(f"sources.{src_id}.include_stderr = false drops the shipper's log lines (Vector does "
                            "not pass them on): keep it true and route stderr away from the SIEMs")
        argv = src.get("command", [])
        cli = cli_problems(argv, f"sources.{src_id}.command", once=False)
        problems += cli
        if not cli and parse_cli(argv).config != config_path:
            problems.append(f"sources.{src_id}.command: --config is not {config_path}")
        problems += scheduled_alternative_problems(text, src_id)
        streams = [(cid, t) for cid, t in transforms.items() if t.get("type") == "route" and t.get("inputs") == [src_id]]
        by_cond = {str(cond): f"{cid}.{name}" for cid, t in streams for name, cond in t.get("route", {}).items()}
        records_from = by_cond.get('.stream == "stdout"', "")
        logs_from = by_cond.get('.stream == "stderr"', "")
        if not records_from or not logs_from:
            problems.append(f"no route on .stream right after sources.{src_id}: stdout (records) and stderr "
                            "(the shipper's log lines) must part")
        for cid, sink in sinks.items():
            if sink.get("type") in SIEM_SINKS and any(logs_from and logs_from in chain
                                                      for name in sink.get("inputs", [])
                                                      for chain in upstream(cfg, name)):
                problems.append(f"sinks.{cid} carries the shipper's stderr log lines to a SIEM")
    if source_type == "http_server":
        host = str(src.get("address", "")).rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "[::1]", "localhost") and not src.get("tls", {}).get("enabled"):
            problems.append(f"sources.{src_id}.address {src.get('address')!r}: loopback only, or tls.enabled")
        auth = src.get("auth", {})
        if auth.get("strategy") != "custom" or "Bearer SECRET[" not in str(auth.get("source")):
            problems.append(f"sources.{src_id}.auth must check the shipper's Bearer token (custom, from a SECRET)")
        if src.get("method", "POST") != "POST" or not src.get("path"):
            problems.append(f"sources.{src_id}: method POST and a path")
        for cid, sink in sinks.items():
            if sink.get("acknowledgements", {}).get("enabled") is not True:
                problems.append(f"sinks.{cid}.acknowledgements.enabled must be true: the 2xx must wait for it")
    dedupes = {cid: t for cid, t in transforms.items() if t.get("type") == "dedupe"}
    for cid, d in dedupes.items():
        missing = [f for f in ID_PATHS if f not in d.get("fields", {}).get("match", [])]
        if missing:
            problems.append(f"transforms.{cid}.fields.match misses the id field(s) {missing}: records of those "
                            "schemas all share one empty key, and all but the first are dropped")
    if not dedupes:
        problems.append("no dedupe transform")
    routes = {cid: t for cid, t in transforms.items() if t.get("type") == "route" and ".audit_tier" in str(t)}
    if not routes:
        problems.append("no route transform on .audit_tier")
    for cid, route in routes.items():
        for name, cond in route.get("route", {}).items():
            if not re.fullmatch(rf'\.audit_tier == "{re.escape(name)}"', str(cond)):
                problems.append(f"transforms.{cid}.route.{name}: {cond!r} does not route on .audit_tier")
        missing = set(TIERS) - set(route.get("route", {}))
        if missing:
            problems.append(f"transforms.{cid}: no route for tier(s) {sorted(missing)}")
    if not any(s.get("type") in SIEM_SINKS for s in sinks.values()):
        problems.append("no SIEM sinks")
    for cid, sink in sinks.items():
        kind = sink.get("type")
        if kind == "console":
            continue
        buffer = sink.get("buffer", {})
        if buffer.get("type") != "disk":
            problems.append(f"sinks.{cid}.buffer.type must be disk")
        if buffer.get("max_size", 0) < MIN_DISK_BUFFER:
            problems.append(f"sinks.{cid}.buffer.max_size must be >= {MIN_DISK_BUFFER}")
        if buffer.get("when_full", "block") != "block":
            problems.append(f"sinks.{cid}.buffer.when_full drops events")
        if kind == "azure_monitor_logs":
            problems.append(f"sinks.{cid}: azure_monitor_logs is deprecated; use azure_logs_ingestion")
        chains = [chain for name in sink.get("inputs", []) for chain in upstream(cfg, name)]
        for chain in chains:
            kinds = [transforms.get(c.split(".")[0], {}).get("type") for c in chain]
            if "dedupe" not in kinds or not any(c.split(".")[0] in routes for c in chain) or chain[-1] != src_id \
                    or (records_from != src_id and records_from not in chain):
                problems.append(f"sinks.{cid}: path {' <- '.join(chain)} skips the records route, dedupe or tiers")
        remaps = [remap_sources(cfg, chain) for chain in chains]
        want = {"splunk_hec_logs": {"sourcetype": harness.SPLUNK_SOURCETYPE, "index": harness.SPLUNK_INDEX},
                "azure_logs_ingestion": {"stream_name": harness.SENTINEL_STREAM},
                "elasticsearch": {"mode": "bulk", "request_retry_partial": True}}.get(kind, {})
        for key, value in want.items():
            if sink.get(key) != value:
                problems.append(f"sinks.{cid}.{key} {sink.get(key)!r}, expected {value!r}")
        if kind == "elasticsearch":
            bulk = sink.get("bulk", {})
            if bulk.get("action") != "create" or bulk.get("index") != harness.ES_INDEX:
                problems.append(f"sinks.{cid}.bulk: action {bulk.get('action')!r} index {bulk.get('index')!r}, "
                                f"expected create into the data stream {harness.ES_INDEX}")
            id_key = str(sink.get("id_key"))
            if id_key in ID_PATHS:
                problems.append(f"sinks.{cid}.id_key {id_key!r} removes the record's own id from the document: "
                                "key on a copy")
            for sources_ in remaps:
                if sorted(vrl_exists_chain(vrl_assigns(sources_, f".{id_key}"))) != sorted(ID_PATHS):
                    problems.append(f"sinks.{cid}: no remap on its path sets .{id_key} from the record's own id "
                                    f"({', '.join(ID_PATHS)})")
                if vrl_assigns(sources_, '."@timestamp"') is None:
                    problems.append(f"sinks.{cid}: no remap on its path sets @timestamp (data streams need it)")
        if kind == "socket":
            encoding = sink.get("encoding", {})
            if encoding.get("codec") != "syslog" or encoding.get("syslog", {}).get("rfc") != "rfc5424":
                problems.append(f"sinks.{cid}.encoding must be syslog rfc5424")
            if encoding.get("syslog", {}).get("app_name") != harness.SYSLOG_APP:
                problems.append(f"sinks.{cid}.encoding.syslog.app_name must be {harness.SYSLOG_APP!r}")
            for sources_ in remaps:
                shape = vrl_assigns(sources_, ".") or ""
                if '"host":' not in shape or "encode_json(.)" not in shape:
                    problems.append(f"sinks.{cid}: its remap must set .message = encode_json(.) and .host (the "
                                    "syslog encoder reads .host, not .hostname)")
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
# Fluent Bit: the harness's config model (classic and YAML alike), and the checks

FbSection = harness.Section
FbConfig = harness.FbConfig


def fb_str(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def fb_get(section: FbSection, key: str, default: str | None = None) -> str | None:
    value = section.props.get(key)
    if value is None:
        return default
    if isinstance(value, list):
        value = value[-1]
    return fb_str(value)


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


# Keys from the plugins' config maps (Fluent Bit 5.1.1 `-h`), to catch typos without the binary:
# `--dry-run` checks plugin properties but not [SERVICE] keys, routes or processors.
FB_COMMON = {
    "SERVICE": {"flush", "grace", "daemon", "log_level", "log_file", "parsers_file", "plugins_file", "http_server",
                "http_listen", "http_port", "health_check", "hc_errors_count", "hc_retry_failure_count",
                "hc_period", "storage.path", "storage.sync", "storage.checksum", "storage.backlog.mem_limit",
                "storage.max_chunks_up", "storage.metrics", "storage.delete_irrecoverable_chunks",
                "scheduler.base", "scheduler.cap"},
    "PARSER": {"name", "format", "regex", "time_key", "time_format", "time_keep", "time_offset", "time_strict",
               "types", "decode_field", "decode_field_as", "skip_empty_values", "time_system_timezone"},
    "INPUT": {"name", "tag", "alias", "threaded", "storage.type", "mem_buf_limit", "log_level",
              "storage.pause_on_chunks_overlimit", "processors", "routes", "thread.ring_buffer.capacity",
              "thread.ring_buffer.window"},
    "FILTER": {"name", "match", "match_regex", "alias", "log_level"},
    "OUTPUT": {"name", "match", "match_regex", "alias", "retry_limit", "workers", "storage.total_limit_size",
               "log_level", "host", "port", "tls", "tls.verify", "tls.ca_file", "tls.crt_file", "tls.key_file",
               "tls.vhost", "net.keepalive", "net.connect_timeout", "processors"},
    "PROCESSOR": {"name"},
}
FB_PLUGINS = {
    ("INPUT", "exec"): {"command", "parser", "interval_sec", "interval_nsec", "buf_size", "oneshot",
                        "exit_after_oneshot", "propagate_exit_code"},
    ("INPUT", "http"): {"listen", "port", "http_server.buffer_max_size", "http_server.buffer_chunk_size",
                        "http_server.workers", "http_server.max_connections", "successful_response_code",
                        "success_header", "tag_key", "add_remote_addr", "remote_addr_key", "tls", "tls.verify",
                        "tls.verify_client_cert", "tls.ca_file", "tls.crt_file", "tls.key_file"},
    ("INPUT", "tail"): {"path", "exclude_path", "parser", "db", "db.locking", "db.sync", "db.journal_mode",
                        "read_from_head", "buffer_chunk_size", "buffer_max_size", "skip_long_lines",
                        "skip_empty_lines", "refresh_interval", "rotate_wait", "path_key", "offset_key"},
    ("FILTER", "parser"): {"key_name", "parser", "preserve_key", "reserve_data", "unescape_key"},
    ("FILTER", "sysinfo"): {"hostname_key", "fluentbit_version_key", "os_name_key", "os_version_key",
                            "kernel_version_key"},
    ("FILTER", "rewrite_tag"): {"rule", "emitter_name", "emitter_storage.type", "emitter_mem_buf_limit"},
    ("FILTER", "record_modifier"): {"record", "remove_key", "allowlist_key", "uuid_key"},
    ("FILTER", "grep"): {"regex", "exclude", "logical_op"},
    ("PROCESSOR", "content_modifier"): {"action", "key", "value", "pattern", "converted_type", "context"},
    ("OUTPUT", "splunk"): {"splunk_token", "http_user", "http_passwd", "http_buffer_size", "compress", "channel",
                           "event_key", "event_host", "event_source", "event_sourcetype", "event_sourcetype_key",
                           "event_index", "event_index_key", "event_field", "splunk_send_raw"},
    ("OUTPUT", "azure_logs_ingestion"): {"tenant_id", "client_id", "client_secret", "dce_url", "dcr_id",
                                         "table_name", "time_key", "time_generated", "compress", "auth_url"},
    ("OUTPUT", "es"): {"index", "type", "http_user", "http_passwd", "http_api_key", "cloud_id", "cloud_auth",
                       "id_key", "suppress_type_name", "write_operation", "generate_id", "logstash_format",
                       "logstash_prefix", "replace_dots", "trace_error", "trace_output", "buffer_size",
                       "pipeline", "compress"},
    ("OUTPUT", "syslog"): {"mode", "syslog_format", "syslog_maxsize", "syslog_severity_key",
                           "syslog_facility_key", "syslog_hostname_key", "syslog_appname_key",
                           "syslog_procid_key", "syslog_msgid_key", "syslog_sd_key", "syslog_message_key",
                           "syslog_severity_preset", "syslog_facility_preset", "syslog_hostname_preset",
                           "syslog_appname_preset", "syslog_procid_preset", "syslog_msgid_preset"},
    ("OUTPUT", "http"): {"uri", "format", "json_date_key", "json_date_format", "header", "http_user",
                         "http_passwd", "compress", "allow_duplicated_headers", "log_response_payload"},
}
# Filters double as processors in the YAML format.
for (_kind, _name), _keys in list(FB_PLUGINS.items()):
    if _kind == "FILTER":
        FB_PLUGINS[("PROCESSOR", _name)] = _keys
FB_ENUMS = {
    "storage.type": {"memory", "filesystem"}, "emitter_storage.type": {"memory", "filesystem"},
    "format": {"json", "json_lines", "json_stream", "msgpack", "gelf", "regex", "logfmt", "ltsv"},
    "syslog_format": {"rfc3164", "rfc5424"}, "mode": {"tcp", "udp", "tls"},
    "write_operation": {"create", "index", "update", "upsert"}, "storage.sync": {"normal", "full"},
    "action": {"insert", "upsert", "delete", "rename", "hash", "extract", "convert"},
}
ROUTE_OPS = {"eq", "neq", "in", "not_in", "regex", "not_regex"}  # what a string tier can be tested with
SAMPLE_TIME = "2026-01-15T00:00:00.123Z"
SOURCES = {"exec", "http", "tail"}
# A page, as the shipper may POST it: poll.page_size (at most 500) lines of output.max_line_bytes.
MAX_PAGE_BYTES = 500 * MAX_LINE_BYTES
SYSLOG_HEADER_BYTES = 1024  # PRI, version, time, HOSTNAME (<= 255), APP-NAME, PROCID, MSGID, BOM


def fb_processors(section: FbSection) -> list[FbSection]:
    """YAML `processors: {logs: [...]}` of an input or output, as sections."""
    logs = (section.props.get("processors") or {}).get("logs") or []
    return [FbSection("PROCESSOR", {str(k).lower(): v for k, v in p.items()}) for p in logs]


def fb_matches(section: FbSection, tag: str) -> bool:
    pattern = fb_get(section, "match")
    if pattern is not None:
        return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), tag) is not None
    regex = fb_get(section, "match_regex")
    return regex is not None and re.search(regex, tag) is not None


def fb_output_id(section: FbSection) -> str:
    return fb_get(section, "alias") or section.plugin


def fb_parsed_keys(parser: FbSection) -> set[str]:
    if fb_get(parser, "format") == "json":
        return set(SCHEMA_KEYS[PARSER_SCHEMAS.get(fb_get(parser, "name") or "", "siem")])
    return set(re.findall(r"\(\?<(\w+)>", fb_get(parser, "regex") or ""))


def fb_step(step: FbSection, keys: set[str], parsers: dict[str, FbSection], times: list[str]) -> set[str]:
    """The keys of a record after one filter or processor (and the time keys its parsers read)."""
    kind = step.plugin
    if kind == "parser":
        key, parser = fb_get(step, "key_name"), parsers.get(fb_get(step, "parser") or "")
        if key in keys and parser is not None:
            new = fb_parsed_keys(parser)
            if fb_get(parser, "time_key"):
                times.append(fb_get(parser, "time_key") or "")
            out = set(new)
            if fb_bool(fb_get(step, "reserve_data")):
                out |= keys - {key}
            if fb_bool(fb_get(step, "preserve_key")):
                out.add(key)
            return out
    elif kind == "sysinfo":
        return keys | {fb_get(step, k) or "" for k in step.props if k.endswith("_key")}
    elif kind == "record_modifier":
        removed = step.props.get("remove_key", [])
        return keys - set(removed if isinstance(removed, list) else [removed])
    elif kind == "content_modifier":
        action, key = fb_get(step, "action"), fb_get(step, "key") or ""
        if action == "delete":
            return keys - {key}
        if action in ("insert", "upsert"):
            return keys | {key}
    return keys


def fb_records(cfg: FbConfig, parsers: dict[str, FbSection], schema: str = "siem") -> tuple[set[str], list[str]]:
    """The keys of a record after the input, its processors and the filters (and the time keys used)."""
    (inp,) = cfg.of("INPUT")
    times: list[str] = []
    kind = inp.plugin
    if kind in ("exec", "tail") and fb_get(inp, "parser"):
        parser = parsers.get(fb_get(inp, "parser") or "")
        keys = fb_parsed_keys(parser) if parser is not None else set()
        if parser is not None and fb_get(parser, "time_key"):
            times.append(fb_get(parser, "time_key") or "")
    else:
        keys = set(SCHEMA_KEYS[schema]) if kind == "http" else {"exec" if kind == "exec" else "log"}
    for step in fb_processors(inp):
        keys = fb_step(step, keys, parsers, times)
    tag = fb_get(inp, "tag", "") or ""
    for flt in cfg.of("FILTER"):
        if fb_matches(flt, tag):
            keys = fb_step(flt, keys, parsers, times)
    return keys, times


def fb_grep_keeps(step: FbSection, tier: str) -> bool | None:
    """Whether a grep filter/processor keeps a record of this tier (None: it does not look at audit_tier)."""
    for key, keep in (("regex", True), ("exclude", False)):
        rule = fb_get(step, key)
        if rule is None:
            continue
        field_, _, pattern = rule.partition(" ")
        if field_ != "audit_tier":
            return None
        return (re.search(pattern, tier) is not None) == keep
    return None


def fb_routing(cfg: FbConfig) -> tuple[dict[str, set[str]], list[str]]:
    """Which tiers each output receives (by output id): outputs match the input's tag, then their own
    grep processors and the tag's grep filters keep some tiers. Conditional routes are refused."""
    problems: list[str] = []
    (inp,) = cfg.of("INPUT")
    if inp.props.get("routes") is not None:
        problems.append("routes: Fluent Bit 5.1.1 leaves chunks written under an input's conditional routes on disk "
                        "after a kill -9 ('no matching route ... keeping it on disk'): select tiers with a grep "
                        "processor per output")
    tag = fb_get(inp, "tag", "") or ""
    shared = [f for f in cfg.of("FILTER") if fb_matches(f, tag) and f.plugin == "grep"]
    tiers: dict[str, set[str]] = {}
    for out in cfg.of("OUTPUT"):
        got: set[str] = set()
        if fb_matches(out, tag):
            for tier in TIERS:
                steps = [*shared, *(s for s in fb_processors(out) if s.plugin == "grep")]
                if all(fb_grep_keeps(step, tier) is not False for step in steps):
                    got.add(tier)
        tiers[fb_output_id(out)] = got
        for step in fb_processors(out):
            if step.plugin == "grep" and fb_grep_keeps(step, TIERS[0]) is None:
                problems.append(f"[OUTPUT] {fb_output_id(out)}: a grep processor that does not test audit_tier")
    return tiers, problems


def fb_keys_problems(cfg: FbConfig, parsers: list[FbSection]) -> list[str]:
    problems: list[str] = []
    sections = [*cfg.sections, *parsers]
    for section in cfg.sections:
        sections += fb_processors(section)
    for section in sections:
        kind, plugin = section.kind, section.plugin
        allowed = FB_COMMON.get(kind, set()) | FB_PLUGINS.get((kind, plugin), set())
        if kind in ("INPUT", "FILTER", "OUTPUT", "PROCESSOR") and (kind, plugin) not in FB_PLUGINS:
            problems.append(f"[{kind}] {plugin}: plugin not covered by this test")
        for key, value in section.props.items():
            if key not in allowed:
                problems.append(f"[{kind}] {plugin}: unknown key {key!r}")
            if isinstance(value, list) and key not in ("rule", "header", "remove_key", "record"):
                problems.append(f"[{kind}] {plugin}: {key} set {len(value)} times")
            if key in FB_ENUMS and fb_get(section, key) not in FB_ENUMS[key]:
                problems.append(f"[{kind}] {plugin}: {key} {fb_get(section, key)!r} is not one of "
                                f"{sorted(FB_ENUMS[key])}")
    return problems


def fluent_bit_problems(cfg: FbConfig, text: str, parsers: list[FbSection],
                        spec: harness.TemplateSpec | None = None) -> list[str]:
    """Everything a shipped Fluent Bit template must get right, as a list of problems."""
    problems = fb_keys_problems(cfg, parsers)
    schema = (spec.schema if spec is not None else None) or "siem"
    services = cfg.of("SERVICE")
    if len(services) != 1:
        return [*problems, "expected exactly one [SERVICE]"]
    service = services[0]
    if parsers and cfg.of("PARSER") and cfg.fmt == "classic":
        problems.append("[PARSER] in a classic main file is refused; use parsers_file")
    all_parsers = {fb_get(p, "name") or "": p for p in [*parsers, *cfg.of("PARSER")]}
    # storage: on disk from the input on, and readable after a kill -9
    if not fb_get(service, "storage.path"):
        problems.append("[SERVICE] storage.path is not set: storage.type filesystem needs it")
    if fb_bool(fb_get(service, "storage.checksum")) is not False:
        problems.append("[SERVICE] storage.checksum must be off: after a kill -9 Fluent Bit drops a chunk whose "
                        "CRC it had not rewritten yet (measured: 400-536 of 2000 events lost)")
    if fb_get(service, "storage.sync") != "full":
        problems.append("[SERVICE] storage.sync must be full (an fsync per chunk write, for power loss)")
    cap = fb_get(service, "scheduler.cap")
    if cap is None or not cap.isdigit() or int(cap) > 60:
        problems.append("[SERVICE] scheduler.cap must be set, at most 60 s (default 2000 s between retries)")
    for flt in cfg.of("FILTER"):
        if flt.plugin == "rewrite_tag":
            problems.append("rewrite_tag: its emitter drops records under load without a log line; route with "
                            "the input's routes (YAML)")
    # the input
    inputs = cfg.of("INPUT")
    if len(inputs) != 1 or inputs[0].plugin not in SOURCES:
        return [*problems, f"expected one [INPUT], one of {sorted(SOURCES)}"]
    inp = inputs[0]
    if spec is not None and inp.plugin != spec.source:
        problems.append(f"[INPUT] is {inp.plugin}, expected {spec.source}")
    if fb_get(inp, "storage.type") != "filesystem":
        problems.append("[INPUT] storage.type must be filesystem (paused inputs lose lines)")
    if inp.plugin == "exec":
        buf = fb_get(inp, "buf_size", "4096") or "4096"
        if fb_size(buf) < MAX_LINE_BYTES:
            problems.append(f"[INPUT] buf_size {buf} is below output.max_line_bytes {MAX_LINE_BYTES}")
        for key, want, why in (("oneshot", True, "for the daemon"), ("threaded", True, "or the daemon blocks the engine"),
                               ("exit_after_oneshot", True, "so a dead shipper stops Fluent Bit"),
                               ("propagate_exit_code", True, "so the service manager sees why")):
            if fb_bool(fb_get(inp, key)) is not want:
                problems.append(f"[INPUT] {key} must be {'on' if want else 'off'} {why}")
        if fb_get(inp, "thread.ring_buffer.window") != "1":
            problems.append("[INPUT] thread.ring_buffer.window must be 1: records wait in the threaded input's ring "
                            "buffer until 5% of it fills (or 250 ms), and a kill -9 loses them")
        argv = shell_argv(fb_get(inp, "command") or "")
        cli = cli_problems(argv, "[INPUT] command", once=False)
        problems += cli
        if not cli and parse_cli(argv).config != SCHEMA_CONFIGS[schema]:
            problems.append(f"[INPUT] command: --config is not {SCHEMA_CONFIGS[schema]} (output.schema {schema})")
        problems += interval_alternative_problems(text)
    elif inp.plugin == "http":
        if fb_get(inp, "listen") != "127.0.0.1" and fb_bool(fb_get(inp, "tls")) is not True:
            problems.append("[INPUT] http: it checks no token; listen on 127.0.0.1 or use tls")
        size = fb_get(inp, "http_server.buffer_max_size", "4M") or "4M"
        if fb_size(size) < MAX_PAGE_BYTES:
            problems.append(f"[INPUT] http_server.buffer_max_size {size} is below a page of 500 x "
                            f"{MAX_LINE_BYTES} bytes: a larger body gets 413")
        if fb_get(inp, "http_server.workers", "1") != "1" or fb_bool(fb_get(inp, "threaded")):
            problems.append("[INPUT] http: keep one worker, unthreaded: the 201 then follows the append (measured)")
    else:
        size = fb_get(inp, "buffer_max_size", "32k") or "32k"
        if fb_size(size) < MAX_LINE_BYTES:
            problems.append(f"[INPUT] buffer_max_size {size} is below output.max_line_bytes {MAX_LINE_BYTES}")
        if not fb_get(inp, "db"):
            problems.append("[INPUT] tail needs a db to remember positions")
    # parsers, and the record's time
    used = [fb_get(inp, "parser")] + [fb_get(s, "parser") for s in [*fb_processors(inp), *cfg.of("FILTER")]
                                      if s.plugin == "parser"]
    for name in filter(None, used):
        if name not in all_parsers:
            problems.append(f"parser {name!r} is not defined")
        else:
            problems += parser_problems(all_parsers[name])
            if PARSER_SCHEMAS.get(name, schema) != schema:
                problems.append(f"parser {name} reads {PARSER_SCHEMAS[name]} records; the template runs {schema}")
    keys, times = fb_records(cfg, all_parsers, schema)
    if TIME_KEYS[schema] not in times:
        problems.append(f"no parser sets the record time from {TIME_KEYS[schema]} (the event's own time)")
    # routes, and what each output gets
    tiers, route_problems = fb_routing(cfg)
    problems += route_problems
    outputs = cfg.of("OUTPUT")
    if spec is not None:
        want = {harness.PLUGIN_OF[kind]: set(TIERS) if t is None else set(t) for kind, t in spec.outputs.items()}
        got = {o.plugin: tiers[fb_output_id(o)] for o in outputs}
        if got != want:
            problems.append(f"tiers per output {got} are not the promised {want}")
    for out in outputs:
        name, oid = out.plugin, fb_output_id(out)
        if not tiers[oid]:
            problems.append(f"[OUTPUT] {oid}: receives no records")
        if fb_get(out, "retry_limit") != "no_limits":
            problems.append(f"[OUTPUT] {oid}: retry_limit must be no_limits (default 1)")
        out_keys = set(keys)
        for step in fb_processors(out):
            out_keys = fb_step(step, out_keys, all_parsers, times)
        if "exec" in out_keys and not (name == "syslog" and fb_get(out, "syslog_message_key") == "exec"):
            problems.append(f"[OUTPUT] {oid}: records still carry the raw line `exec`")
        expect = {
            "splunk": {"event_sourcetype": harness.SPLUNK_SOURCETYPE, "event_index": harness.SPLUNK_INDEX},
            "es": {"index": harness.ES_INDEX, "write_operation": "create", "id_key": ES_ID_KEYS.get(schema),
                   "suppress_type_name": "on"},
            "azure_logs_ingestion": {"table_name": harness.SENTINEL_STREAM.removeprefix("Custom-"),
                                     "time_generated": "on"},
            "syslog": {"syslog_format": "rfc5424", "syslog_message_key": "exec",
                       "syslog_appname_preset": harness.SYSLOG_APP},
            "http": {"format": "json_lines"},
        }.get(name, {})
        for key, value in expect.items():
            have = fb_get(out, key)
            if have != value and not (value in ("on", "off") and fb_bool(have) == fb_bool(value)):
                problems.append(f"[OUTPUT] {oid}: {key} {have!r}, expected {value!r}")
        if name == "es" and ra_top(fb_get(out, "id_key") or "") not in out_keys:
            problems.append(f"[OUTPUT] {oid}: id_key {fb_get(out, 'id_key')!r} is not in its records")
        if name == "syslog":
            if fb_get(out, "syslog_message_key") not in out_keys:
                problems.append(f"[OUTPUT] {oid}: syslog_message_key {fb_get(out, 'syslog_message_key')!r} is not in "
                                "its records: syslog needs the raw line (exec input, kept by the parser)")
            maxsize = fb_get(out, "syslog_maxsize", "0") or "0"
            if fb_size(maxsize) < MAX_LINE_BYTES + SYSLOG_HEADER_BYTES:
                problems.append(f"[OUTPUT] {oid}: syslog_maxsize {maxsize} cuts a line of output.max_line_bytes "
                                "plus the header")
            host_key = fb_get(out, "syslog_hostname_key")
            if not fb_get(out, "syslog_hostname_preset") and (not host_key or host_key not in out_keys):
                problems.append(f"[OUTPUT] {oid}: no HOSTNAME (syslog_hostname_key {host_key!r} is not in its records)")
            if fb_get(out, "mode") not in ("tls", "tcp"):
                problems.append(f"[OUTPUT] {oid}: mode must be tls (or tcp): udp cuts large messages")
    return problems


def ra_top(key: str) -> str:
    """The top-level key a Fluent Bit record accessor ($event['id']) or plain key names."""
    m = re.fullmatch(r"\$(\w+)(\[.*\])?", key)
    return m.group(1) if m else key


def parser_problems(parser: FbSection) -> list[str]:
    problems = []
    name = fb_get(parser, "name")
    time_key = TIME_KEYS[PARSER_SCHEMAS.get(name or "", "siem")]
    fmt = fb_get(parser, "format")
    if fmt not in ("json", "regex"):
        problems.append(f"parser {name}: format must be json (a line) or regex (a time field)")
    if fmt == "regex" and "(?<siem_timestamp>" not in (fb_get(parser, "regex") or ""):
        problems.append(f"parser {name}: a time parser must capture siem_timestamp")
    if fb_get(parser, "time_key") != time_key:
        problems.append(f"parser {name}: time_key must be {time_key} (the event's time)")
    if fb_bool(fb_get(parser, "time_keep")) is not True:
        problems.append(f"parser {name}: time_keep must be on (the default removes {time_key})")
    fmt_time = fb_get(parser, "time_format") or ""
    try:
        parsed = datetime.strptime(SAMPLE_TIME, fmt_time.replace("%L", "%f"))
    except ValueError:
        problems.append(f"parser {name}: time_format {fmt_time!r} does not read {SAMPLE_TIME}")
    else:
        if parsed.tzinfo is None or parsed != datetime(2026, 1, 15, 0, 0, 0, 123000, tzinfo=timezone.utc):
            problems.append(f"parser {name}: time_format {fmt_time!r} reads {SAMPLE_TIME} as {parsed}")
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


def fb_parsers_file(cfg: FbConfig, config: Path) -> list[FbSection]:
    """The parsers of a classic config: its parsers_file, which must be configs/fluent-bit/parsers.conf
    or a byte-identical copy of it (the sidecar directory carries one, so it stands alone)."""
    if cfg.fmt == "yaml":
        return []
    rel = fb_get(cfg.of("SERVICE")[0], "parsers_file")
    assert rel, f"{config.name}: [SERVICE] parsers_file is not set"
    path = Path(rel) if rel.startswith("/") else config.parent / rel
    assert path.read_bytes() == FB_PARSERS.read_bytes(), f"{config.name}: parsers_file {rel} is not {FB_PARSERS}"
    return harness.parse_classic(path.read_text())


def load_fb(path: Path, text: str | None = None) -> tuple[FbConfig, list[FbSection]]:
    text = path.read_text() if text is None else text
    fmt = harness.config_format(path)
    cfg = FbConfig(fmt, harness.parse_yaml(text) if fmt == "yaml" else harness.parse_classic(text))
    return cfg, fb_parsers_file(cfg, path)


def fb_check(spec: harness.TemplateSpec, text: str | None = None) -> list[str]:
    text = spec.path.read_text() if text is None else text
    cfg, parsers = load_fb(spec.path, text)
    return fluent_bit_problems(cfg, text, parsers, spec)


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
VECTOR_HTTP = CONFIGS / "vector" / "http-input.toml"


# The schema each Vector template's shipper runs (the all-in-one example and splunk/syslog: siem).
VECTOR_SCHEMAS = {CONFIGS / "vector" / f"{siem}.toml": schema for siem, schema in harness.SIEM_SCHEMAS.items()}


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name)
def test_vector_config_is_valid_for_vector_057(path: Path) -> None:
    cfg = load_toml(path)
    assert vector_problems(cfg) == []
    config_path = SCHEMA_CONFIGS[VECTOR_SCHEMAS.get(path, "siem")]
    assert vector_contract_problems(cfg, path.read_text(), config_path=config_path) == []


def test_vector_http_input_template() -> None:
    cfg = load_toml(VECTOR_HTTP)
    assert vector_problems(cfg) == []
    assert vector_contract_problems(cfg, VECTOR_HTTP.read_text(), source_type="http_server") == []
    assert {s["type"] for s in cfg["sinks"].values()} == set(VECTOR_SIEMS.values())
    # the address and path the shipper's output.http.url names in the sidecar example
    url = yaml.safe_load((CONFIGS / "sidecar" / "shipper-http.yaml").read_text())["output"]["http"]["url"]
    (src,) = cfg["sources"].values()
    assert url == f"http://{src['address']}{src['path']}"


def test_vector_example_has_every_siem_sink() -> None:
    sinks = {s["type"] for s in load_toml(VECTOR_MAIN)["sinks"].values()}
    assert sinks == {*VECTOR_SIEMS.values(), "console"}


@pytest.mark.parametrize("name", sorted(VECTOR_SIEMS))
def test_vector_siem_config_has_its_sink(name: str) -> None:
    cfg = load_toml(CONFIGS / "vector" / f"{name}.toml")
    assert [s["type"] for s in cfg["sinks"].values() if s["type"] != "console"] == [VECTOR_SIEMS[name]]


def schema_records(schema: str, count: int = 300) -> list[dict[str, Any]]:
    """Real records of one output.schema, from simulator events (large ones included)."""
    from shipper.config import config_from_mapping
    from shipper.models import decode_event
    from shipper.schemas import build_mapper
    from shipper.simulator import EventStore, SimConfig

    store = EventStore(SimConfig(events=count, seed=5, base_time=1_768_435_200.0, large_fraction=0.1), 1_768_435_200.0)
    mapper = build_mapper(config_from_mapping({"output": {"schema": schema}}))
    out = []
    for ev in store.events:
        raw = msgspec.json.encode(ev.doc)
        event, _ = decode_event(raw)
        out.append(json.loads(msgspec.json.encode(mapper(event, msgspec.Raw(raw), "standard"))))
    return out


_ABSENT = object()


def vector_dedupe_key(record: dict[str, Any], fields: list[str]) -> tuple[Any, ...]:
    """Vector's dedupe cache key with fields.match: each field's value, or absent."""
    key = []
    for path in fields:
        value: Any = record
        for part in path.split("."):
            value = value.get(part, _ABSENT) if isinstance(value, dict) else _ABSENT
        key.append("<absent>" if value is _ABSENT else json.dumps(value, sort_keys=True))
    return tuple(key)


@pytest.mark.parametrize("schema", sorted(harness.ID_FIELDS))
def test_vector_dedupe_key_is_the_records_own_id(schema: str) -> None:
    """Distinct events keep distinct keys, a repeat shares its key, in every schema, in every template."""
    records = schema_records(schema)
    id_field = harness.ID_FIELDS[schema]
    ids = [harness.get_path(r, id_field) for r in records]
    assert None not in ids and len(set(ids)) == len(records)
    for path in [*VECTOR_FILES, VECTOR_HTTP, CONFIGS / "sidecar" / "vector-file.toml"]:
        (dedupe,) = [t for t in load_toml(path)["transforms"].values() if t["type"] == "dedupe"]
        fields = dedupe["fields"]["match"]
        keys = [vector_dedupe_key(r, fields) for r in records]
        assert len(set(keys)) == len(records), path.name
        repeat = copy.deepcopy(random.Random(1).choice(records))
        assert vector_dedupe_key(repeat, fields) in set(keys)


def test_vector_old_dedupe_key_dropped_every_event_of_other_schemas() -> None:
    """The old fields.match = ["siem_event_id"]: every ecs record had the same (empty) key."""
    records = schema_records("ecs", 50)
    assert len({vector_dedupe_key(r, ["siem_event_id"]) for r in records}) == 1
    cfg = _vector_main()
    cfg["transforms"]["genesys_audit_dedupe"]["fields"]["match"] = ["siem_event_id"]
    assert any("misses the id field" in p for p in vector_contract_problems(cfg, VECTOR_MAIN.read_text()))


def _first_present(record: dict[str, Any], fields: list[str]) -> Any:
    for f in fields:
        value = harness.get_path(record, f) if f != "@timestamp" else record.get("@timestamp")
        if value is not None:
            return value
    return None


@pytest.mark.parametrize("schema", sorted(harness.ID_FIELDS))
def test_vector_elastic_id_and_time_chains_read_every_schema(schema: str) -> None:
    """The VRL `if exists(...)` chains for the document _id and the event time, run on real records."""
    cfg = load_toml(VECTOR_MAIN)
    shape = cfg["transforms"]["genesys_audit_elastic_shape"]["source"]
    clean = cfg["transforms"]["genesys_audit_clean"]["source"]
    id_chain = vrl_exists_chain(vrl_assigns([shape], ".genesys_audit_doc_id"))
    time_chain = vrl_exists_chain(vrl_assigns([clean], "stamp"))
    assert id_chain and time_chain
    for record in schema_records(schema, 40):
        assert _first_present(record, id_chain) == harness.get_path(record, harness.ID_FIELDS[schema])
        stamp = _first_present(record, time_chain)
        assert isinstance(stamp, str) and datetime.fromisoformat(stamp.replace("Z", "+00:00")).tzinfo is not None


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

FB_SPECS = {spec.name: spec for spec in harness.TEMPLATES}


@pytest.mark.parametrize("name", sorted(FB_SPECS))
def test_fluent_bit_template(name: str) -> None:
    assert fb_check(FB_SPECS[name]) == []


def test_every_shipped_fluent_bit_file_is_covered() -> None:
    """Each Fluent Bit config in the repository is a TemplateSpec: checked here and run end to end."""
    shipped = {p for p in [*REPO.glob("fluent-bit*"), *(CONFIGS / "fluent-bit").iterdir(),
                           *(CONFIGS / "sidecar").glob("fluent-bit*")] if p.name != "parsers.conf"}
    assert shipped == {spec.path for spec in harness.TEMPLATES}


@pytest.mark.parametrize("name", sorted(FB_SPECS))
def test_fluent_bit_yaml_has_a_yaml_name(name: str) -> None:
    """Fluent Bit reads `-c x.yaml.example` as classic: a YAML template must end in .yaml."""
    spec = FB_SPECS[name]
    looks_yaml = re.search(r"(?m)^pipeline:", spec.path.read_text()) is not None
    assert looks_yaml == (spec.path.suffix == ".yaml")


def fb_norm(value: Any) -> str:
    """A value as Fluent Bit reads it: on/true/yes are one thing."""
    text = fb_str(value)
    flag = fb_bool(text)
    return text if flag is None else ("on" if flag else "off")


def _outputs_by_plugin(cfg: FbConfig) -> dict[str, dict[str, Any]]:
    drop = {"alias", "match", "processors"}
    return {o.plugin: {k: fb_norm(v) for k, v in o.props.items() if k not in drop} for o in cfg.of("OUTPUT")}


@pytest.mark.parametrize(("a", "b"), [("fluent-bit.example.yaml", "fluent-bit.conf.example"),
                                      ("http-input.yaml", "http-input.conf"),
                                      ("fluent-bit.example.yaml", "http-input.yaml")])
def test_fluent_bit_templates_agree(a: str, b: str) -> None:
    """The same service settings and the same output settings wherever two templates share an output."""
    (ca, _), (cb, _) = load_fb(FB_SPECS[a].path), load_fb(FB_SPECS[b].path)
    sa, sb = ({k: fb_norm(v) for k, v in c.of("SERVICE")[0].props.items() if k != "parsers_file"} for c in (ca, cb))
    assert sa == sb
    oa, ob = _outputs_by_plugin(ca), _outputs_by_plugin(cb)
    shared = oa.keys() & ob.keys()
    assert shared >= {"splunk", "es", "azure_logs_ingestion", "http"}
    for plugin in shared:
        assert oa[plugin] == ob[plugin], plugin


@pytest.mark.parametrize("name", ["splunk", "sentinel", "elastic", "syslog"])
def test_fluent_bit_siem_config_has_its_output(name: str) -> None:
    cfg, _ = load_fb(CONFIGS / "fluent-bit" / f"{name}.conf")
    assert [o.plugin for o in cfg.of("OUTPUT")] == [FB_SIEMS[name]]


def test_fluent_bit_sidecar_tail_reads_the_shippers_file() -> None:
    cfg, _ = load_fb(CONFIGS / "sidecar" / "fluent-bit-tail.conf")
    (tail,) = cfg.of("INPUT")
    shipper = shipper_config(CONFIGS / "sidecar" / "shipper.yaml")
    assert fb_get(tail, "path") == shipper.output.path
    assert fb_size(fb_get(tail, "buffer_max_size") or "0") >= shipper.output.max_line_bytes


_YAML = "fluent-bit.example.yaml"
_CLASSIC = "fluent-bit.conf.example"
FB_BREAKAGES = [
    # (template, old, new, expected problem)
    (_CLASSIC, "    buf_size            128k\n", "    buf_size            32k\n", "buf_size 32k is below"),
    (_CLASSIC, "    buf_size            128k\n", "", "buf_size 4096 is below"),
    (_CLASSIC, "    oneshot             true\n", "    oneshot             false\n", "oneshot must be on"),
    (_CLASSIC, "    threaded            on\n", "", "threaded must be on"),
    (_CLASSIC, "    thread.ring_buffer.window 1\n", "", "thread.ring_buffer.window must be 1"),
    (_CLASSIC, "    storage.type        filesystem\n", "    storage.type        memory\n",
     "storage.type must be filesystem"),
    (_CLASSIC, "    storage.path              /var/lib/fluent-bit/storage\n", "", "storage.path is not set"),
    (_CLASSIC, "    storage.checksum          off\n", "    storage.checksum          on\n",
     "storage.checksum must be off"),
    (_CLASSIC, "    storage.checksum          off\n", "", "storage.checksum must be off"),
    (_CLASSIC, "    storage.sync              full\n", "    storage.sync              normal\n",
     "storage.sync must be full"),
    (_CLASSIC, "    scheduler.cap             30\n", "", "scheduler.cap must be set"),
    (_CLASSIC, "    scheduler.cap             30\n", "    scheduler.cpa             30\n", "unknown key 'scheduler.cpa'"),
    (_CLASSIC, "    retry_limit      no_limits\n", "    retry_limit      5\n", "retry_limit must be no_limits"),
    (_CLASSIC, "    id_key             siem_event_id\n", "    id_key             id\n", "id_key 'id', expected"),
    (_CLASSIC, "    write_operation    create\n", "    write_operation    index\n", "write_operation 'index'"),
    (_CLASSIC, "    index              logs-genesys_cloud.audit-default\n", "    index              genesys-audit\n",
     "index 'genesys-audit'"),
    (_CLASSIC, "event_sourcetype genesyscloud:shipper:audit", "event_sourcetype genesyscloud:operational:audits",
     "event_sourcetype 'genesyscloud:operational:audits'"),
    (_CLASSIC, "    table_name     GenesysCloudAudit_CL\n", "    table_name     GenesysAudit_CL\n",
     "table_name 'GenesysAudit_CL'"),
    (_CLASSIC, "    format           json_lines\n", "    format           json\n", "format 'json', expected"),
    (_CLASSIC, "    tls.verify       on\n", "    tls.verfy        on\n", "unknown key 'tls.verfy'"),
    (_CLASSIC, "    suppress_type_name on\n", "    suppress_type_names on\n", "unknown key 'suppress_type_names'"),
    (_CLASSIC, "    parser              genesys_audit_json\n", "    parser              genesys_json\n",
     "'genesys_json' is not defined"),
    (_CLASSIC, "    parser              genesys_audit_json\n", "", "raw line `exec`"),
    (_CLASSIC, "run --config /etc/genesys-audit-shipper/config.yaml\n    oneshot",
     "run --configuration /etc/genesys-audit-shipper/config.yaml\n    oneshot", "CLI rejects"),
    (_CLASSIC, "--once --max-runtime 50s", "--max-runtime 50s", "--once is missing"),
    (_CLASSIC, "--once --max-runtime 50s", "--once --max-runtime 2m", "must be below interval_sec"),
    (_CLASSIC, "    match            genesys*\n    host             splunk", "    match            genesys.tier.*\n"
     "    host             splunk", "receives no records"),
    (_CLASSIC, "[OUTPUT]\n    name             splunk\n", "[FILTER]\n    name                 rewrite_tag\n"
     "    match                genesys\n    rule                 $audit_tier ^(.+)$ genesys.$1 false\n"
     "    emitter_name         tiers\n    emitter_storage.type filesystem\n\n[OUTPUT]\n    name             splunk\n",
     "rewrite_tag: its emitter drops records"),
    ("syslog.conf", "    syslog_maxsize         128k\n", "    syslog_maxsize         65536\n", "syslog_maxsize 65536 cuts"),
    ("syslog.conf", "    syslog_maxsize         128k\n", "", "syslog_maxsize 0 cuts"),
    ("syslog.conf", "    syslog_appname_preset  genesys-audit\n", "", "syslog_appname_preset None"),
    ("syslog.conf", "    syslog_hostname_key    syslog_hostname\n", "", "no HOSTNAME"),
    ("syslog.conf", "    hostname_key syslog_hostname\n", "    hostname_key host\n", "no HOSTNAME"),
    ("syslog.conf", "    preserve_key on\n", "    preserve_key off\n", "'exec' is not in its records"),
    ("syslog.conf", "    mode                   tls\n", "    mode                   udp\n", "mode must be tls"),
    ("syslog.conf", "    mode                   tls\n", "    mode                   tlss\n", "'tlss' is not one of"),
    (_YAML, "            exclude: audit_tier ^high_volume$\n", "            exclude: audit_tier ^standard$\n",
     "are not the promised"),
    (_YAML, "            regex: audit_tier ^high_value$\n", "            regex: tier ^high_value$\n",
     "does not test audit_tier"),
    (_YAML, "      match: genesys*\n      host: splunk", "      host: splunk", "[OUTPUT] splunk: receives no records"),
    (_YAML, "      storage.type: filesystem\n", "      storage.type: filesystem\n      routes:\n        logs:\n"
     "          - name: all\n            to:\n              outputs: [splunk]\n", "keeping it on disk"),
    (_YAML, "  storage.checksum: off\n", "  storage.checksum: on\n", "storage.checksum must be off"),
    (_YAML, "            preserve_key: on\n", "            preserve_key: off\n", "'exec' is not in its records"),
    (_YAML, "            key: exec\n", "            key: raw\n", "still carry the raw line"),
    (_YAML, "    time_keep: on\n", "    time_keep: off\n", "time_keep must be on"),
    (_YAML, "            hostname_key: syslog_hostname\n", "            hostname_key: hostname\n", "no HOSTNAME"),
    ("http-input.yaml", "      http_server.buffer_max_size: 64M\n", "", "http_server.buffer_max_size 4M is below"),
    ("http-input.yaml", "      listen: 127.0.0.1\n", "      listen: 0.0.0.0\n", "checks no token"),
    ("http-input.yaml", "            key_name: siem_timestamp\n", "            key_name: time\n",
     "no parser sets the record time"),
    ("http-input.conf", "    http_server.buffer_max_size 64M\n", "    http_server.workers         4\n",
     "keep one worker"),
    ("fluent-bit-tail.conf", "    db                /var/lib/fluent-bit/genesys-audit-tail.db\n", "",
     "tail needs a db"),
    # The per-SIEM schemas: the Elastic template reads ecs records, the Sentinel one asim records.
    ("elastic.conf", "    parser              genesys_audit_ecs\n", "    parser              genesys_audit_json\n",
     "reads siem records; the template runs ecs"),
    ("elastic.conf", "    id_key             $event['id']\n", "    id_key             siem_event_id\n",
     "id_key 'siem_event_id', expected \"$event['id']\""),
    ("elastic.conf", "shipper/elastic.yaml\n    oneshot", "shipper/config.yaml\n    oneshot",
     "--config is not /etc/genesys-audit-shipper/elastic.yaml"),
    ("sentinel.conf", "    parser              genesys_audit_asim\n", "    parser              genesys_audit_ecs\n",
     "no parser sets the record time from TimeGenerated"),
]


@pytest.mark.parametrize(("name", "old", "new", "expected"), FB_BREAKAGES, ids=[f"{b[0]}:{b[3][:40]}" for b in FB_BREAKAGES])
def test_fluent_bit_checker_reports(name: str, old: str, new: str, expected: str) -> None:
    spec = FB_SPECS[name]
    text = spec.path.read_text()
    assert old in text, old
    problems = fb_check(spec, text.replace(old, new))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("time_keep   on", "time_keep   off", "time_keep must be on"),
    ("time_key    siem_timestamp", "time_key    time", "time_key must be siem_timestamp"),
    ("%S.%L%z\n    time_keep   on\n\n#", "%S\n    time_keep   on\n\n#", "does not read"),
    ("%S.%L%z\n    time_keep   on\n\n#", "%S.%LZ\n    time_keep   on\n\n#", "reads 2026-01-15T00:00:00.123Z as"),
    ("format      json", "format      ltsv", "format must be json"),
    ("regex       ^(?<siem_timestamp>.+)$", "regex       ^(?<time>.+)$", "must capture siem_timestamp"),
    ("time_key    @timestamp", "time_key    timestamp", "time_key must be @timestamp"),
    ("time_key    TimeGenerated", "time_key    siem_timestamp", "time_key must be TimeGenerated"),
])
def test_parser_checker_reports(old: str, new: str, expected: str) -> None:
    text = FB_PARSERS.read_text()
    assert old in text
    problems = [p for s in harness.parse_classic(text.replace(old, new, 1)) for p in parser_problems(s)]
    assert any(expected in p for p in problems), problems


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
    tail_conf, _ = load_fb(CONFIGS / "sidecar" / "fluent-bit-tail.conf")
    tail_db = fb_get(tail_conf.of("INPUT")[0], "db") or ""
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


HTTP_CONTRACT = {"url", "token_file", "timeout", "ca_file"}  # output.http as the shipper will accept it
SHIPPER_HTTP = CONFIGS / "sidecar" / "shipper-http.yaml"


def test_sidecar_http_shipper_config() -> None:
    doc = yaml.safe_load(SHIPPER_HTTP.read_text())
    http = doc["output"]["http"]
    assert set(http) <= HTTP_CONTRACT and {"url", "token_file", "timeout"} <= set(http)
    # the agents listen where the shipper posts
    fb, _ = load_fb(CONFIGS / "fluent-bit" / "http-input.yaml")
    (inp,) = fb.of("INPUT")
    assert http["url"] == f"http://{fb_get(inp, 'listen')}:{fb_get(inp, 'port')}/{fb_get(inp, 'tag')}"
    (src,) = load_toml(VECTOR_HTTP)["sources"].values()
    assert http["url"] == f"http://{src['address']}{src['path']}"
    if harness.shipper_supports("output.http"):
        cfg = shipper_config(SHIPPER_HTTP)
    else:  # until the shipper has output.http, everything else must load
        from shipper.config import config_from_mapping

        del doc["output"]["http"]
        cfg = config_from_mapping(doc, env={"GENESYS_CLIENT_ID": "x"})
    assert cfg.output.path is None and cfg.genesys.client_secret_file


@pytest.mark.parametrize(("pod", "agent"), [("pod-http-fluent-bit.yaml", "fluent-bit"), ("pod-http-vector.yaml", "vector")])
def test_sidecar_http_pod(pod: str, agent: str) -> None:
    docs = load_yaml_all(CONFIGS / "sidecar" / pod)
    (spec,) = [d["spec"] for d in docs if d and d.get("kind") == "Pod"]
    claims = {d["metadata"]["name"] for d in docs if d and d.get("kind") == "PersistentVolumeClaim"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    shipper_c, agent_c = (next(c for c in spec["containers"] if c["name"] == n) for n in ("shipper", agent))
    argv = [*shipper_c["command"], *shipper_c.get("args", [])]
    assert cli_problems(argv, "shipper container", once=False) == []
    mount = _mount_for(shipper_c, parse_cli(argv).config)
    assert mount and "configMap" in volumes[mount["name"]]
    doc = yaml.safe_load(SHIPPER_HTTP.read_text())
    for path in (doc["genesys"]["client_secret_file"], doc["output"]["http"]["token_file"]):
        mount = _mount_for(shipper_c, path)
        items = {i["path"] for i in volumes[mount["name"]]["secret"]["items"]} if mount else set()
        assert Path(path).name in items, path
    mount = _mount_for(shipper_c, doc["state"]["path"])
    assert mount and volumes[mount["name"]]["persistentVolumeClaim"]["claimName"] in claims
    if agent == "fluent-bit":
        conf = agent_c["args"][agent_c["args"].index("-c") + 1]
        assert conf.endswith(".yaml"), "Fluent Bit reads any other extension as classic"
        fb, _ = load_fb(CONFIGS / "fluent-bit" / "http-input.yaml")
        storage = fb_get(fb.of("SERVICE")[0], "storage.path") or ""
        assert {e["name"] for e in agent_c["env"]} >= harness.env_refs((CONFIGS / "fluent-bit" / "http-input.yaml")
                                                                      .read_text())
    else:
        conf = agent_c["args"][agent_c["args"].index("--config") + 1]
        cfg = load_toml(VECTOR_HTTP)
        storage = cfg["data_dir"]
        secrets = _mount_for(agent_c, cfg["secret"]["genesys_audit"]["path"])
        assert secrets and "secret" in volumes[secrets["name"]]
    mount = _mount_for(agent_c, conf)
    assert mount and "configMap" in volumes[mount["name"]]
    mount = _mount_for(agent_c, storage)
    assert mount and volumes[mount["name"]]["persistentVolumeClaim"]["claimName"] in claims
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


def fluent_bit_binary() -> str:
    binary = harness.find_fluent_bit()  # FLUENT_BIT, else PATH
    if binary is None:
        pytest.skip("no Fluent Bit: set FLUENT_BIT or put fluent-bit on PATH (.ci/run uses ../shared/bin)")
    return binary


@pytest.mark.parametrize("name", sorted(FB_SPECS))
def test_fluent_bit_dry_run(name: str) -> None:
    """As shipped, with the command its header gives, from its own directory."""
    binary, spec = fluent_bit_binary(), FB_SPECS[name]
    text = spec.path.read_text()
    m = re.search(r"(?m)^#.*\bfluent-bit --dry-run -c (\S+)", text)
    assert m and m.group(1) == spec.path.name, "the header gives the check command for this very file"
    env = {**os.environ, **{k: "x" for k in harness.env_refs(text)}}
    result = subprocess.run([binary, "--dry-run", "-c", m.group(1)], capture_output=True, text=True, timeout=60,
                            env=env, cwd=spec.path.parent)
    assert result.returncode == 0 and "configuration test is successful" in result.stdout + result.stderr, \
        result.stdout + result.stderr


def test_fluent_bit_reads_a_yaml_example_suffix_as_classic(tmp_path: Path) -> None:
    """Why the YAML templates end in .yaml: the old `-c fluent-bit.yaml.example` fails."""
    binary = fluent_bit_binary()
    copy_ = tmp_path / "fluent-bit.yaml.example"
    shutil.copy(FB_SPECS["fluent-bit.example.yaml"].path, copy_)
    env = {**os.environ, **harness.SECRETS}
    result = subprocess.run([binary, "--dry-run", "-c", str(copy_)], capture_output=True, text=True, timeout=60,
                            env=env)
    assert result.returncode != 0


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
    ("transforms.genesys_audit_elastic_shape.inputs", ["genesys_audit_tiers.high-value", "genesys_audit_tiers.standard",
                                                       "genesys_audit_tiers._unmatched"],
     "'genesys_audit_tiers.high-value' is not"),
    ("transforms.genesys_audit_elastic_shape.inputs", ["genesys_audit_tiers.standard"],
     "'genesys_audit_tiers.high_volume' goes nowhere"),
    ("sinks.sentinel.type", "azure_monitor_logz", "unknown sink type 'azure_monitor_logz'"),
    ("sinks.sentinel.auth.azure_client_secret", _DELETE, "auth.azure_client_secret: required option missing"),
    ("sinks.splunk.default_token", "SECRET[vault.hec]", "secret backend 'vault' is not defined"),
    ("sinks.splunk.endpoint", "${SPLUNK_URL}", "interpolation is off"),
    ("transforms.genesys_audit_dedupe.fields", {}, "fields.match: required option missing"),
    ("transforms.genesys_audit_dedupe.cache.num_events", -5, "cache.num_events: expected uint"),
    ("secret.genesys_audit.paht", "/x", "secret.genesys_audit.paht: unknown option"),
    ("sinks.syslog.encoding.syslog.rfc", "rfc9999", "'rfc9999' is not one of"),
    ("sinks.syslog.encoding.syslog.appname", "x", "syslog.appname: unknown option"),
    ("sinks.syslog.tls", {"enabled": True, "verify_certs": True}, "tls.verify_certs: unknown option"),
    ("sinks.genesys_audit_shipper_logs.target", "journal", "'journal' is not one of"),
]


@pytest.mark.parametrize(("path", "value", "expected"), VECTOR_BREAKAGES, ids=[b[2][:40] for b in VECTOR_BREAKAGES])
def test_vector_validator_reports(path: str, value: Any, expected: str) -> None:
    cfg = _vector_main()
    _mutate(cfg, path, value)
    problems = vector_problems(cfg)
    assert any(expected in p for p in problems), problems


_OLD_SYSLOG_SHAPE = """
ts = .timestamp
. = {"message": encode_json(.), "timestamp": ts, "hostname": get_hostname() ?? "genesys-audit-shipper"}
"""
_ELASTIC_SHAPE_NO_TIMESTAMP = """
.genesys_audit_doc_id = if exists(.siem_event_id) { .siem_event_id } else if exists(.event.id) { .event.id } \
else if exists(.metadata.uid) { .metadata.uid } else if exists(.EventOriginalUid) { .EventOriginalUid } else { .id }
""".replace("\\\n", "")
CONTRACT_BREAKAGES = [
    # The mistakes of the old templates (issue 12), each caught:
    ("sources.genesys_audit.include_stderr", False, "include_stderr = false drops the shipper's log lines"),
    ("transforms.genesys_audit_dedupe.fields.match", ["siem_event_id"], "misses the id field(s)"),
    ("transforms.genesys_audit_syslog_shape.source", _OLD_SYSLOG_SHAPE, "the syslog encoder reads .host"),
    ("sinks.syslog.encoding.syslog.app_name", _DELETE, "app_name must be 'genesys-audit'"),
    ("transforms.genesys_audit_elastic_shape.source", _ELASTIC_SHAPE_NO_TIMESTAMP, "sets @timestamp"),
    ("sinks.elastic.id_key", "siem_event_id", "removes the record's own id"),
    ("sinks.elastic.request_retry_partial", _DELETE, "request_retry_partial None, expected True"),
    # and the rest of the contract
    ("sources.genesys_audit.mode", "scheduled", "expected streaming"),
    ("sources.genesys_audit.decoding", {"codec": "bytes"}, "decoding.codec must be json"),
    ("sources.genesys_audit.command", ["genesys-audit-shipper", "run", "--cfg", CONFIG_PATH], "CLI rejects"),
    ("sources.genesys_audit.command", ["genesys-audit-shipper", "status", "--config", CONFIG_PATH], "not run"),
    ("sources.genesys_audit.command", ["genesys-audit-shipper", "run", "--config", CONFIG_PATH, "--once"],
     "--once is set"),
    ("sources.genesys_audit.command", ["shipper", "run", "--config", CONFIG_PATH], "does not start"),
    ("sources.genesys_audit.framing.newline_delimited.max_length", 4096, "framing max_length 4096"),
    ("transforms.genesys_audit_streams.route.records", '.stream == "out"', "no route on .stream"),
    ("sinks.splunk.inputs", ["genesys_audit_tiers.standard", "genesys_audit_streams.logs"],
     "carries the shipper's stderr log lines to a SIEM"),
    ("transforms.genesys_audit_tiers.route.high_value", '.tier == "high_value"', "does not route on .audit_tier"),
    ("sinks.elastic.id_key", "doc_id", "no remap on its path sets .doc_id"),
    ("sinks.elastic.bulk.action", "index", "expected create into the data stream"),
    ("sinks.elastic.bulk.index", "genesys-audit", "expected create into the data stream"),
    ("sinks.splunk.sourcetype", "genesys:cloud:audit", "sourcetype 'genesys:cloud:audit'"),
    ("sinks.splunk.index", "main", "index 'main'"),
    ("sinks.sentinel.stream_name", "Custom-GenesysAudit_CL", "stream_name 'Custom-GenesysAudit_CL'"),
    ("sinks.splunk.buffer.type", "memory", "sinks.splunk.buffer.type must be disk"),
    ("sinks.sentinel.buffer.max_size", 1000000, "buffer.max_size must be >= 268435488"),
    ("sinks.sentinel.buffer.when_full", "drop_newest", "when_full drops events"),
    ("sinks.syslog.encoding.codec", "json", "encoding must be syslog rfc5424"),
    ("sinks.syslog.inputs", ["genesys_audit_clean"], "skips the records route, dedupe or tiers"),
    ("sinks.sentinel.type", "azure_monitor_logs", "azure_monitor_logs is deprecated"),
]


@pytest.mark.parametrize(("path", "value", "expected"), CONTRACT_BREAKAGES,
                         ids=[b[2][:40] for b in CONTRACT_BREAKAGES])
def test_vector_contract_reports(path: str, value: Any, expected: str) -> None:
    cfg = _vector_main()
    _mutate(cfg, path, value)
    problems = vector_contract_problems(cfg, VECTOR_MAIN.read_text())
    assert any(expected in p for p in problems), problems


HTTP_CONTRACT_BREAKAGES = [
    ("sinks.elastic.acknowledgements.enabled", False, "sinks.elastic.acknowledgements.enabled must be true"),
    ("sinks.splunk.acknowledgements", _DELETE, "sinks.splunk.acknowledgements.enabled must be true"),
    ("sources.genesys_audit_http.address", "0.0.0.0:9880", "loopback only"),
    ("sources.genesys_audit_http.auth", _DELETE, "must check the shipper's Bearer token"),
    ("sources.genesys_audit_http.decoding.codec", "bytes", "decoding.codec must be json"),
    ("sources.genesys_audit_http.framing.method", "bytes", "framing.method must be newline_delimited"),
]


@pytest.mark.parametrize(("path", "value", "expected"), HTTP_CONTRACT_BREAKAGES,
                         ids=[b[2][:40] for b in HTTP_CONTRACT_BREAKAGES])
def test_vector_http_contract_reports(path: str, value: Any, expected: str) -> None:
    cfg = copy.deepcopy(load_toml(VECTOR_HTTP))
    _mutate(cfg, path, value)
    problems = vector_contract_problems(cfg, VECTOR_HTTP.read_text(), source_type="http_server")
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


def test_yaml_loader_rejects_duplicate_keys(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("a: 1\nb: 2\na: 3\n")
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key"):
        load_yaml_all(path)


def test_full_yaml_check_notices_a_changed_default(tmp_path: Path) -> None:
    changed, n = re.subn(r"\n  page_size: \d+", "\n  page_size: 200", (CONFIGS / "full.yaml").read_text())
    assert n == 1
    path = tmp_path / "full.yaml"
    path.write_text(changed)
    got = msgspec.structs.asdict(shipper_config(path).poll)
    assert got != msgspec.structs.asdict(Config().poll)


# ---------------------------------------------------------------------------------------------
# The SIEM-side names and schemas: each template points at the content of configs/<siem>/


def _template_argv(path: Path) -> list[str]:
    """The shipper command a Vector or Fluent Bit template runs."""
    if path in VECTOR_FILES:
        (src,) = [s for s in load_toml(path)["sources"].values() if s["type"] == "exec"]
        return list(src["command"])
    cfg, _ = load_fb(path)
    (inp,) = cfg.of("INPUT")
    return shell_argv(fb_get(inp, "command") or "")


_EXEC_TEMPLATES = [*VECTOR_FILES, *(spec.path for spec in harness.TEMPLATES if spec.source == "exec")]


@pytest.mark.parametrize("path", _EXEC_TEMPLATES, ids=lambda p: str(p.relative_to(REPO)))
def test_template_runs_the_schema_its_siem_content_reads(path: Path) -> None:
    """elastic -> configs/elastic/shipper.yaml (ecs), sentinel -> configs/sentinel/shipper.yaml (asim),
    everything else -> configs/production.yaml (siem); the installed path names the repository file."""
    siem = path.stem if path.parent.name in ("vector", "fluent-bit") else None
    want = harness.SIEM_SCHEMAS.get(siem or "", "siem")
    config = parse_cli(_template_argv(path)).config
    assert config == SCHEMA_CONFIGS[want]
    assert shipper_config(CONFIG_FILES[config]).output.schema == want


def test_each_shipper_config_keeps_its_own_state() -> None:
    """Two shippers on one host (Splunk's and Sentinel's templates, say) must not share a state file."""
    states = [shipper_config(path).state.path for path in CONFIG_FILES.values()]
    assert len(set(states)) == len(states)
    routing = {path: yaml.safe_load(path.read_text())["routing"] for path in CONFIG_FILES.values()}
    assert len({json.dumps(r, sort_keys=True) for r in routing.values()}) == 1, "the tiers the templates route on"


def test_siem_names_are_the_contents_names() -> None:
    """The names every template is held to (harness constants) are the ones the SIEM content defines."""
    from shipper.content import sentinel, splunk

    assert harness.SENTINEL_STREAM == sentinel.STREAM and harness.SENTINEL_STREAM.removeprefix("Custom-") == sentinel.TABLE
    deploy = json.loads((CONFIGS / "sentinel" / "deploy.json").read_text())
    (dcr,) = [r for r in deploy["resources"] if r["type"] == "Microsoft.Insights/dataCollectionRules"]
    assert list(dcr["properties"]["streamDeclarations"]) == [harness.SENTINEL_STREAM]
    assert [f["outputStream"] for f in dcr["properties"]["dataFlows"]] == [harness.SENTINEL_STREAM]
    assert (harness.SPLUNK_SOURCETYPE, harness.SPLUNK_INDEX) == (splunk.SOURCETYPE, splunk.INDEX)
    props = (CONFIGS / "splunk" / "genesys_audit" / "default" / "props.conf").read_text()
    assert f"\n[{harness.SPLUNK_SOURCETYPE}]\n" in props
    template = json.loads((CONFIGS / "elastic" / "index-template.json").read_text())
    assert any(re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), harness.ES_INDEX)
               for p in template["index_patterns"])
    assert "data_stream" in template and harness.ES_INDEX.startswith("logs-")


@pytest.mark.parametrize("path", [CONFIGS / "vector" / "sentinel.toml", VECTOR_MAIN, VECTOR_HTTP],
                         ids=lambda p: p.name)
def test_vector_sentinel_sink_names_the_dcr_stream(path: Path) -> None:
    (sink,) = [s for s in load_toml(path)["sinks"].values() if s["type"] == "azure_logs_ingestion"]
    assert sink["stream_name"] == harness.SENTINEL_STREAM
    assert sink["timestamp_field"] == "TimeGenerated", "the DCR's table needs TimeGenerated on every row"


@pytest.mark.parametrize("siem", sorted(harness.SIEM_SCHEMAS))
def test_vector_contract_reports_the_wrong_shipper_config(siem: str) -> None:
    path = CONFIGS / "vector" / f"{siem}.toml"
    cfg = load_toml(path)
    cfg["sources"]["genesys_audit"]["command"] = ["genesys-audit-shipper", "run", "--config", CONFIG_PATH]
    want = SCHEMA_CONFIGS[harness.SIEM_SCHEMAS[siem]]
    assert f"--config is not {want}" in " ".join(vector_contract_problems(cfg, path.read_text(), config_path=want))

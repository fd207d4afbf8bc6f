"""YAML config decoded into msgspec Structs: interpolation, durations, regions, validation.

Every error is one line naming the key (never echoing a secret) and says how to fix it.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import stat
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import yaml

from .errors import ConfigError
from .filters import FiltersConfig, ReduceRule, RoutingConfig
from .schemas import SCHEMAS
from .sources import SOURCES

REGIONS: dict[str, str] = {
    "us-east-1": "mypurecloud.com",
    "us-east-2": "use2.us-gov-pure.cloud",
    "us-west-2": "usw2.pure.cloud",
    "ca-central-1": "cac1.pure.cloud",
    "sa-east-1": "sae1.pure.cloud",
    "eu-west-1": "mypurecloud.ie",
    "eu-west-2": "euw2.pure.cloud",
    "eu-central-1": "mypurecloud.de",
    "eu-central-2": "euc2.pure.cloud",
    "me-central-1": "mec1.pure.cloud",
    "ap-south-1": "aps1.pure.cloud",
    "ap-southeast-1": "apse1.pure.cloud",
    "ap-southeast-2": "mypurecloud.com.au",
    "ap-northeast-1": "mypurecloud.jp",
    "ap-northeast-2": "apne2.pure.cloud",
    "ap-northeast-3": "apne3.pure.cloud",
    "mx-central-1": "mxc1.pure.cloud",
}

MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_NODES = 100_000
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME_LIKE = re.compile(r"^[a-z]{2}-[a-z]+-\d$")


class Duration(float):
    """Seconds, written in YAML as `30s`, `5m`, `2h`, `7d`."""


class StartFrom(str):
    """An ISO-8601 time or a lookback duration such as `24h`."""


def parse_duration(text: object) -> Duration:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if not math.isfinite(text):
            raise ValueError(f"{text!r} is not a duration: write a finite number and a unit, e.g. 30s")
        return Duration(float(text))
    if isinstance(text, str):
        m = _DURATION.match(text)
        if m:
            return Duration(float(m.group(1)) * _UNITS[m.group(2)])
    raise ValueError(f"{text!r} is not a duration: write a number and a unit, e.g. 30s, 5m, 2h, 7d")


def parse_time(text: str) -> datetime:
    """ISO-8601 (a zone is required, or UTC is assumed) to an aware UTC datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def resolve_start(text: str, now: datetime) -> datetime:
    """A start point: ISO time, or `now - duration`."""
    if _DURATION.match(text):
        return now - timedelta(seconds=parse_duration(text))
    return parse_time(text)


def _start_from(obj: Any) -> StartFrom:
    if isinstance(obj, datetime):  # an unquoted ISO time in YAML
        obj = (obj if obj.tzinfo else obj.replace(tzinfo=timezone.utc)).isoformat()
    elif isinstance(obj, date):
        obj = obj.isoformat() + "T00:00:00+00:00"
    if not isinstance(obj, str):
        raise ValueError(f"{obj!r} is neither an ISO-8601 time nor a duration such as 24h")
    now = datetime.now(timezone.utc)
    try:
        start = resolve_start(obj, now)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{obj!r} is neither an ISO-8601 time (2026-01-15T00:00:00Z) nor a duration such as 24h"
        ) from None
    if start > now + timedelta(days=1):
        raise ValueError(f"{obj!r} is in the future: nothing would be shipped; use a past time or a lookback")
    return StartFrom(obj)


def _dec_hook(tp: type, obj: Any) -> Any:
    if tp is Duration:
        return parse_duration(obj)
    if tp is StartFrom:
        return _start_from(obj)
    raise NotImplementedError(tp)


def _positive(key: str, value: float, example: str) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{key} must be a positive duration, e.g. {example}")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


class GenesysConfig(_Strict):
    region: str = "us-east-1"
    api_url: str | None = None
    login_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    client_secret_file: str | None = None
    api: str = "audits-query"
    token_refresh_margin: Duration = Duration(500)
    connect_timeout: Duration = Duration(10)
    read_timeout: Duration = Duration(60)
    allow_redirect: bool = False
    proxy: str | None = None
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        if self.region not in REGIONS and not (self.api_url and self.login_url):
            # A secret pasted into the wrong key must not be echoed: show only region-like values.
            shown = f" {self.region!r}" if _NAME_LIKE.match(self.region) else ""
            raise ValueError(f"genesys.region{shown} is unknown: use one of {', '.join(REGIONS)} "
                             "or set genesys.api_url and genesys.login_url")
        if self.api not in SOURCES:
            raise ValueError(f"genesys.api {self.api!r} is unknown: use one of {', '.join(SOURCES)}")
        if self.client_secret is not None and self.client_secret_file is not None:
            raise ValueError("set genesys.client_secret or genesys.client_secret_file, not both")
        for key in ("token_refresh_margin", "connect_timeout", "read_timeout"):
            _positive(f"genesys.{key}", getattr(self, key), "10s")


class PollConfig(_Strict):
    start_from: StartFrom = StartFrom("24h")
    interval: Duration = Duration(60)
    settle_delay: Duration = Duration(30)
    page_size: int = 500  # the API's maximum
    late_window: Duration = Duration(1800)
    health_interval: Duration = Duration(86400)
    retention: Duration = Duration(365 * 86400)
    max_window: Duration = Duration(31 * 86400)
    query_timeout: Duration = Duration(600)
    cursor_page_size: int = 100
    tail: str = "realtime"  # audits-query: how short recent windows are read (realtime | query)

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 500:
            raise ValueError(f"poll.page_size {self.page_size} is out of range: use 1 to 500")
        if self.tail not in ("realtime", "query"):
            raise ValueError(f"poll.tail {self.tail!r} is unknown: use realtime or query")
        if not 1 <= self.cursor_page_size <= 100:
            raise ValueError(
                f"poll.cursor_page_size {self.cursor_page_size} is out of range: use 1 to 100 (the guide says 50-100)"
            )
        for key, example in (("interval", "60s"), ("late_window", "30m"), ("health_interval", "24h"),
                             ("retention", "365d"), ("max_window", "31d"), ("query_timeout", "10m")):
            _positive(f"poll.{key}", getattr(self, key), example)
        if not (math.isfinite(self.settle_delay) and self.settle_delay >= 0):
            raise ValueError("poll.settle_delay must be 0 or more, e.g. 30s")
        if self.max_window > 31 * 86400:
            raise ValueError("poll.max_window must be between 1s and 31d (the API's longest interval)")
        if self.settle_delay > self.late_window:
            raise ValueError("poll.settle_delay must not exceed poll.late_window")
        if self.retention <= self.late_window:
            raise ValueError("poll.retention must be longer than poll.late_window, e.g. 365d")


class RateLimitConfig(_Strict):
    requests_per_minute: float = 300
    max_retries: int = 8
    backoff_base: Duration = Duration(1)
    backoff_max: Duration = Duration(60)

    def __post_init__(self) -> None:
        if not 0.1 <= self.requests_per_minute <= 1_000_000:
            raise ValueError("rate_limit.requests_per_minute must be between 0.1 and 1000000, e.g. 300")
        if not 0 <= self.max_retries <= 1000:
            raise ValueError("rate_limit.max_retries must be between 0 and 1000, e.g. 8")
        _positive("rate_limit.backoff_base", self.backoff_base, "1s")
        _positive("rate_limit.backoff_max", self.backoff_max, "60s")
        if self.backoff_max < self.backoff_base:
            raise ValueError("rate_limit.backoff_max must not be shorter than rate_limit.backoff_base")


STATE_BACKENDS = ("file", "etcd")


class EtcdConfig(_Strict):
    """Where several collectors keep their checkpoints and elect one leader per org."""

    endpoints: list[str] = msgspec.field(default_factory=lambda: ["http://127.0.0.1:2379"])
    prefix: str = "/genesys-audit-shipper/"
    lease_ttl: Duration = Duration(15)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password_file: str | None = None
    timeout: Duration = Duration(5)

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("state.etcd.endpoints is empty: give at least one, e.g. https://etcd-1:2379")
        if not 2 <= self.lease_ttl <= 300:
            raise ValueError("state.etcd.lease_ttl must be between 2s and 300s, e.g. 15s")
        _positive("state.etcd.timeout", self.timeout, "5s")
        if not self.prefix.startswith("/") or "\0" in self.prefix:
            raise ValueError("state.etcd.prefix must start with /, e.g. /genesys-audit-shipper/")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("state.etcd.cert_file and state.etcd.key_file go together (client TLS)")
        if (self.username is None) != (self.password_file is None):
            raise ValueError("state.etcd.username and state.etcd.password_file go together")


class StateConfig(_Strict):
    backend: str = "file"
    path: str = "genesys-audit-state.json"
    etcd: EtcdConfig = msgspec.field(default_factory=EtcdConfig)

    def __post_init__(self) -> None:
        if self.backend not in STATE_BACKENDS:
            raise ValueError(f"state.backend {self.backend!r} is unknown: use one of {', '.join(STATE_BACKENDS)}")


CHAIN_MODES = ("sha256", "hmac-sha256", "off")


class HttpOutputConfig(_Strict):
    """Acknowledged delivery: each page is POSTed to the host agent's HTTP input; the checkpoint
    moves only after a 2xx."""

    url: str
    token_file: str | None = None  # sent as `Authorization: Bearer <token>`
    timeout: Duration = Duration(30)
    ca_file: str | None = None
    content_type: str = "application/json"  # Fluent Bit's http input refuses application/x-ndjson

    def __post_init__(self) -> None:
        _positive("output.http.timeout", self.timeout, "30s")


class OutputConfig(_Strict):
    schema: str = "siem"
    chain: str = "sha256"
    chain_key_file: str | None = None
    template: dict[str, Any] | None = None
    max_line_bytes: int = 65536
    quarantine: str | None = None
    reduce: list[ReduceRule] = msgspec.field(default_factory=list)
    path: str | None = None
    rotate_bytes: int = 100 * 1024 * 1024
    keep_files: int = 5
    http: HttpOutputConfig | None = None
    replay_on_start: int | None = None  # None: one page on stdout (exec mode), none to a file or over http

    def __post_init__(self) -> None:
        if self.schema not in SCHEMAS:
            raise ValueError(f"output.schema {self.schema!r} is unknown: use one of {', '.join(SCHEMAS)}")
        if self.chain not in CHAIN_MODES:
            raise ValueError(f"output.chain {self.chain!r} is unknown: use one of {', '.join(CHAIN_MODES)}")
        if self.chain == "hmac-sha256" and not self.chain_key_file:
            raise ValueError("output.chain is hmac-sha256 but output.chain_key_file is not set: give the key's file")
        if self.schema == "custom" and not self.template:
            raise ValueError("output.schema is custom but output.template is empty: give a mapping")
        if self.max_line_bytes < 1024:
            raise ValueError(f"output.max_line_bytes {self.max_line_bytes} is too small: use 1024 or more")
        if self.rotate_bytes < 4096 or self.keep_files < 1:
            raise ValueError("output.rotate_bytes must be >= 4096 and output.keep_files >= 1")
        if self.path and self.http:
            raise ValueError("set output.path or output.http, not both")
        if self.replay_on_start is not None and not 0 <= self.replay_on_start <= 100_000:
            raise ValueError("output.replay_on_start must be between 0 and 100000 events")

    def replay_events(self, page_size: int) -> int:
        """How many already-written events to write again at start."""
        if self.replay_on_start is not None:
            return self.replay_on_start
        return 0 if self.path or self.http else page_size


class MetricsConfig(_Strict):
    textfile: str | None = None
    stats_interval: Duration = Duration(60)


class Config(_Strict):
    genesys: GenesysConfig = msgspec.field(default_factory=GenesysConfig)
    poll: PollConfig = msgspec.field(default_factory=PollConfig)
    rate_limit: RateLimitConfig = msgspec.field(default_factory=RateLimitConfig)
    state: StateConfig = msgspec.field(default_factory=StateConfig)
    output: OutputConfig = msgspec.field(default_factory=OutputConfig)
    filters: FiltersConfig = msgspec.field(default_factory=FiltersConfig)
    routing: RoutingConfig = msgspec.field(default_factory=RoutingConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)

    @property
    def api_base(self) -> str:
        return (self.genesys.api_url or f"https://api.{REGIONS[self.genesys.region]}").rstrip("/")

    @property
    def login_base(self) -> str:
        return (self.genesys.login_url or f"https://login.{REGIONS[self.genesys.region]}").rstrip("/")


# -- validation helpers ------------------------------------------------------------------------
def _interpolate(node: Any, env: dict[str, str], path: str, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"config expands to more than {MAX_CONFIG_NODES} values (YAML aliases nested in "
                          "aliases?); write it out plainly")
    if isinstance(node, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            value = env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    raise ConfigError(
                        f"{path or 'config'}: environment variable {name} is not set; "
                        f"export it or write ${{{name}:-default}}"
                    )
                return default
            return value

        return _VAR.sub(sub, node)
    if isinstance(node, dict):
        return {k: _interpolate(v, env, f"{path}.{k}" if path else str(k), budget) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env, f"{path}[{i}]", budget) for i, v in enumerate(node)]
    return node


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(key: str, url: str, schemes: tuple[str, ...] = ("http", "https"), loopback_http: bool = True) -> None:
    """A URL we may send credentials to: right scheme, a host, a valid port, no userinfo."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port out of range
    except ValueError:
        raise ConfigError(f"{key}: not a valid URL (bad host or a port outside 1-65535); "
                          "write e.g. https://api.mypurecloud.com") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{key}: not an {'/'.join(schemes)} URL with a host; write e.g. {schemes[-1]}://host:port")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{key}: the URL must not carry credentials (user:password@); remove them")
    if port == 0:
        raise ConfigError(f"{key}: port 0 is not a port; use 1-65535")
    if loopback_http and parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"{key}: plain http is allowed only for loopback hosts, not {parts.hostname!r}; use https://"
        )


def _key_of(message: str) -> str:
    m = re.search(r"at `\$\.?([^`]*)`", message)
    return m.group(1) if m else ""


def interpolate(data: Any, source: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The parsed document with `${VAR}` replaced; the top level must be a mapping."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections (genesys:, poll:, ...)")
    return _interpolate(data, dict(os.environ) if env is None else env, "", [MAX_CONFIG_NODES])  # type: ignore[no-any-return]


def validate(data: dict[str, Any], source: str = "config", prefix: str = "") -> Config:
    """An interpolated mapping as a Config; errors name keys with `prefix` (e.g. `orgs[1].`)."""
    try:
        cfg = msgspec.convert(data, Config, dec_hook=_dec_hook, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe(str(exc), source, prefix)) from None
    for key, url in (("genesys.api_url", cfg.genesys.api_url), ("genesys.login_url", cfg.genesys.login_url)):
        if url:
            check_url(prefix + key, url)
    if cfg.genesys.proxy:
        check_url(prefix + "genesys.proxy", cfg.genesys.proxy, ("http", "https", "socks5", "socks5h"),
                  loopback_http=False)
    if cfg.output.http:
        check_url(prefix + "output.http.url", cfg.output.http.url)
    if cfg.state.backend == "etcd":
        for i, endpoint in enumerate(cfg.state.etcd.endpoints):
            check_url(f"{prefix}state.etcd.endpoints[{i}]", endpoint)
    return cfg


def config_from_mapping(data: Any, source: str = "config", env: dict[str, str] | None = None) -> Config:
    """Validate an already-parsed mapping (from YAML) into a Config."""
    return validate(interpolate(data, source, env), source)


def _describe(text: str, source: str, prefix: str = "") -> str:
    key = _key_of(text)
    detail = re.sub(r"\s*-\s*at `[^`]*`$", "", text)
    for name in re.findall(r"\b((?:genesys|poll|rate_limit|state|output|filters|routing|metrics)\.[\w.]+)", detail):
        detail = detail.replace(name, prefix + name) if prefix and prefix + name not in detail else detail
    if "unknown field" in detail:
        field = re.search(r"`([^`]*)`", detail)
        name = f"{key}.{field.group(1)}" if key and field else (field.group(1) if field else key)
        return f"{source}: unknown key {prefix + name!r}; check its spelling against the README's config table"
    where = f" {prefix}{key}:" if key and key not in detail else ""
    return f"{source}:{where} {detail}"


# -- YAML ------------------------------------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (the last one would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise ConfigError(f"{self.name}: line {mark.line + 1}: key {key!r} appears twice in one mapping; "
                                  "keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_regular_file(path: Path, key: str, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """A regular file's bytes: never blocks on a FIFO or a device, never reads more than `limit`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigError(f"{key}: {str(path)!r} not found; give the path of an existing file") from None
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {str(path)!r} ({exc.strerror}); check its permissions") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{key}: {str(path)!r} is not a regular file (a FIFO or device?); give a file")
        if st.st_size > limit:
            raise ConfigError(f"{key}: {str(path)!r} is larger than {limit} bytes; is it the right file?")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {str(path)!r} ({exc.strerror})") from None
    finally:
        os.close(fd)


def load_config(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Config:
    """One org's config from a file without `orgs:` (see orgs.load_deployment for the general case)."""
    return config_from_mapping(parse_yaml_file(path), str(Path(path)), env)


def parse_yaml_file(path: str | os.PathLike[str]) -> Any:
    """A YAML config file parsed safely: no duplicate keys, no alias bombs, no FIFOs."""
    p = Path(path)
    try:
        text = read_regular_file(p, "--config")
    except ConfigError as exc:
        if "not found" in str(exc):
            raise ConfigError(f"{p}: config file not found; pass --config PATH to an existing YAML file") from None
        raise
    try:
        loader = _StrictLoader(text)
        loader.name = str(p)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{p}:{where}: YAML syntax error ({problem}); fix the YAML") from None
    except RecursionError:
        raise ConfigError(f"{p}: YAML nested too deeply; flatten it") from None


def read_secret(cfg: Config) -> str:
    """The client secret, from the config value or from its file; never logged."""
    g = cfg.genesys
    if g.client_secret_file:
        secret = read_regular_file(Path(g.client_secret_file), "genesys.client_secret_file", 65536)
        text = secret.decode("utf-8", "replace").strip()
        if not text:
            raise ConfigError(f"genesys.client_secret_file: {g.client_secret_file!r} is empty")
        return text
    if not g.client_secret:
        raise ConfigError(
            "genesys.client_secret is not set: set it to ${GENESYS_CLIENT_SECRET} "
            "or use genesys.client_secret_file"
        )
    return g.client_secret


def require_credentials(cfg: Config) -> tuple[str, str]:
    if not cfg.genesys.client_id:
        raise ConfigError("genesys.client_id is not set: set it, e.g. to ${GENESYS_CLIENT_ID}")
    return cfg.genesys.client_id, read_secret(cfg)

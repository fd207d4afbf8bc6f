"""Config errors: one line naming the key and the fix, exit 2, no traceback, no secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipper.config import Config, config_from_mapping, load_config, parse_duration, resolve_start
from shipper.errors import ConfigError

from .conftest import run_cli


def test_defaults_and_region_hosts() -> None:
    cfg = config_from_mapping({"genesys": {"region": "eu-central-1"}})
    assert cfg.api_base == "https://api.mypurecloud.de"
    assert cfg.login_base == "https://login.mypurecloud.de"
    assert cfg.poll.page_size == 500 and cfg.poll.tail == "realtime"
    assert cfg.poll.interval == 60 and cfg.poll.late_window == 1800
    assert cfg.rate_limit.requests_per_minute == 300
    assert cfg.genesys.token_refresh_margin == 500
    assert cfg.output.schema == "siem"


def test_overrides_win_over_region() -> None:
    cfg = config_from_mapping({"genesys": {"region": "us-east-1", "api_url": "https://gw.example.com/",
                                           "login_url": "https://login.example.com"}})
    assert cfg.api_base == "https://gw.example.com"
    assert cfg.login_base == "https://login.example.com"


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("5m", 300), ("2h", 7200), ("7d", 604800), (45, 45)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_interpolation_and_default() -> None:
    cfg = config_from_mapping(
        {"genesys": {"client_id": "${CID}", "client_secret": "${SECRET:-fallback}"}},
        env={"CID": "abc"},
    )
    assert cfg.genesys.client_id == "abc"
    assert cfg.genesys.client_secret == "fallback"


def test_start_from_iso_and_lookback() -> None:
    from datetime import datetime, timezone

    now = datetime(2026, 1, 15, 12, tzinfo=timezone.utc)
    assert resolve_start("24h", now) == datetime(2026, 1, 14, 12, tzinfo=timezone.utc)
    assert resolve_start("2026-01-01T00:00:00Z", now) == datetime(2026, 1, 1, tzinfo=timezone.utc)


BAD = [
    ({"genesys": {"clientid": "x"}}, "genesys.clientid"),
    ({"poll": {"page_size": "many"}}, "poll.page_size"),
    ({"poll": {"page_size": 501}}, "poll.page_size"),
    ({"poll": {"interval": "5 parsecs"}}, "poll.interval"),
    ({"poll": {"start_from": "yesterday"}}, "poll.start_from"),
    ({"output": {"schema": "xml"}}, "output.schema"),
    ({"genesys": {"api_url": "http://api.example.com", "login_url": "https://l.example.com"}}, "genesys.api_url"),
    ({"genesys": {"region": "moon-1"}}, "genesys.region"),
    ({"genesys": {"client_id": "${NOT_SET_ANYWHERE}"}}, "NOT_SET_ANYWHERE"),
    (["a", "list"], "mapping"),
]


@pytest.mark.parametrize("data,needle", BAD)
def test_bad_config_names_the_key(data: object, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping(data, env={})
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_http_allowed_for_loopback() -> None:
    cfg = config_from_mapping({"genesys": {"api_url": "http://127.0.0.1:9", "login_url": "http://localhost:9"}})
    assert cfg.api_base == "http://127.0.0.1:9"


def test_secret_file(tmp_path: Path) -> None:
    from shipper.config import read_secret

    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-value\n")
    cfg = config_from_mapping({"genesys": {"client_id": "a", "client_secret_file": str(secret)}})
    assert read_secret(cfg) == "s3cr3t-value"


CLI_CASES = {
    "missing": (None, "not found"),
    "yaml": ("genesys: [unclosed\n", "YAML syntax error"),
    "unknown": ("poll:\n  intervall: 5s\n", "poll.intervall"),
    "type": ("poll:\n  page_size: lots\n", "poll.page_size"),
    "range": ("poll:\n  page_size: 0\n", "poll.page_size"),
    "http": ("genesys:\n  api_url: http://api.example.com\n  login_url: https://x.example.com\n", "plain http"),
    "env": ("genesys:\n  client_secret: ${SURELY_UNSET_VAR_X}\n", "SURELY_UNSET_VAR_X"),
    "duration": ("poll:\n  interval: soon\n", "poll.interval"),
    "schema": ("output:\n  schema: parquet\n", "output.schema"),
    "start": ("poll:\n  start_from: last tuesday\n", "poll.start_from"),
    "notmap": ("- just\n- a list\n", "mapping"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_config_errors_exit_2(tmp_path: Path, case: str) -> None:
    text, needle = CLI_CASES[case]
    path = tmp_path / "cfg.yaml"
    if text is not None:
        path.write_text(text + "genesys_secret_marker: hunter2-secret\n" if case == "unknown" else text)
    proc = run_cli("run", "--once", "--config", str(path))
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert needle in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 5
    assert proc.stdout == b""


def test_secret_never_in_error(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("genesys:\n  client_secret: TopSecretValue123\n  client_secret_file: /x\n")
    proc = run_cli("run", "--once", "--config", str(path))
    assert proc.returncode == 2
    assert b"TopSecretValue123" not in proc.stderr


def test_config_struct_has_contract_names() -> None:
    cfg = Config()
    for dotted in ["genesys.region", "genesys.api_url", "genesys.login_url", "genesys.client_id",
                   "genesys.client_secret", "genesys.client_secret_file", "genesys.api", "poll.start_from",
                   "poll.interval", "poll.settle_delay", "poll.page_size", "poll.late_window",
                   "rate_limit.requests_per_minute", "rate_limit.max_retries", "state.path", "output.schema"]:
        section, key = dotted.split(".")
        assert hasattr(getattr(cfg, section), key), dotted


def test_load_config_reads_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("poll:\n  page_size: 250\n")
    assert load_config(path).poll.page_size == 250

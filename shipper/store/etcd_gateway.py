"""etcd's v3 JSON gateway through `etcd3gw` (the `[etcd]` extra, built on requests): several
endpoints with failover, TLS and mTLS, and user/password auth with a token that is renewed when
etcd forgets it. Keys and values travel base64-encoded, as the gateway wants them."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from .. import logs
from ..config import EtcdConfig, read_regular_file
from ..errors import ConfigError, ShipperError

etcd3gw: Any = None
etcd_errors: Any = None


class EtcdUnavailable(ShipperError):
    """No endpoint answered, or etcd refused the request."""


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def prefix_end(prefix: str) -> str:
    """The range end that covers every key starting with `prefix`."""
    raw = prefix.encode()
    return b64(raw[:-1] + bytes([raw[-1] + 1]))


class Gateway:
    def __init__(self, cfg: EtcdConfig) -> None:
        global etcd3gw, etcd_errors  # noqa: PLW0603 - an optional extra, loaded by the first etcd user
        try:
            import etcd3gw  # noqa: PLC0415
            from etcd3gw import exceptions as etcd_errors  # noqa: PLC0415
        except ImportError:
            raise ConfigError("state.backend etcd needs the etcd extra: pip install 'genesys-audit-shipper[etcd]'") from None
        self.cfg = cfg
        session = requests.Session()
        session.trust_env = False
        if cfg.ca_file:
            read_regular_file(Path(cfg.ca_file), "state.etcd.ca_file")
            session.verify = cfg.ca_file
        if cfg.cert_file and cfg.key_file:
            read_regular_file(Path(cfg.cert_file), "state.etcd.cert_file")
            read_regular_file(Path(cfg.key_file), "state.etcd.key_file")
            session.cert = (cfg.cert_file, cfg.key_file)
        self.password: str | None = None
        if cfg.username and cfg.password_file:
            self.password = read_regular_file(Path(cfg.password_file), "state.etcd.password_file").decode().strip()
            logs.register_secret(self.password)
        self.session = session
        self.clients = [self._client(url) for url in cfg.endpoints]
        self._current = 0
        self._lock = threading.Lock()

    def _client(self, url: str) -> Any:
        parts = urlsplit(url)
        return etcd3gw.Etcd3Client(host=parts.hostname, port=parts.port or 2379, protocol=parts.scheme,
                                   timeout=self.cfg.timeout, session=self.session, api_path="/v3/")

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to `/v3/<path>` on the first endpoint that answers; EtcdUnavailable when none does."""
        last = ""
        for _ in range(len(self.clients)):
            with self._lock:
                client = self.clients[self._current]
            try:
                return self._post(client, path, body)
            except (etcd_errors.ConnectionFailedError, etcd_errors.ConnectionTimeoutError) as exc:
                last = f"{client.base_url}: {type(exc).__name__}"
                with self._lock:
                    self._current = (self._current + 1) % len(self.clients)
            except etcd_errors.Etcd3Exception as exc:
                raise EtcdUnavailable(f"etcd refused {path}: {str(exc)[:200]}") from None
        raise EtcdUnavailable(f"etcd: no endpoint answered ({last}); check state.etcd.endpoints and that etcd runs")

    def _post(self, client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(client.post(client.get_url(path), json=body))
        except etcd_errors.Etcd3Exception as exc:
            if self.password is None or "token" not in str(exc).lower():
                raise
        self.authenticate(client)  # the auth token expired: get a new one, once
        return dict(client.post(client.get_url(path), json=body))

    def authenticate(self, client: Any | None = None) -> None:
        if self.password is None:
            return
        client = client or self.clients[self._current]
        answer = client.post(client.get_url("/auth/authenticate"), json={"name": self.cfg.username,
                                                                          "password": self.password})
        token = answer.get("token")
        if not token:
            raise EtcdUnavailable("etcd: authentication gave no token; check state.etcd.username and password_file")
        logs.register_secret(token)
        self.session.headers["Authorization"] = token

    # -- the calls the stores make --------------------------------------------------------------
    def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
            failure: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return self.call("/kv/txn", {"compare": compare, "success": success, "failure": failure or []})

    def range(self, key: str, prefix: bool = False) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"key": b64(key)}
        if prefix:
            body["range_end"] = prefix_end(key)
        return list(self.call("/kv/range", body).get("kvs", []))

    def grant(self, ttl: int) -> int:
        return int(self.call("/lease/grant", {"TTL": ttl, "ID": 0})["ID"])

    def keepalive(self, lease: int) -> int:
        """The lease's remaining TTL, or -1 when it has expired."""
        return int(self.call("/lease/keepalive", {"ID": lease}).get("result", {}).get("TTL", -1))

    def time_to_live(self, lease: int) -> int:
        return int(self.call("/kv/lease/timetolive", {"ID": lease}).get("TTL", -1))

    def revoke(self, lease: int) -> None:
        self.call("/kv/lease/revoke", {"ID": lease})


def put(key: str, value: bytes | str, lease: int = 0) -> dict[str, Any]:
    op: dict[str, Any] = {"key": b64(key), "value": b64(value)}
    if lease:
        op["lease"] = lease
    return {"request_put": op}


def delete(key: str, prefix: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"key": b64(key)}
    if prefix:
        op["range_end"] = prefix_end(key)
    return {"request_delete_range": op}


def same_value(key: str, value: str) -> dict[str, Any]:
    return {"key": b64(key), "result": "EQUAL", "target": "VALUE", "value": b64(value)}


def same_create(key: str, revision: int) -> dict[str, Any]:
    return {"key": b64(key), "result": "EQUAL", "target": "CREATE", "create_revision": str(revision)}

"""One request and its answer, as every endpoint handler sees it."""

from __future__ import annotations

import json
import socket
import struct
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

from .config import SimConfig
from .state import Orgs, OrgState

Body = bytes | dict[str, Any] | list[Any]


class Exchange:
    """The org a request belongs to (by its bearer token; the default org otherwise), its path
    parameters, query and body, and the ways to answer it."""

    def __init__(self, handler: BaseHTTPRequestHandler, orgs: Orgs, org: OrgState, path: str,
                 qs: dict[str, list[str]], body: bytes) -> None:
        self.handler = handler
        self.orgs = orgs
        self.org = org
        self.path = path
        self.qs = qs
        self.body = body
        self.params: tuple[str, ...] = ()  # the route's path parameters
        self.truncate = False  # a `truncated` fault: the handler sends half its body

    @property
    def cfg(self) -> SimConfig:
        return self.org.cfg

    def header(self, name: str) -> str:
        return self.handler.headers.get(name, "")

    def query(self, name: str, default: str = "") -> str:
        """The first value of a query parameter."""
        return self.qs.get(name, [default])[0]

    def send(self, status: int, body: Body, headers: dict[str, str] | None = None, truncate: bool = False) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        if truncate:
            data = data[: max(1, len(data) // 2)]
        h = self.handler
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        """The API's error body: {message, code, status, contextId, details, errors}."""
        self.send(status, {"message": message, "code": code, "status": status,
                           "contextId": str(uuid.uuid4()), "details": [], "errors": []}, headers)

    def reset(self) -> None:
        """Drop the connection with a TCP RST."""
        h = self.handler
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.close_connection = True
        h.connection.close()

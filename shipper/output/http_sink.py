"""Acknowledged delivery: POST each page to the host agent's HTTP input (Fluent Bit `http`, Vector
`http_server` with acknowledgements). The page counts as written only once the agent answered 2xx,
so a host killed with -9 loses nothing: the checkpoint had not moved past an unacknowledged page.

The queue is one page: the engine waits for the answer. Retries (connection errors, 5xx, 429) use
the HTTP client's backoff with full jitter; a receiver that stays down fails the cycle after
rate_limit.max_retries, and the daemon tries the same page again next interval.
"""

from __future__ import annotations

from pathlib import Path

from .. import logs
from ..config import Config, read_regular_file
from ..errors import ApiError, ConfigError, OutputError
from ..lifecycle import Lifecycle
from ..net.http import HttpClient

ACCEPTED = (200, 201, 202, 204)


class HttpSink:
    def __init__(self, cfg: Config, lifecycle: Lifecycle) -> None:
        out = cfg.output.http
        assert out is not None
        self.url = out.url
        self.headers = {"Content-Type": out.content_type}
        if out.token_file:
            token = read_regular_file(Path(out.token_file), "output.http.token_file", 65536).decode("utf-8",
                                                                                                   "replace").strip()
            if not token:
                raise ConfigError(f"output.http.token_file: {out.token_file!r} is empty")
            logs.register_secret(token)
            self.headers["Authorization"] = f"Bearer {token}"
        rl = cfg.rate_limit
        self.client = HttpClient(requests_per_minute=1_000_000, max_retries=rl.max_retries,
                                 backoff_base=rl.backoff_base, backoff_max=rl.backoff_max,
                                 connect_timeout=min(10.0, out.timeout), read_timeout=out.timeout,
                                 ca_bundle=out.ca_file, stop=lifecycle.stop,
                                 user_agent="genesys-audit-shipper (output.http)")

    def write_page(self, page: bytes | bytearray) -> None:
        if not page:
            return
        try:
            self.client.request("POST", self.url, data=bytes(page), headers=self.headers, authenticated=False,
                                expect=ACCEPTED, what="output.http")
        except ApiError as exc:
            if exc.status == 413:
                raise OutputError("output.http: the receiver refused a page as too large (413); raise its body "
                                  "limit (Fluent Bit: http_server.buffer_max_size) above a page's size") from None
            raise OutputError(f"{exc}; the checkpoint did not move") from None

    def reader_gone(self) -> bool:
        return False

    def reopen(self) -> None:
        """Nothing to reopen."""

    def close(self) -> None:
        self.client.close()

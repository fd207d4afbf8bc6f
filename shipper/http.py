"""The HTTP client: the only place that waits, paces or retries."""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
import requests
import urllib3

from . import logs
from .auth import TokenProvider, describe_token_failure
from .errors import ApiError, AuthError, Interrupted
from .models import ErrorBody

T = TypeVar("T")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 3600.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # NaN, inf or absurd values: wait a long but finite time rather than crash or sleep for years.
        return min(max(0.0, seconds), MAX_RETRY_AFTER) if seconds == seconds else MAX_RETRY_AFTER
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(MAX_RETRY_AFTER, max(0.0, when.timestamp() - (time.time() if now is None else now)))


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0, min(cap, base * (2**attempt)))


def retry_after_delay(floor: float, rng: random.Random) -> float:
    """Retry-After is a floor; 0-30 % jitter on top spreads concurrent clients."""
    return floor * (1 + rng.uniform(0, 0.3))


class Stats:
    """Counters the metrics module reads."""

    def __init__(self) -> None:
        self.by_status: Counter[str] = Counter()
        self.retries = 0
        self.throttled = 0
        self.requests = 0


class HttpClient:
    def __init__(
        self,
        *,
        requests_per_minute: float = 300,
        max_retries: int = 8,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        proxy: str | None = None,
        ca_bundle: str | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        user_agent: str = "genesys-audit-shipper",
    ) -> None:
        # 2 % under the budget: with send-time spacing alone, latency jitter can land N+1 requests
        # in the server's window and cost a 429 plus its Retry-After.
        self.interval = 60.0 / requests_per_minute * 1.02
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = (connect_timeout, read_timeout)
        self.stop = stop or threading.Event()
        self.clock = clock
        self.rng = rng or random.Random()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Accept"] = "application/json"
        # The environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) is read once per host here,
        # not re-read by requests on every call: that was a quarter of the client's CPU.
        self.session.trust_env = False
        self._env_proxies: dict[str, dict[str, str]] = {}
        # Passed on every call, like verify: session-level proxies lose to HTTPS_PROXY.
        self.proxies: dict[str, str] | None = {"https": proxy, "http": proxy} if proxy else None
        self.verify: str | bool = (ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE")
                                   or os.environ.get("CURL_CA_BUNDLE") or True)
        self.tokens: TokenProvider | None = None
        self.stats = Stats()
        self.last_server_date: str | None = None
        self.in_flight = False  # read by the stop-signal handler, which may abandon the request
        self._next_slot = 0.0
        self._not_before = 0.0
        self._pace_lock = threading.Lock()

    # -- waiting -------------------------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        """Wait, but wake at once on stop."""
        if seconds > 0 and self.stop.wait(seconds):
            raise Interrupted("stopped while waiting")
        if self.stop.is_set():
            raise Interrupted("stopped")

    def _pace(self) -> None:
        with self._pace_lock:
            now = self.clock()
            start = max(now, self._next_slot, self._not_before)
            self._next_slot = start + self.interval
        self.sleep(start - now)
        # A Retry-After can arrive while this thread waited for its slot.
        while (late := self._not_before - self.clock()) > 0:
            self.sleep(late)

    # -- requests ------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
        expect: tuple[int, ...] = (200,),
        decode: type[T] | None = None,
        what: str = "request",
        max_retries: int | None = None,
    ) -> Any:
        """Send with pacing and retries. Returns the decoded body, or the Response if decode is None."""
        retries_left = self.max_retries if max_retries is None else max_retries
        attempt = 0
        refreshed = False
        last = ""
        while True:
            self._pace()
            hdrs = dict(headers or {})
            token = None
            if authenticated and self.tokens is not None:
                token = self.tokens.token()
                hdrs["Authorization"] = f"Bearer {token}"
            body = msgspec.json.encode(json) if json is not None else None
            if body is not None:
                hdrs["Content-Type"] = "application/json"
            self.stats.requests += 1
            wait: float | None = None
            try:
                resp = self._send(method, url, params, body if body is not None else data, hdrs)
            except requests.exceptions.SSLError as exc:
                # Not transient: retrying cannot fix a certificate.
                raise ApiError(f"{what}: TLS verification failed for {urlsplit(url).netloc} ({_cause(exc)}); "
                               "if a proxy re-signs TLS, set genesys.ca_bundle to its CA file") from None
            except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                    requests.exceptions.MissingSchema) as exc:
                raise ApiError(f"{what}: bad URL ({type(exc).__name__}); check genesys.api_url / login_url") from None
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError, urllib3.exceptions.HTTPError) as exc:
                self.stats.by_status["error"] += 1
                last = f"{type(exc).__name__} talking to {urlsplit(url).netloc}: {_cause(exc)}"
            else:
                status = resp.status_code
                self.stats.by_status[str(status)] += 1
                self.last_server_date = resp.headers.get("Date") or self.last_server_date
                if status in expect:
                    if decode is None:
                        return resp
                    try:
                        return msgspec.json.decode(compact_json(resp.content), type=decode)
                    except msgspec.DecodeError as exc:
                        last = f"invalid JSON in a {status} answer ({str(exc)[:80]})"
                    except msgspec.ValidationError as exc:
                        raise ApiError(f"{what}: unexpected answer shape: {exc}", status) from None
                elif status == 401 and authenticated and self.tokens is not None:
                    self.tokens.invalidate(token)
                    last = "401 unauthorized"
                    if not refreshed:
                        refreshed = True
                        logs.warning("401 from API, refreshing the token and retrying", what=what)
                        continue
                elif status == 429:
                    self.stats.throttled += 1
                    floor = parse_retry_after(resp.headers.get("Retry-After"))
                    wait = retry_after_delay(floor if floor is not None else 1.0, self.rng)
                    last = f"429 rate limited (Retry-After {resp.headers.get('Retry-After')})"
                elif status in RETRY_STATUSES:
                    floor = parse_retry_after(resp.headers.get("Retry-After"))
                    if floor is not None:
                        wait = retry_after_delay(floor, self.rng)
                    last = f"{status} {_describe(resp)}"
                else:
                    err = _error_body(resp)
                    message = err.message or resp.reason or "error"
                    if what == "token" and status in (400, 401):
                        raise AuthError(f"{what}: {describe_token_failure(status)}", status, err.code)
                    raise ApiError(
                        f"{what}: HTTP {status} {err.code or ''} {message}".replace("  ", " ").strip()
                        + (f" (contextId {err.contextId})" if err.contextId else ""),
                        status,
                        err.code,
                    )
            if retries_left <= 0:
                raise ApiError(f"{what}: giving up after {self.max_retries} retries; last error: {last}")
            retries_left -= 1
            if wait is None:
                wait = backoff_delay(attempt, self.backoff_base, self.backoff_max, self.rng)
            else:
                # Retry-After binds every request of this client, not only this one.
                with self._pace_lock:
                    self._not_before = max(self._not_before, self.clock() + wait)
            attempt += 1
            self.stats.retries += 1
            logs.warning("retrying", what=what, reason=last, wait_s=round(wait, 3), attempt=attempt)
            self.sleep(wait)

    def _proxies_for(self, url: str) -> dict[str, str]:
        if self.proxies is not None:
            return self.proxies
        host = urlsplit(url).netloc
        found = self._env_proxies.get(host)
        if found is None:
            found = self._env_proxies[host] = requests.utils.get_environ_proxies(url)
        return found

    def _send(self, method: str, url: str, params: Any, data: Any, headers: dict[str, str]) -> requests.Response:
        self.in_flight = True
        try:
            resp = self.session.request(method, url, params=params, data=data, headers=headers,
                                        timeout=self.timeout, allow_redirects=False, verify=self.verify,
                                        proxies=self._proxies_for(url), stream=True)
            if not resp._content_consumed:  # noqa: SLF001 - a redirect answer was read already
                # One read of the whole body instead of requests' 10 KB chunks.
                resp._content = resp.raw.read(decode_content=True)  # noqa: SLF001
                resp._content_consumed = True  # noqa: SLF001
            resp.close()
            return resp
        finally:
            self.in_flight = False

    def poll(
        self,
        url: str,
        done: Callable[[T], bool],
        decode: type[T],
        *,
        what: str,
        timeout: float = 600,
        first_wait: float = 0.05,
        max_wait: float = 5.0,
    ) -> T:
        """GET `url` until `done(body)`; the wait between polls grows 1.6x up to `max_wait`."""
        deadline = self.clock() + timeout
        wait = first_wait
        while True:
            body = self.request("GET", url, expect=(200, 202), decode=decode, what=what)
            if done(body):
                return body
            if self.clock() + wait > deadline:
                raise ApiError(f"{what}: not finished after {int(timeout)}s; raise poll.query_timeout")
            self.sleep(wait)
            wait = min(max_wait, wait * 1.6)

    def close(self) -> None:
        self.session.close()


def compact_json(content: bytes) -> bytes:
    """Pretty-printed JSON (a gateway's) loses its whitespace, once per page: raw events are embedded
    in output lines as they are, and a newline inside one would split an NDJSON line."""
    if b"\n" in content or b"\r" in content:
        return msgspec.json.format(content, indent=-1)
    return content


def _cause(exc: Exception) -> str:
    """A short reason without URLs: a pre-signed download URL carries credentials in its query."""
    text = str(exc.args[0] if exc.args else exc)
    text = re.sub(r"https?://\S+", "<url>", text)
    return re.sub(r"\(Caused by (\w+)\(.*", r"(\1)", text)[:160]


def _error_body(resp: requests.Response) -> ErrorBody:
    try:
        return msgspec.json.decode(resp.content or b"{}", type=ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ErrorBody()


def _describe(resp: requests.Response) -> str:
    err = _error_body(resp)
    return " ".join(x for x in (err.code, err.contextId and f"contextId={err.contextId}") if x) or resp.reason

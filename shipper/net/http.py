"""The HTTP client: the only place that waits, paces or retries.

It knows nothing of OAuth: the wiring hands it a token getter and a hook to call when the API
answers 401. Requests go through requests' own HTTPAdapter (connection pool, TLS, proxies), but
each request is prepared here once, so a page costs one URL parse and no per-call merging of
session settings, hooks or redirect handling.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import msgspec
import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from .. import logs
from ..errors import ApiError, Interrupted
from ..models import ErrorBody
from ..telemetry.counters import Counters

T = TypeVar("T")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
SKEW_WARN_S = 60.0
SKEW_TRUST_S = 2.0
RETRY_AFTER_SANE_S = 600.0  # a longer Retry-After (or nan) is capped at backoff_max
Decode = type | Callable[[bytes], Any]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); inf for nonsense
    such as `nan`, which the caller caps."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else float("inf")
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0, min(cap, base * (2 ** min(attempt, 62))))


def retry_after_delay(floor: float, rng: random.Random) -> float:
    """Retry-After is a floor; 0-30 % jitter on top spreads concurrent clients."""
    return floor * (1 + rng.uniform(0, 0.3))


class _Retry(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class Pacer:
    """Spaces requests to the budget and holds every request of the client after a Retry-After;
    waits wake at once on stop."""

    def __init__(self, requests_per_minute: float, stop: threading.Event, clock: Callable[[], float]) -> None:
        # 2 % under the budget: with send-time spacing alone, latency jitter can land N+1 requests
        # in the server's window and cost a 429 plus its Retry-After.
        self.interval = 60.0 / requests_per_minute * 1.02
        self.stop = stop
        self.clock = clock
        self._next_slot = 0.0
        self._not_before = 0.0
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        if seconds > 0 and self.stop.wait(seconds):
            raise Interrupted("stopped while waiting")
        if self.stop.is_set():
            raise Interrupted("stopped")

    def pace(self) -> None:
        with self._lock:
            now = self.clock()
            start = max(now, self._next_slot, self._not_before)
            self._next_slot = start + self.interval
        self.sleep(start - now)
        # A Retry-After can arrive while this thread waited for its slot.
        while (late := self._not_before - self.clock()) > 0:
            self.sleep(late)

    def hold(self, seconds: float) -> None:
        """No request of this client before `seconds` from now (a Retry-After binds them all)."""
        with self._lock:
            self._not_before = max(self._not_before, self.clock() + seconds)


class Transport:
    """One prepared request through requests' HTTPAdapter; tracks the server's clock."""

    def __init__(self, timeout: tuple[float, float], proxy: str | None, ca_bundle: str | None, user_agent: str) -> None:
        self.adapter = HTTPAdapter(pool_connections=4, pool_maxsize=4)
        self.timeout = timeout
        self.base_headers = {"User-Agent": user_agent, "Accept": "application/json", "Accept-Encoding": "gzip, deflate"}
        # The environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) is read once per host here,
        # not on every call.
        self._env_proxies: dict[str, dict[str, str]] = {}
        self.proxies: dict[str, str] | None = {"https": proxy, "http": proxy} if proxy else None
        self.verify: str | bool = (ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE")
                                   or os.environ.get("CURL_CA_BUNDLE") or True)
        self.last_server_date: str | None = None
        self.server_offset = 0.0  # server clock minus ours, seconds, from the last Date header
        self._warned_skew = 0.0

    def server_now(self) -> float:
        """The API's clock (epoch seconds) when it differs from ours by more than a Date header's
        one-second resolution can tell; ours otherwise, and until the API answered."""
        offset = self.server_offset
        return time.time() + (offset if abs(offset) > SKEW_TRUST_S else 0.0)

    def note_date(self, date: str | None) -> None:
        if not date:
            return
        self.last_server_date = date
        try:
            server = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            return
        # A Date header counts whole seconds: the server's clock is somewhere in [date, date + 1).
        self.server_offset = server + 0.5 - time.time()
        if abs(self.server_offset) > SKEW_WARN_S and abs(self.server_offset - self._warned_skew) > SKEW_WARN_S / 2:
            self._warned_skew = self.server_offset
            logs.warning("this host's clock differs from the API's; windows follow the API's clock (fix NTP)",
                         skew_s=round(-self.server_offset, 1))

    def _proxies_for(self, url: str) -> dict[str, str]:
        if self.proxies is not None:
            return self.proxies
        host = urlsplit(url).netloc
        found = self._env_proxies.get(host)
        if found is None:
            found = self._env_proxies[host] = requests.utils.get_environ_proxies(url)
        return found

    def send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> requests.Response:
        prep = requests.PreparedRequest()
        prep.method = method
        prep.url = url
        prep.headers = CaseInsensitiveDict(headers)
        prep.body = body
        if body is not None:
            prep.headers["Content-Length"] = str(len(body))
        prep.hooks = {"response": []}
        resp = self.adapter.send(prep, stream=True, timeout=self.timeout, verify=self.verify,
                                 proxies=self._proxies_for(url))
        try:
            # One read of the whole body instead of requests' 10 KB chunks.
            resp._content = resp.raw.read(decode_content=True)  # noqa: SLF001
            resp._content_consumed = True  # noqa: SLF001
        finally:
            resp.close()
        self.note_date(resp.headers.get("Date"))
        return resp


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
        counters: Counters | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        user_agent: str = "genesys-audit-shipper",
    ) -> None:
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stop = stop or threading.Event()
        self.counters = counters or Counters()
        self.rng = rng or random.Random()
        self.pacer = Pacer(requests_per_minute, self.stop, clock)
        self.transport = Transport((connect_timeout, read_timeout), proxy, ca_bundle, user_agent)
        self.token: Callable[[], str] | None = None
        self.on_unauthorized: Callable[[str], None] | None = None
        self.sleep = self.pacer.sleep
        self.server_now = self.transport.server_now

    @property
    def last_server_date(self) -> str | None:
        return self.transport.last_server_date

    def authorize(self, token: Callable[[], str], on_unauthorized: Callable[[str], None]) -> None:
        """Send `Bearer token()` with authenticated requests; call the hook with it after a 401."""
        self.token, self.on_unauthorized = token, on_unauthorized

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
        expect: tuple[int, ...] = (200,),
        decode: Decode | None = None,
        what: str = "request",
        max_retries: int | None = None,
    ) -> Any:
        """Send with pacing and retries. Returns the decoded body, or the Response if decode is None."""
        retries_left = self.max_retries if max_retries is None else max_retries
        if params:
            url = f"{url}?{urlencode(params, doseq=True)}"
        body = _body(json, data)
        attempt = 0
        refreshed = False
        while True:
            self.pacer.pace()
            try:
                return self._attempt(method, url, body, headers, authenticated, expect, decode, what, refreshed)
            except _Retry as retry:
                if retry.reason == "401" and not refreshed:
                    refreshed = True
                    logs.warning("401 from API, refreshing the token and retrying", what=what)
                    continue
                last, wait = retry.reason, retry.wait
            if retries_left <= 0:
                raise ApiError(f"{what}: giving up after {self.max_retries} retries; last error: {last}")
            retries_left -= 1
            wait = self._wait_for(attempt, wait, what)
            attempt += 1
            self.counters.retries += 1
            logs.warning("retrying", what=what, reason=last, wait_s=round(wait, 3), attempt=attempt)
            self.sleep(wait)

    def _wait_for(self, attempt: int, retry_after: float | None, what: str) -> float:
        if retry_after is None:
            return backoff_delay(attempt, self.backoff_base, self.backoff_max, self.rng)
        if retry_after > max(self.backoff_max, RETRY_AFTER_SANE_S):
            # nan, 1e9, a date next year: nonsense that would stall the trail for hours.
            logs.warning("Retry-After is implausibly long; waiting rate_limit.backoff_max instead",
                         what=what, retry_after=str(retry_after), backoff_max_s=self.backoff_max)
            retry_after = self.backoff_max
        wait = retry_after_delay(retry_after, self.rng)
        self.pacer.hold(wait)
        return wait

    def _attempt(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str] | None,
                 authenticated: bool, expect: tuple[int, ...], decode: Decode | None, what: str,
                 refreshed: bool) -> Any:
        hdrs = {**self.transport.base_headers, **(headers or {})}
        token = None
        if authenticated and self.token is not None:
            token = self.token()
            hdrs["Authorization"] = f"Bearer {token}"
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        self.counters.requests += 1
        try:
            resp = self.transport.send(method, url, body, hdrs)
        except requests.exceptions.SSLError as exc:
            # Not transient: retrying cannot fix a certificate.
            raise ApiError(f"{what}: TLS verification failed for {urlsplit(url).netloc} ({_cause(exc)}); "
                           "if a proxy re-signs TLS, set genesys.ca_bundle to its CA file") from None
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema, urllib3.exceptions.LocationParseError, ValueError) as exc:
            raise ApiError(f"{what}: bad URL ({type(exc).__name__}); check the configured URL") from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError, urllib3.exceptions.HTTPError, OSError) as exc:
            self.counters.by_status["error"] += 1
            raise _Retry(f"{type(exc).__name__} talking to {urlsplit(url).netloc}: {_cause(exc)}") from None
        status = resp.status_code
        self.counters.by_status[str(status)] += 1
        if status in expect:
            return resp if decode is None else self._decode(resp, decode, what)
        if status == 401 and token is not None and self.on_unauthorized is not None:
            self.on_unauthorized(token)
            raise _Retry("401" if not refreshed else "401 unauthorized after a token refresh")
        if status in RETRY_STATUSES:
            floor = parse_retry_after(resp.headers.get("Retry-After"))
            if status == 429:
                self.counters.throttled += 1
                raise _Retry(f"429 rate limited (Retry-After {resp.headers.get('Retry-After')})",
                             floor if floor is not None else 1.0)
            raise _Retry(f"{status} {_describe(resp)}", floor)
        err = _error_body(resp)
        message = err.message or resp.reason or "error"
        raise ApiError(
            f"{what}: HTTP {status} {err.code or ''} {message}".replace("  ", " ").strip()
            + (f" (contextId {err.contextId})" if err.contextId else ""),
            status,
            err.code,
        )

    @staticmethod
    def _decode(resp: requests.Response, decode: Decode, what: str) -> Any:
        content = compact_json(resp.content)
        try:
            if isinstance(decode, type):
                return msgspec.json.decode(content, type=decode)
            return decode(content)
        except msgspec.ValidationError as exc:
            # A 200 of the wrong shape is never an empty answer: retry, then fail the run.
            raise _Retry(f"{what}: unexpected answer shape ({str(exc)[:160]})") from None
        except msgspec.DecodeError as exc:
            raise _Retry(f"invalid JSON in a {resp.status_code} answer ({str(exc)[:80]})") from None
        except RecursionError:
            raise _Retry(f"{what}: the answer is nested too deeply to decode") from None

    def poll_until(
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
        deadline = self.pacer.clock() + timeout
        wait = first_wait
        while True:
            body = self.request("GET", url, expect=(200, 202), decode=decode, what=what)
            if done(body):
                return body  # type: ignore[no-any-return]
            if self.pacer.clock() + wait > deadline:
                raise ApiError(f"{what}: not finished after {int(timeout)}s; raise poll.query_timeout")
            self.sleep(wait)
            wait = min(max_wait, wait * 1.6)

    def close(self) -> None:
        self.transport.adapter.close()


def _body(json: Any, data: Mapping[str, str] | bytes | None) -> bytes | None:
    if json is not None:
        return msgspec.json.encode(json)
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if data:
        return urlencode(data).encode()
    return None


def compact_json(content: bytes) -> bytes:
    """Pretty-printed JSON (a gateway's) loses its whitespace, once per page: raw events are embedded
    in output lines as they are, and a newline inside one would split an NDJSON line."""
    if b"\n" in content or b"\r" in content:
        try:
            return msgspec.json.format(content, indent=-1)
        except (msgspec.DecodeError, RecursionError):
            return content  # the decoder reports what is wrong with it
    return content


def _cause(exc: BaseException) -> str:
    """A short reason without URLs: a pre-signed download URL carries credentials in its query."""
    text = str(exc.args[0] if exc.args else exc)
    text = re.sub(r"https?://\S+", "<url>", text)
    return re.sub(r"\(Caused by (\w+)\(.*", r"(\1)", text)[:160]


def _error_body(resp: requests.Response) -> ErrorBody:
    try:
        return msgspec.json.decode(resp.content or b"{}", type=ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return ErrorBody()


def _describe(resp: requests.Response) -> str:
    err = _error_body(resp)
    return " ".join(x for x in (err.code, err.contextId and f"contextId={err.contextId}") if x) or resp.reason

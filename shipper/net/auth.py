"""OAuth client credentials: one token, refreshed before it expires and after a 401."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable

import msgspec

from .. import logs
from ..errors import ApiError, AuthError
from ..models import TokenResponse
from .http import HttpClient

MIN_LIFETIME_S = 1.0


class TokenProvider:
    """Hands out a bearer token; refreshes once less than `margin` seconds of its life remain,
    the margin being at most half the token's lifetime."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        client: HttpClient,
        margin: float = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.client = client
        self._basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        logs.register_secret(client_secret)
        logs.register_secret(self._basic.split(" ", 1)[1])
        self.margin = margin
        self.clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = threading.Lock()
        self.requests = 0

    def _fetch(self) -> None:
        try:
            token: TokenResponse = self.client.request(
                "POST",
                self.token_url,
                data={"grant_type": "client_credentials"},
                headers={"Authorization": self._basic, "Content-Type": "application/x-www-form-urlencoded"},
                authenticated=False,
                decode=decode_token,
                what="token",
            )
        except AuthError:
            raise
        except ApiError as exc:
            if exc.status in (400, 401):
                raise AuthError(f"token: {describe_token_failure(exc.status)}", exc.status, exc.code) from None
            raise
        self.requests += 1
        logs.register_secret(token.access_token)
        lifetime = max(float(token.expires_in), MIN_LIFETIME_S)
        self._token = token.access_token
        # A token shorter-lived than the margin would refresh on every call: refresh at half its life.
        self._refresh_at = self.clock() + lifetime - min(self.margin, lifetime / 2)
        logs.info("token obtained", expires_in=int(lifetime))

    def token(self) -> str:
        with self._lock:
            if self._token is None or self.clock() >= self._refresh_at:
                if self._token is not None:
                    logs.info("token refresh", reason="less than token_refresh_margin left")
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self, used: str | None = None) -> None:
        """Drop the token (after a 401), unless another thread already replaced it."""
        with self._lock:
            if used is None or used == self._token:
                self._token = None

    def check(self) -> None:
        """Fetch a fresh token now (used by `check`); raises AuthError on bad credentials."""
        with self._lock:
            self._token = None
            self._fetch()


_token_decoder = msgspec.json.Decoder(TokenResponse)


def decode_token(body: bytes) -> TokenResponse:
    """A token answer must carry a usable token and a finite, positive lifetime."""
    token = _token_decoder.decode(body)
    if not token.access_token or not 0 < token.expires_in < float("inf"):
        raise msgspec.ValidationError("the token answer has no access_token or no valid expires_in")
    return token


def describe_token_failure(status: int | None) -> str:
    if status == 401:
        return "the login service rejected the client id or secret (401); check genesys.client_id/secret"
    if status == 400:
        return "the login service refused the grant (400); the OAuth client must use Client Credentials"
    return f"the login service answered {status}"

"""POST /oauth/token: client credentials, from a Basic header (the SDK's way) or form fields.
The client id picks the org; the token it gets identifies that org on every later request."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs

from .exchange import Exchange
from .hostile import reshape, wrong_shape


def handle_token(ex: Exchange) -> None:
    form = {k: v[0] for k, v in parse_qs(ex.body.decode(errors="replace")).items()}
    cid, secret = form.get("client_id"), form.get("client_secret")
    auth = ex.header("Authorization")
    bad_basic = False
    if auth.startswith("Basic "):
        try:
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            bad_basic = True
    org = ex.orgs.by_client.get(cid or "", ex.orgs.default)
    ex.org = org
    org.count_path("POST /oauth/token")
    with org.lock:
        org.stats.token_requests += 1
    if bad_basic:
        return ex.error(400, "bad.request", "malformed Basic header")
    if form.get("grant_type") != "client_credentials":
        return ex.send(400, {"error": "unsupported_grant_type"})
    if cid != org.cfg.client_id or secret != org.cfg.client_secret:
        return ex.send(401, {"error": "invalid_client", "description": "authentication failed"})
    token = ex.orgs.issue_token(org)
    doc = {"access_token": token, "token_type": "bearer", "expires_in": org.cfg.token_ttl}
    ex.send(200, reshape(doc, wrong_shape(org, "token")))

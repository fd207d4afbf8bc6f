"""What every API request passes before its handler: the org's rate limit, seeded faults, the
bearer token and the audit permission."""

from __future__ import annotations

import time

from .exchange import Exchange
from .state import OrgState

HTTP_FAULTS = ("500", "502", "503", "504")


def admit(org: OrgState) -> float | None:
    """The Retry-After wait (seconds) if the org's request is throttled, else None. Counts
    requests made before an earlier Retry-After ran out. The first `throttle_first` requests
    are always throttled."""
    now = time.monotonic()
    with org.lock:
        org.stats.requests += 1
        if org.stats.requests <= org.cfg.throttle_first:
            org.stats.throttled += 1
            org.stats.hostile["throttle_first"] += 1
            return 1.0
        if now < org.blocked_until:
            org.stats.retry_after_violations += 1
            org.stats.throttled += 1
            return max(1.0, org.blocked_until - now)
        if now < org.storm_until:
            org.stats.throttled += 1
            wait = float(org.rng.randint(1, 2))
            org.blocked_until = now + wait
            return wait
        limit, window = org.cfg.rate_limit, org.cfg.rate_window
        if limit:
            while org.recent and org.recent[0] <= now - window:
                org.recent.popleft()
            if len(org.recent) >= limit:
                org.stats.throttled += 1
                wait = float(int(org.recent[0] + window - now) + 1)
                org.blocked_until = now + wait
                return wait
            org.recent.append(now)
    return None


def pick_fault(org: OrgState, allowed: tuple[str, ...]) -> str | None:
    """Roll the org's fault dice: one of its configured faults that `allowed` permits, or None."""
    with org.lock:
        if not org.cfg.fault_rate or org.rng.random() >= org.cfg.fault_rate:
            return None
        kinds = [k for k in org.cfg.faults if k in allowed]
        if not kinds:
            return None
        kind = org.rng.choice(kinds)
        org.stats.faults[kind] += 1
        if kind == "storm":
            org.storm_until = time.monotonic() + 3.0
        if kind == "revoke":
            org.tokens.clear()
        return kind


def throttle(ex: Exchange, wait: float, message: str | None = None) -> None:
    """A 429 with Retry-After: the wait in whole seconds, or the org's `retry_after` verbatim."""
    value = str(int(wait))
    if ex.cfg.retry_after is not None:
        value = ex.cfg.retry_after
        ex.org.count_hostile("retry_after")
    ex.error(429, "too.many.requests.retry.after",
             message or f"Rate limit exceeded the maximum. Retry the request in [{value}] seconds",
             {"Retry-After": value})


def gate(ex: Exchange, fault_kinds: tuple[str, ...]) -> bool:
    """Run rate limit, faults and auth. True when an answer went out already; a `truncated`
    fault sets `ex.truncate` for the handler instead."""
    org = ex.org
    wait = admit(org)
    if wait is not None:
        throttle(ex, wait)
        return True
    kind = pick_fault(org, fault_kinds)
    if kind in HTTP_FAULTS:
        ex.error(int(kind), "internal.server.error" if kind == "500" else "service.unavailable", "simulated fault")
        return True
    if kind == "reset":
        ex.reset()
        return True
    if kind == "slow":
        time.sleep(org.cfg.slow_seconds)
    if kind == "storm":
        throttle(ex, 1.0, "Rate limit storm")
        with org.lock:
            org.blocked_until = max(org.blocked_until, time.monotonic() + 1.0)
        return True
    auth = ex.header("Authorization")
    if kind == "revoke" or not auth.startswith("Bearer ") or not org.authorized(auth[7:]):
        ex.error(401, "bad.credentials", "Invalid login credentials.")
        return True
    if org.cfg.forbid_audits:
        ex.error(403, "missing.permissions", "Missing permission audits:audit:view")
        return True
    ex.truncate = kind == "truncated"
    return False

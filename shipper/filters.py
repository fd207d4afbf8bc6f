"""Rules for filters, tiers and payload reduction: their config structs and pure functions over a
decoded event. Sources read `is_exact` to decide what they may push down to the API."""

from __future__ import annotations

import re
from collections.abc import Callable
from fnmatch import translate
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from .models import AuditEvent

GLOB_CHARS = frozenset("*?[")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


class Rule(_Strict):
    """Matches an event when every given field matches (exact or glob)."""

    service: str | None = None
    entity_type: str | None = None
    action: str | None = None
    status: str | None = None
    level: str | None = None
    user_id: str | None = None
    client_id: str | None = None  # the OAuth client that acted (integrations, scripts)
    entity_id: str | None = None  # one object: a role, a queue, a flow


RULE_FIELDS: tuple[str, ...] = Rule.__struct_fields__


class ReduceRule(_Strict):
    match: Rule
    keep: list[str]


class TierRule(_Strict):
    tier: str
    rules: list[Rule]


class FiltersConfig(_Strict):
    include: list[Rule] = msgspec.field(default_factory=list)
    exclude: list[Rule] = msgspec.field(default_factory=list)


class RoutingConfig(_Strict):
    tiers: list[TierRule] = msgspec.field(default_factory=list)
    default_tier: str = "standard"


def is_exact(value: str | None) -> bool:
    """A rule value with no glob characters: the only kind an API can filter on for us."""
    return value is not None and not GLOB_CHARS & set(value)


@lru_cache(maxsize=1024)
def _pattern(value: str) -> Callable[[str], bool]:
    if is_exact(value):
        return value.__eq__
    return re.compile(translate(value)).match  # type: ignore[return-value]


def event_fields(event: AuditEvent) -> dict[str, str | None]:
    return {
        "service": event.serviceName,
        "entity_type": event.entityType,
        "action": event.action,
        "status": event.status,
        "level": event.level,
        "user_id": event.user.id if event.user else None,
        "client_id": event.client.id if event.client else None,
        "entity_id": event.entity.id if event.entity else None,
    }


def rule_matches(rule: Rule, event: AuditEvent) -> bool:
    """True when every field the rule names matches (exact or glob)."""
    fields = None
    for name in RULE_FIELDS:
        want = getattr(rule, name)
        if want is None:
            continue
        if fields is None:
            fields = event_fields(event)
        have = fields[name]
        if have is None or not _pattern(want)(have):
            return False
    return True


def any_matches(rules: list[Rule], event: AuditEvent) -> bool:
    return any(rule_matches(r, event) for r in rules)


def make_filter(cfg: FiltersConfig) -> Callable[[AuditEvent], bool]:
    """Keep an event when it matches an include rule (or there are none) and no exclude rule."""
    include, exclude = cfg.include, cfg.exclude
    if not include and not exclude:
        return lambda _e: True

    def keep(event: AuditEvent) -> bool:
        if exclude and any_matches(exclude, event):
            return False
        return not include or any_matches(include, event)

    return keep


def make_tiering(tiers: list[TierRule], default: str) -> Callable[[AuditEvent], str]:
    """First tier whose rules match wins; otherwise the default tier."""
    if not tiers:
        return lambda _e: default

    def tier_of(event: AuditEvent) -> str:
        for t in tiers:
            if any_matches(t.rules, event):
                return t.tier
        return default

    return tier_of


def reduce_payload(doc: dict[str, Any], keep: list[str]) -> dict[str, Any]:
    """Copy only the dotted paths in `keep` out of `doc` (the guide's field selection)."""
    out: dict[str, Any] = {}
    for path in keep:
        parts = path.split(".")
        src: Any = doc
        for part in parts:
            if not isinstance(src, dict) or part not in src:
                break
            src = src[part]
        else:
            dst = out
            for part in parts[:-1]:
                dst = dst.setdefault(part, {})
            dst[parts[-1]] = src
    return out


def make_reducer(rules: list[ReduceRule]) -> Callable[[AuditEvent], list[str] | None]:
    """The keep-list of the first reduce rule that matches the event, or None."""
    if not rules:
        return lambda _e: None

    def keep_for(event: AuditEvent) -> list[str] | None:
        for r in rules:
            if rule_matches(r.match, event):
                return r.keep
        return None

    return keep_for

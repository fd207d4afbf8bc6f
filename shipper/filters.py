"""Filters, tiers and payload reduction: pure functions over a decoded event."""

from __future__ import annotations

import re
from collections.abc import Callable
from fnmatch import translate
from functools import lru_cache
from typing import Any

from .config import FiltersConfig, ReduceRule, Rule, TierRule
from .models import AuditEvent

_GLOB_CHARS = frozenset("*?[")
_SERVER_FILTERS = {"entity_type": "EntityType", "action": "Action", "user_id": "UserId"}


@lru_cache(maxsize=1024)
def _pattern(value: str) -> Callable[[str], bool]:
    if not _GLOB_CHARS & set(value):
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
    }


def rule_matches(rule: Rule, event: AuditEvent) -> bool:
    """True when every field the rule names matches (exact or glob)."""
    fields = None
    for name in Rule.__struct_fields__:
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


def server_side_query(cfg: FiltersConfig) -> tuple[str | None, list[dict[str, str]]]:
    """What the API can filter for us: one include rule with exact values pushes down as-is."""
    if len(cfg.include) != 1:
        return None, []
    rule = cfg.include[0]
    service: str | None = None
    filters: list[dict[str, str]] = []
    for name in Rule.__struct_fields__:
        value = getattr(rule, name)
        if value is None or _GLOB_CHARS & set(value):
            continue
        if name == "service":
            service = value
        elif name in _SERVER_FILTERS:
            filters.append({"property": _SERVER_FILTERS[name], "value": value})
    return service, filters


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

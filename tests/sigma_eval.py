"""Runs Sigma rules, as pySigma parses them, over JSON records: the detection of each rule (its
condition resolved by pySigma into AND/OR/NOT of field = value expressions) and the event_count
and value_count correlations over them.

Matching follows the Sigma specification: strings compare case-insensitively, `*` and `?` are
wildcards (the modifiers contains/startswith/endswith arrive here as wildcards), `|re` is a regular
expression search, a list of values is any of them, and a dotted field name is a path into nested
objects. A field holding an array matches when any member does (arrays of objects are followed,
as search backends do). A correlation fires for a group when, within one window of its timespan,
the group has enough events (event_count) or enough distinct values of the field (value_count).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import SigmaCorrelationConditionOperator, SigmaCorrelationRule, SigmaCorrelationType
from sigma.rule import SigmaRule
from sigma.types import SigmaCasedString, SigmaNull, SigmaNumber, SigmaRegularExpression, SigmaString

_MISSING = object()


def values_at(record: Any, path: str) -> list[Any]:
    """Every value a dotted path reaches (arrays are followed at every step)."""
    nodes = [record]
    for part in path.split("."):
        nxt: list[Any] = []
        for node in nodes:
            for item in node if isinstance(node, list) else [node]:
                if isinstance(item, dict) and part in item:
                    nxt.append(item[part])
        nodes = nxt
    out: list[Any] = []
    stack = list(nodes)
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        else:
            out.append(v)
    return out


def _plain(regexp: Any) -> str:
    return regexp.to_plain() if isinstance(regexp, SigmaString) else str(regexp)


def _string_matcher(value: SigmaString) -> re.Pattern[str]:
    flags = 0 if isinstance(value, SigmaCasedString) else re.IGNORECASE
    return re.compile(_plain(value.to_regex().regexp), flags | re.DOTALL)


def _regex(value: SigmaRegularExpression) -> re.Pattern[str]:
    flags = 0
    for flag in value.flags:
        flags |= SigmaRegularExpression.sigma_to_python_flags[flag]
    return re.compile(_plain(value.regexp), flags)


def _value_matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, SigmaNull):
        return actual is None
    if actual is None or isinstance(actual, (dict, list)):
        return False
    text = actual if isinstance(actual, str) else str(actual).lower() if isinstance(actual, bool) else str(actual)
    if isinstance(expected, SigmaString):
        return _string_matcher(expected).fullmatch(text) is not None
    if isinstance(expected, SigmaRegularExpression):
        return _regex(expected).search(text) is not None
    if isinstance(expected, SigmaNumber):
        try:
            return float(text) == float(expected.number)
        except ValueError:
            return False
    raise ValueError(f"this evaluator does not know the Sigma value type {type(expected).__name__}")


def condition_matches(node: Any, record: dict[str, Any]) -> bool:
    if isinstance(node, ConditionAND):
        return all(condition_matches(a, record) for a in node.args)
    if isinstance(node, ConditionOR):
        return any(condition_matches(a, record) for a in node.args)
    if isinstance(node, ConditionNOT):
        return not condition_matches(node.args[0], record)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        found = values_at(record, node.field)
        if isinstance(node.value, SigmaNull):
            return not found or any(v is None for v in found)
        return any(_value_matches(node.value, v) for v in found)
    if isinstance(node, ConditionValueExpression):
        raise ValueError("keyword (full-text) detections are not used by these rules")
    raise ValueError(f"unknown condition node {type(node).__name__}")


def conditions(rule: SigmaRule) -> list[Any]:
    """A rule's conditions as pySigma resolves them (parsed once, kept on the rule object)."""
    parsed = rule.__dict__.get("_sigma_eval_conditions")
    if parsed is None:
        parsed = rule.__dict__["_sigma_eval_conditions"] = [c.parse() for c in rule.detection.parsed_condition]
    return parsed


def rule_matches(rule: SigmaRule, record: dict[str, Any]) -> bool:
    """Whether a rule's detection (any of its conditions) matches one record."""
    return any(condition_matches(c, record) for c in conditions(rule))


def _time(record: dict[str, Any], time_field: str) -> float:
    return datetime.fromisoformat(str(values_at(record, time_field)[0]).replace("Z", "+00:00")).timestamp()


def _group_key(record: dict[str, Any], fields: list[str]) -> tuple[str, ...]:
    return tuple(str(sorted(map(str, values_at(record, f)))) for f in fields)


def correlation_groups(corr: SigmaCorrelationRule, rules: dict[str, SigmaRule], records: Iterable[dict[str, Any]],
                       time_field: str) -> set[tuple[str, ...]]:
    """The group-by keys for which a correlation fires over these records."""
    if corr.type not in (SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT):
        raise ValueError(f"correlation type {corr.type} is not known to this evaluator")
    bases = [rules[ref.reference] for ref in corr.rules]
    hits: dict[tuple[str, ...], list[tuple[float, dict[str, Any]]]] = {}
    for r in records:
        if any(rule_matches(b, r) for b in bases):
            hits.setdefault(_group_key(r, corr.group_by or []), []).append((_time(r, time_field), r))
    cond = corr.condition
    op = {SigmaCorrelationConditionOperator.GTE: float.__ge__, SigmaCorrelationConditionOperator.GT: float.__gt__,
          SigmaCorrelationConditionOperator.LTE: float.__le__, SigmaCorrelationConditionOperator.LT: float.__lt__,
          SigmaCorrelationConditionOperator.EQ: float.__eq__}[cond.op]
    span = corr.timespan.seconds
    fired = set()
    for key, events in hits.items():
        events.sort(key=lambda e: e[0])
        for i, (start, _) in enumerate(events):
            window = [r for t, r in events[i:] if t - start <= span]
            if corr.type == SigmaCorrelationType.EVENT_COUNT:
                measure = float(len(window))
            else:
                measure = float(len({str(v) for r in window for v in values_at(r, cond.fieldref or "")}))
            if op(measure, float(cond.count)):
                fired.add(key)
                break
    return fired


def load(paths: Iterable[str]) -> SigmaCollection:
    collection = SigmaCollection.load_ruleset(list(paths))
    collection.resolve_rule_references()
    return collection

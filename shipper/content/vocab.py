"""The shipper's classification of Genesys actions and entity types (schemas/common.py), as plain
tables that the generators render into SIEM query languages (KQL `case()`, SPL `case()`).

Rendering the shipper's own tables, rather than restating them by hand, is what keeps a siem
record normalised in the SIEM the same way the asim and cim schemas normalise it in the shipper.
`classify_action` and `classify_entity` read only these tables: tests hold them equal to
`action_verb` and `identity_kind`, so the rendered queries follow the same decisions.
"""

from __future__ import annotations

from functools import cache

from ..schemas import common


def norm(text: str) -> str:
    """What the shipper compares: lower case, without spaces, underscores and hyphens."""
    return text.lower().replace(" ", "").replace("_", "").replace("-", "")


@cache
def verb_groups() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(verb, the normalised action names of that verb), in the shipper's table order."""
    groups: dict[str, list[str]] = {}
    for action, verb in common._VERBS.items():  # noqa: SLF001 - the one source of the table
        groups.setdefault(verb, []).append(action)
    return tuple((verb, tuple(actions)) for verb, actions in groups.items())


def verb_prefixes() -> tuple[tuple[str, str], ...]:
    """(prefix, verb) guesses for actions not in the table, tried in this order."""
    return tuple(common._VERB_PREFIXES)  # noqa: SLF001


@cache
def kind_groups() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(identity kind, the normalised entity type names of that kind)."""
    groups: dict[str, list[str]] = {}
    for entity, kind in common._KINDS.items():  # noqa: SLF001
        groups.setdefault(kind, []).append(entity)
    return tuple((kind, tuple(names)) for kind, names in groups.items())


def classify_action(action: str | None) -> str:
    """The verb, decided from the tables alone (exact name, then prefix, else other)."""
    key = norm(action or "")
    for verb, names in verb_groups():
        if key in names:
            return verb
    for prefix, verb in verb_prefixes():
        if key and key.startswith(prefix):
            return verb
    return common.OTHER


def classify_entity(entity_type: str | None) -> str | None:
    """The identity kind, decided from the tables alone; None for configuration objects."""
    key = norm(entity_type or "")
    for kind, names in kind_groups():
        if key in names:
            return kind
    return None

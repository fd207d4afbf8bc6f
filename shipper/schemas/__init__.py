"""Output schemas: one pure module per schema, event in, record out, no I/O.

SCHEMAS is the only list of schema names: config validation, `--help` and the pipeline read it.
Adding a schema is one module exposing `SCHEMA = SchemaSpec(...)` plus one entry here, or a call to
`register` (as a test does with a toy schema).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import asim, cim, custom, ecs, ocsf, raw, siem
from .common import (
    ADD,
    CLEAR,
    CLIENT,
    CREATE,
    CREDENTIAL,
    DELETE,
    DISABLE,
    ENABLE,
    EXECUTE,
    GRANT,
    GROUP,
    LOGIN,
    OTHER,
    PASSWORD,
    READ,
    REMOVE,
    ROLE,
    TIER_FIELD,
    UPDATE,
    USER,
    Mapper,
    SchemaSpec,
    action_verb,
    event_type,
    identity_kind,
    outcome,
)

if TYPE_CHECKING:
    from ..config import Config

SCHEMAS: dict[str, SchemaSpec] = {m.SCHEMA.name: m.SCHEMA for m in (siem, ecs, ocsf, cim, asim, raw, custom)}


def register(spec: SchemaSpec) -> None:
    """Add a schema at run time (plugins, tests)."""
    SCHEMAS[spec.name] = spec


def build_mapper(cfg: Config) -> Mapper:
    return SCHEMAS[cfg.output.schema].build(cfg)


__all__ = [
    "ADD", "CLEAR", "CLIENT", "CREATE", "CREDENTIAL", "DELETE", "DISABLE", "ENABLE", "EXECUTE", "GRANT", "GROUP",
    "LOGIN", "OTHER", "PASSWORD", "READ", "REMOVE", "ROLE", "SCHEMAS", "TIER_FIELD", "UPDATE", "USER", "Mapper",
    "SchemaSpec", "action_verb", "build_mapper", "event_type", "identity_kind", "outcome", "register",
]

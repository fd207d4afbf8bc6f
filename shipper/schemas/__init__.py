"""Schema mappings: one pure module per schema, event in, record out, no I/O.

Each module exposes `build(cfg) -> Mapper`. A Mapper takes the decoded event, its original raw
bytes and its tier, and returns something msgspec can encode.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from ..config import Config
    from ..models import AuditEvent

Mapper = Callable[["AuditEvent", msgspec.Raw, str], Any]
TIER_FIELD = "audit_tier"


def build_mapper(cfg: Config) -> Mapper:
    module = importlib.import_module(f"{__name__}.{cfg.output.schema}")
    return module.build(cfg)


def event_type(event: AuditEvent) -> str:
    """`<serviceName>.<entityType>.<action>`, the guide's eventType for the real API."""
    return f"{event.serviceName or ''}.{event.entityType or ''}.{event.action or ''}"

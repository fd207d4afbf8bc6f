"""The original event, byte for byte as the API sent it (no tier field: nothing is added)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .common import Mapper, SchemaSpec

if TYPE_CHECKING:
    from ..config import Config
    from ..models import AuditEvent



def to_raw(event: AuditEvent, raw: Any, tier: str) -> Any:
    return raw


def build(cfg: Config) -> Mapper:
    return to_raw


SCHEMA = SchemaSpec(
    name="raw",
    build=build,
    summary="the original event, byte for byte",
    slim=True,
    embeds_event=True,
    protected=frozenset({"id", "eventDate"}),
    id_field="id",
)

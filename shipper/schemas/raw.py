"""The original event, byte for byte as the API sent it (no tier field: nothing is added)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from . import Mapper

if TYPE_CHECKING:
    from ..config import Config
    from ..models import AuditEvent


# Reads only SlimEvent fields and embeds the original bytes: the engine may decode less.
SLIM_EVENT = True

def to_raw(event: AuditEvent, raw: msgspec.Raw, tier: str) -> msgspec.Raw:
    return raw


def build(cfg: Config) -> Mapper:
    return to_raw

"""GET /api/v2/audits/query/servicemapping and .../realtime/servicemapping: the valid service,
entity type and action names."""

from __future__ import annotations

from .events import SERVICES
from .exchange import Exchange


def handle_servicemapping(ex: Exchange) -> None:
    ex.send(200, {"services": [
        {"name": s, "entities": [{"name": e, "actions": a} for e, a in ents.items()]}
        for s, ents in SERVICES.items()]})

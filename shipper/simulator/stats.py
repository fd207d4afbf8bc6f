"""GET /__sim/stats[?client_id=X]: what the simulator served, for the default org or one org.
Not part of the Genesys API: it needs no token and never counts as a request."""

from __future__ import annotations

from .exchange import Exchange


def handle_stats(ex: Exchange) -> None:
    client_id = ex.query("client_id") or None
    try:
        org = ex.orgs.get(client_id)
    except KeyError as exc:
        return ex.error(404, "not.found", str(exc.args[0]))
    ex.send(200, org.stats_doc())

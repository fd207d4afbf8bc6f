"""Real records for the SIEM content tests: a simulator's normal stream plus events built to trigger
each detection, injected into its store, read by the real CLI once per output.schema.

Every trigger is an ordinary simulator event (shipper.simulator.make_event) with the fields a
risky admin action changes: the service, entity type, action, entity, property changes, actor and
source address. `TRIGGERS` names, per Sigma rule (file stem), the trigger ids it must fire on; the
correlations (bulk deletion, new source address) name the actor they must fire for.
"""

from __future__ import annotations

import bisect
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipper.simulator import SimConfig, Simulator, make_event
from shipper.simulator.events import wrap
from tests.conftest import parse_lines, run_cli, write_config

SCHEMAS = ("siem", "ecs", "asim", "cim")
MALLORY = {"id": "00000000-0000-4000-8000-0000000bad01", "name": "Mallory Admin"}
BULK = {"id": "00000000-0000-4000-8000-0000000bad02", "name": "Bulk Deleter"}
NEAR = {"id": "00000000-0000-4000-8000-0000000bad03", "name": "Nine Deletions"}  # one short of the threshold
MALLORY_IP, NEW_IP = "203.0.113.66", "203.0.113.77"
ADMIN_ENTITIES = ("Role", "Grant", "OAuthClient")


@dataclass
class Corpus:
    """The records of one simulator run, per schema, and what the triggers are."""

    records: dict[str, list[dict[str, Any]]]
    triggers: dict[str, set[str]]  # rule stem -> event ids built to fire it
    actors: dict[str, str] = field(default_factory=dict)  # correlation rule stem -> actor id it must fire for
    baseline_ids: set[str] = field(default_factory=set)  # the ids of the normal stream

    def by_id(self, schema: str) -> dict[str, dict[str, Any]]:
        from tests.delivery_harness import ID_FIELDS, get_path

        return {str(get_path(r, ID_FIELDS[schema])): r for r in self.records[schema]}


def _event(rng: random.Random, ts: int, cfg: SimConfig, service: str, entity_type: str, action: str, *,
           user: dict[str, str] | None = None, ip: str = MALLORY_IP, entity_name: str | None = None,
           changes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    doc = make_event(rng, ts, cfg)
    user = user or MALLORY
    doc.update(serviceName=service, entityType=entity_type, action=action, remoteIp=[ip], status="SUCCESS",
               user={"id": user["id"], "name": user["name"], "selfUri": f"/api/v2/users/{user['id']}"})
    doc["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if entity_name is not None:
        doc["entity"] = dict(doc["entity"], name=entity_name)
    if changes is not None:
        doc["propertyChanges"] = changes
    code = f"{service}.{entity_type}.{action}".upper().replace(" ", "_")
    doc["message"] = dict(doc["message"], localizableMessageCode=code,
                          message=f"{user['name']} did {action} on {entity_type}",
                          messageParams={"0": user["name"], "1": action, "2": entity_type})
    return doc


def _secret(prop: str) -> list[dict[str, Any]]:
    return [{"property": prop, "oldValues": ["<redacted>"], "newValues": ["<redacted>"]}]


def build_triggers(sim: Simulator) -> tuple[list[dict[str, Any]], dict[str, set[str]], dict[str, str]]:
    """Trigger events for every risky-action rule, placed two hours before the newest event."""
    cfg, store = sim.cfg, sim.store
    rng = random.Random(20260115)
    at = store.newest_ms - 2 * 3600 * 1000
    docs: dict[str, list[dict[str, Any]]] = {}

    def add(rule: str, *args: Any, dt: int = 0, **kw: Any) -> None:
        docs.setdefault(rule, []).append(_event(rng, at + dt, cfg, *args, **kw))

    add("genesys_cloud_oauth_client_created_or_secret_regenerated", "OAuth", "OAuthClient", "Update",
        changes=_secret("secret"))
    add("genesys_cloud_oauth_client_created_or_secret_regenerated", "OAuth", "OAuthClient", "RegenerateSecret",
        dt=1000)
    add("genesys_cloud_admin_role_granted", "Authorization", "Grant", "Add", entity_name="Master Admin", dt=2000)
    add("genesys_cloud_admin_role_granted", "Authorization", "Role", "Update", entity_name="Helpdesk", dt=3000,
        changes=[{"property": "permissionPolicies", "oldValues": ["routing:queue:view"], "newValues": ["*:*:*"]}])
    for i in range(12):
        add("genesys_cloud_users_deleted_in_bulk", "Directory", "User", "Delete", user=BULK, ip="203.0.113.88",
            dt=10_000 + i * 20_000)
    for i in range(9):
        add("near_miss", "Directory", "User", "Delete", user=NEAR, ip="203.0.113.99", dt=10_000 + i * 20_000)
    add("genesys_cloud_recording_or_policy_deleted", "Recording", "Recording", "Delete", dt=4000)
    add("genesys_cloud_recording_or_policy_deleted", "Recording", "Policy", "Delete", entity_name="Keep all calls",
        dt=5000)
    add("genesys_cloud_sso_or_authorization_settings_changed", "Directory", "IdentityProvider", "Update",
        entity_name="Okta", dt=6000)
    add("genesys_cloud_sso_or_authorization_settings_changed", "Authorization", "OrganizationAuthorizationTrust",
        "Create", dt=7000)
    add("genesys_cloud_integration_credentials_changed", "Integrations", "Credential", "Update", dt=8000)
    add("genesys_cloud_integration_credentials_changed", "Integrations", "Integration", "Update", dt=9000,
        changes=_secret("credentials.clientSecret"))
    add("genesys_cloud_recordings_exported", "Recording", "Recording", "Export", dt=400_000)
    add("genesys_cloud_recordings_exported", "Recording", "BatchDownload", "Download", dt=401_000)
    # An administrator of the normal stream, from an address they never used.
    admin = next(e.doc for e in store.events if e.doc["entityType"] in ADMIN_ENTITIES
                 and e.doc["action"] != "View" and e.ts < at)
    admin_user = {"id": admin["user"]["id"], "name": admin["user"]["name"]}
    add("genesys_cloud_admin_new_source_ip", "Authorization", "Role", "Update", user=admin_user, ip=NEW_IP, dt=500_000)
    actors = {"genesys_cloud_users_deleted_in_bulk": BULK["id"], "genesys_cloud_admin_new_source_ip": admin_user["id"]}
    ids = {rule: {d["id"] for d in ds} for rule, ds in docs.items()}
    return [d for ds in docs.values() for d in ds], ids, actors


def inject(sim: Simulator, docs: list[dict[str, Any]]) -> None:
    """Add events to the simulator's store, in time order, as if Genesys had recorded them."""
    from shipper.simulator.codec import parse_iso

    store = sim.store
    with store.lock:
        for doc in docs:
            ts = parse_iso(doc["eventDate"])
            i = bisect.bisect_right(store.ts, ts)
            store.ts.insert(i, ts)
            store.events.insert(i, wrap(ts, doc))


def run_schema(sim: Simulator, work: Path, schema: str, key: Path) -> list[dict[str, Any]]:
    work.mkdir(parents=True, exist_ok=True)
    cfg = write_config(work, sim.url, output={"schema": schema, "chain": "hmac-sha256", "chain_key_file": str(key)},
                       routing={"tiers": [{"tier": "high_value", "rules": [{"service": "Authorization"},
                                                                           {"service": "OAuth"}]},
                                          {"tier": "high_volume", "rules": [{"action": "View"}]}]})
    result = run_cli("run", "--once", "--config", str(cfg), timeout=300)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return parse_lines(result.stdout)


def make_corpus(work: Path, configure: Callable[[Simulator], None] | None = None, **sim: Any) -> Corpus:
    """A normal simulator stream (SimConfig defaults unless overridden: bursts, large and huge events)
    with the triggers, shipped once per schema."""
    simulator = Simulator(SimConfig(**sim)).start()
    try:
        baseline = {e.doc["id"] for e in simulator.store.events}
        docs, triggers, actors = build_triggers(simulator)
        inject(simulator, docs)
        if configure is not None:
            configure(simulator)
        key = work / "chain.key"
        key.write_text(f"{random.Random(7).getrandbits(256):064x}")
        records = {schema: run_schema(simulator, work / schema, schema, key) for schema in SCHEMAS}
    finally:
        simulator.stop()
    return Corpus(records, triggers, actors, baseline)


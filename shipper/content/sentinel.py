"""Microsoft Sentinel content generated from the record structs: the custom table, the Data
Collection Rule whose stream declares exactly the columns the shipper emits, and the ASIM
AuditEvent parser functions.

The Logs Ingestion API keeps only the columns a DCR's stream declares and drops the rest without
a word, so the columns are not written by hand: they are the fields of the `asim` record (what
the Sentinel templates send), of the `siem` record (what the all-in-one templates send), and the
chain fields the writer stamps. The parser reads either shape and returns ASIM AuditEvent.
"""

from __future__ import annotations

import json
from typing import Any

from ..schemas.asim import AsimRecord
from ..schemas.common import CLEAR, CREATE, DELETE, DISABLE, ENABLE, EXECUTE, GRANT, OTHER, READ, ROLE
from ..schemas.siem import SiemRecord
from . import vocab
from .fields import STAMPED, Field, merge, struct_fields

TABLE = "GenesysCloudAudit_CL"
STREAM = f"Custom-{TABLE}"
ASIM_PARSER = "ASimAuditEventGenesysCloud"
VIM_PARSER = "vimAuditEventGenesysCloud"
GENERATED_BY = "genesys-audit-shipper content"
# The column types of a table (Tables API) and of a DCR stream declaration differ in one name.
_TABLE_TYPES = {"datetime": "dateTime"}
# asim.py's EventType for each verb (UPDATE, ADD, REMOVE, PASSWORD: "Set").
_EVENT_TYPES = {CREATE: "Create", READ: "Read", DELETE: "Delete", ENABLE: "Enable", DISABLE: "Disable",
                EXECUTE: "Execute", CLEAR: "Clear", OTHER: "Other"}


def columns() -> list[Field]:
    """The stream's and the table's columns: asim, then siem, then the stamped fields."""
    return merge(struct_fields(AsimRecord), struct_fields(SiemRecord), STAMPED)


def _describe(f: Field) -> str:
    if f.note:
        return f.note
    if f.name.startswith("siem_"):
        return "siem schema (output.schema: siem)"
    return "ASIM AuditEvent (output.schema: asim)" if f.name != "audit_tier" else "routing tier (routing.tiers)"


def stream_columns() -> list[dict[str, str]]:
    return [{"name": f.name, "type": f.kind} for f in columns()]


def table_columns() -> list[dict[str, str]]:
    return [{"name": f.name, "type": _TABLE_TYPES.get(f.kind, f.kind), "description": _describe(f)} for f in columns()]


TRANSFORM = ("source | extend TimeGenerated = iif(isnull(TimeGenerated), iif(isnull(EventStartTime), siem_timestamp, "
             "EventStartTime), TimeGenerated)")


# -- KQL --------------------------------------------------------------------------------------------
def _kql_list(names: tuple[str, ...]) -> str:
    for n in names:
        if not n.isalnum() or n.lower() != n:
            raise ValueError(f"not a normalised name: {n!r}")
    return ", ".join(f'"{n}"' for n in names)


def event_type_kql(var: str) -> str:
    """asim.py's EventType of a normalised action held in `var`, as a KQL case()."""
    arms = [f"{var} in ({_kql_list(names)}), \"{_EVENT_TYPES.get(verb, 'Set')}\""
            for verb, names in vocab.verb_groups()]
    arms += [f"{var} startswith \"{prefix}\", \"{_EVENT_TYPES.get(verb, 'Set')}\""
             for prefix, verb in vocab.verb_prefixes()]
    return "case(\n        " + ",\n        ".join(arms) + ",\n        \"Other\")"


def object_type_kql(var: str) -> str:
    """asim.py's ObjectType of a normalised entity type held in `var`."""
    policy = tuple(n for kind, names in vocab.kind_groups() if kind in (ROLE, GRANT) for n in names)
    other = tuple(n for kind, names in vocab.kind_groups() if kind not in (ROLE, GRANT) for n in names)
    return (f'case({var} in ({_kql_list(policy)}), "Policy Rule",\n        '
            f'{var} == "" or {var} in ({_kql_list(other)}), "Other",\n        "Configuration Atom")')


def _normalise_kql() -> str:
    """The body shared by both parsers: rows of either record shape to ASIM AuditEvent."""
    return f"""| extend _action = tolower(replace_regex(tostring(siem_raw_payload.action), @"[ _-]", "")),
    _entity = tolower(replace_regex(siem_entity_type, @"[ _-]", "")),
    _status = toupper(tostring(siem_raw_payload.status))
| extend
    EventCount = coalesce(EventCount, toint(1)),
    EventStartTime = coalesce(EventStartTime, siem_timestamp, TimeGenerated),
    EventEndTime = coalesce(EventEndTime, siem_timestamp, TimeGenerated),
    EventType = coalesce(EventType, {event_type_kql("_action")}),
    EventResult = coalesce(EventResult, case(_status == "SUCCESS", "Success", _status == "FAILURE", "Failure",
        _status == "WARNING", "Partial", "NA")),
    EventSeverity = coalesce(EventSeverity, iff(_status == "FAILURE", "Low", "Informational")),
    EventProduct = "Genesys Cloud",
    EventVendor = "Genesys",
    EventSchema = "AuditEvent",
    EventSchemaVersion = "0.1",
    EventOriginalUid = coalesce(EventOriginalUid, siem_event_id),
    EventOriginalType = coalesce(EventOriginalType, siem_event_type),
    EventOriginalResultDetails = coalesce(EventOriginalResultDetails, tostring(siem_raw_payload.status)),
    EventMessage = coalesce(EventMessage, tostring(siem_raw_payload.message.message)),
    Dvc = coalesce(Dvc, "Genesys Cloud"),
    Operation = coalesce(Operation, siem_event_type),
    Object = coalesce(Object, tostring(siem_raw_payload.entity.name), siem_entity_id, siem_entity_type),
    ObjectType = coalesce(ObjectType, {object_type_kql("_entity")}),
    ActorUserId = coalesce(ActorUserId, siem_actor_id),
    ActorUsername = coalesce(ActorUsername, siem_actor_name),
    ActorScopeId = coalesce(ActorScopeId, tostring(siem_raw_payload.userHomeOrgId)),
    ActingAppId = coalesce(ActingAppId, tostring(siem_raw_payload.client.id)),
    SrcIpAddr = coalesce(SrcIpAddr, tostring(siem_raw_payload.remoteIp[0])),
    TargetAppName = coalesce(TargetAppName, tostring(siem_raw_payload.serviceName)),
    AdditionalFields = iff(isnull(AdditionalFields), siem_raw_payload, AdditionalFields)
| extend
    ActorUsernameType = iff(isnotempty(ActorUsername), coalesce(ActorUsernameType, "Simple"), ""),
    TargetAppType = iff(isnotempty(TargetAppName), coalesce(TargetAppType, "SaaS application"), ""),
    User = ActorUsername,
    Src = SrcIpAddr,
    IpAddr = SrcIpAddr,
    Application = TargetAppName,
    Value = NewValue
| project-away _action, _entity, _status"""


VIM_PARAMS: tuple[tuple[str, str, str], ...] = (
    ("starttime", "datetime", "datetime(null)"),
    ("endtime", "datetime", "datetime(null)"),
    ("srcipaddr_has_any_prefix", "dynamic", "dynamic([])"),
    ("eventtype_in", "dynamic", "dynamic([])"),
    ("eventresult", "string", "'*'"),
    ("actorusername_has_any", "dynamic", "dynamic([])"),
    ("operation_has_any", "dynamic", "dynamic([])"),
    ("object_has_any", "dynamic", "dynamic([])"),
    ("newvalue_has_any", "dynamic", "dynamic([])"),
    ("disabled", "bool", "false"),
)
_VIM_FILTERS = """| where array_length(eventtype_in) == 0 or EventType in~ (eventtype_in)
| where eventresult == '*' or EventResult =~ eventresult
| where array_length(srcipaddr_has_any_prefix) == 0 or has_any_ipv4_prefix(SrcIpAddr, srcipaddr_has_any_prefix)
| where array_length(actorusername_has_any) == 0 or ActorUsername has_any (actorusername_has_any)
| where array_length(operation_has_any) == 0 or Operation has_any (operation_has_any)
| where array_length(object_has_any) == 0 or Object has_any (object_has_any)
| where array_length(newvalue_has_any) == 0 or NewValue has_any (newvalue_has_any)"""


def parser_query(filtering: bool) -> str:
    head = f"{TABLE}\n| where not(disabled)\n"
    if filtering:
        head += ("| where (isnull(starttime) or TimeGenerated >= starttime)"
                 " and (isnull(endtime) or TimeGenerated <= endtime)\n")
    return head + _normalise_kql() + ("\n" + _VIM_FILTERS if filtering else "") + "\n"


def _params(filtering: bool) -> list[tuple[str, str, str]]:
    return list(VIM_PARAMS) if filtering else [VIM_PARAMS[-1]]


def _default(text: str) -> object:
    return {"false": False, "'*'": "*"}.get(text, text)


def parser_yaml(filtering: bool) -> dict[str, Any]:
    """An ASIM parser in the Azure-Sentinel repository's parser file format."""
    name = VIM_PARSER if filtering else ASIM_PARSER
    return {
        "Parser": {"Title": f"Audit Event ASIM {'filtering ' if filtering else ''}parser for Genesys Cloud",
                   "Version": "0.1.0", "LastUpdated": "2026-01-15"},
        "Product": {"Name": "Genesys Cloud"},
        "Normalization": {"Schema": "AuditEvent", "Version": "0.1"},
        "References": [{"Title": "ASIM Audit Event Schema", "Link": "https://aka.ms/ASimAuditEventDoc"},
                       {"Title": "ASIM", "Link": "https://aka.ms/AboutASIM"}],
        "Description": (f"Genesys Cloud audit events from table {TABLE} (genesys-audit-shipper, output.schema asim "
                        f"or siem) as ASIM AuditEvent. Generated by `{GENERATED_BY} write`; do not edit."),
        "ParserName": name,
        "EquivalentBuiltInParser": f"_{'Im' if filtering else 'ASim'}_AuditEvent_GenesysCloud",
        "ParserParams": [{"Name": n, "Type": t, "Default": _default(d)} for n, t, d in _params(filtering)],
        "ParserQuery": parser_query(filtering),
    }


def _function_params(filtering: bool) -> str:
    return ", ".join(f"{n}:{t}={d}" for n, t, d in _params(filtering))


def _saved_search(filtering: bool) -> dict[str, Any]:
    name = VIM_PARSER if filtering else ASIM_PARSER
    return {
        "type": "Microsoft.OperationalInsights/workspaces/savedSearches",
        "apiVersion": "2020-08-01",
        "name": f"[format('{{0}}/{{1}}', parameters('workspaceName'), '{name}')]",
        "dependsOn": [f"[resourceId('Microsoft.OperationalInsights/workspaces/tables', parameters('workspaceName'), "
                      f"'{TABLE}')]"],
        "properties": {"etag": "*", "displayName": parser_yaml(filtering)["Parser"]["Title"], "category": "ASIM",
                       "functionAlias": name, "functionParameters": _function_params(filtering),
                       "query": parser_query(filtering), "version": 2},
    }


def _table_resource() -> dict[str, Any]:
    return {
        "type": "Microsoft.OperationalInsights/workspaces/tables",
        "apiVersion": "2022-10-01",
        "name": f"[format('{{0}}/{{1}}', parameters('workspaceName'), '{TABLE}')]",
        "properties": {
            "plan": "Analytics",
            "retentionInDays": "[parameters('retentionInDays')]",
            "schema": {"name": TABLE, "description": "Genesys Cloud audit events (genesys-audit-shipper)",
                       "columns": table_columns()},
        },
    }


def _dcr_resource() -> dict[str, Any]:
    return {
        "type": "Microsoft.Insights/dataCollectionRules",
        "apiVersion": "2022-06-01",
        "name": "[parameters('dataCollectionRuleName')]",
        "location": "[parameters('location')]",
        "dependsOn": [
            f"[resourceId('Microsoft.OperationalInsights/workspaces/tables', parameters('workspaceName'), '{TABLE}')]",
            "[resourceId('Microsoft.Insights/dataCollectionEndpoints', parameters('dataCollectionEndpointName'))]",
        ],
        "properties": {
            "description": f"Genesys Cloud audit records from genesys-audit-shipper into {TABLE}",
            "dataCollectionEndpointId": "[resourceId('Microsoft.Insights/dataCollectionEndpoints', "
                                        "parameters('dataCollectionEndpointName'))]",
            "streamDeclarations": {STREAM: {"columns": stream_columns()}},
            "destinations": {"logAnalytics": [{
                "workspaceResourceId": "[resourceId('Microsoft.OperationalInsights/workspaces', "
                                       "parameters('workspaceName'))]",
                "name": "workspace"}]},
            "dataFlows": [{"streams": [STREAM], "destinations": ["workspace"], "transformKql": TRANSFORM,
                           "outputStream": STREAM}],
        },
    }


def arm_template() -> dict[str, Any]:
    """One deployment: the table, a Data Collection Endpoint, the DCR and the two parser functions."""
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {"description": f"Genesys Cloud audit ingestion for Microsoft Sentinel. Generated by "
                                    f"`{GENERATED_BY} sentinel-dcr` from the shipper's record structs; do not edit."},
        "parameters": {
            "workspaceName": {"type": "string", "metadata": {
                "description": "the Log Analytics workspace of Sentinel, in this resource group"}},
            "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
            "dataCollectionEndpointName": {"type": "string", "defaultValue": "genesys-cloud-audit-dce"},
            "dataCollectionRuleName": {"type": "string", "defaultValue": "genesys-cloud-audit-dcr"},
            "retentionInDays": {"type": "int", "defaultValue": 90, "minValue": 4, "maxValue": 730},
        },
        "resources": [
            _table_resource(),
            {"type": "Microsoft.Insights/dataCollectionEndpoints", "apiVersion": "2022-06-01",
             "name": "[parameters('dataCollectionEndpointName')]", "location": "[parameters('location')]",
             "properties": {"networkAcls": {"publicNetworkAccess": "Enabled"}}},
            _dcr_resource(),
            _saved_search(filtering=False),
            _saved_search(filtering=True),
        ],
        "outputs": {
            "dcrImmutableId": {"type": "string", "value": "[reference(resourceId('Microsoft.Insights/"
                               "dataCollectionRules', parameters('dataCollectionRuleName'))).immutableId]"},
            "logsIngestionEndpoint": {"type": "string", "value": "[reference(resourceId('Microsoft.Insights/"
                                      "dataCollectionEndpoints', parameters('dataCollectionEndpointName')))"
                                      ".logsIngestion.endpoint]"},
            "streamName": {"type": "string", "value": STREAM},
        },
    }


def render_json(doc: Any) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"

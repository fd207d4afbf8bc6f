"""genesys-audit-shipper: Genesys Cloud audit events to NDJSON, gap-free and duplicate-free."""

__version__ = "0.1.0"

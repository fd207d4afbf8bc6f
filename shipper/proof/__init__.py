"""Proof of completeness: canonical JSON, the per-stream hash chain, and `verify`."""

"""Operators' view: counters, metrics and progress."""

"""A periodic stats line on stderr and an optional Prometheus textfile, both read from Counters."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from .. import logs
from .counters import Counters

_SERIES: tuple[tuple[str, str, str, str], ...] = (
    # (metric, type, Counters field, help)
    ("genesys_audit_events_emitted_total", "counter", "emitted", "Events written to the output."),
    ("genesys_audit_pages_total", "counter", "pages", "Result pages processed by this process."),
    ("genesys_audit_throttled_total", "counter", "throttled", "429 answers."),
    ("genesys_audit_retries_total", "counter", "retries", "Retried requests."),
    ("genesys_audit_lag_seconds", "gauge", "lag_s", "Now minus the position."),
    ("genesys_audit_last_success_timestamp_seconds", "gauge", "last_success_s", "Last successful page or cycle."),
    ("genesys_audit_quarantined_total", "counter", "quarantined", "Events that failed validation."),
    ("genesys_audit_gaps_total", "counter", "gaps", "Retention gaps reported."),
    ("genesys_audit_duplicates_dropped_total", "counter", "duplicates", "Repeats of written events dropped."),
    ("genesys_audit_filtered_total", "counter", "filtered", "Events removed by filters."),
    ("genesys_audit_shrunk_total", "counter", "shrunk", "Events shrunk to fit output.max_line_bytes."),
)


class Metrics:
    """Reports the counters of every org: `orgs` maps an org name ("" for a single unnamed org)
    to its Counters."""

    def __init__(self, orgs: dict[str, Counters], textfile: str | None, stats_interval: float) -> None:
        self.orgs = orgs
        self.textfile = Path(textfile) if textfile else None
        self.stats_interval = stats_interval
        self._next_report = time.monotonic() + stats_interval
        self._lock = threading.Lock()

    def maybe_report(self) -> None:
        with self._lock:
            if time.monotonic() < self._next_report:
                return
            self._next_report = time.monotonic() + self.stats_interval
        self.report()

    def flush(self) -> None:
        """At exit: the textfile gets the final figures (no stats line)."""
        if self.textfile:
            self._write_textfile_logged()

    def report(self) -> None:
        for org, c in self.orgs.items():
            logs.info("stats", org=org or None, events=c.emitted, pages=c.pages, requests=c.requests,
                      retries=c.retries, throttled=c.throttled, lag_s=round(c.lag_s, 1),
                      quarantined=c.quarantined, gaps=c.gaps)
        if self.textfile:
            self._write_textfile_logged()

    def _write_textfile_logged(self) -> None:
        try:
            self.write_textfile()
        except OSError as exc:
            # Metrics are for dashboards: failing them must never stop the audit trail.
            logs.error("cannot write metrics.textfile", file=str(self.textfile), reason=exc.strerror)

    def render(self) -> str:
        lines: list[str] = []
        for metric, kind, field, help_text in _SERIES:
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}"]
            for org, c in self.orgs.items():
                value = getattr(c, field)
                lines.append(f"{metric}{_labels(org)} {value:.3f}" if kind == "gauge" else f"{metric}{_labels(org)} {value}")
        lines += ["# HELP genesys_audit_requests_total API requests by answer status.",
                  "# TYPE genesys_audit_requests_total counter"]
        for org, c in self.orgs.items():
            for status, n in sorted(c.by_status.items()):
                lines.append(f"genesys_audit_requests_total{_labels(org, status=status)} {n}")
        return "\n".join(lines) + "\n"

    def write_textfile(self) -> None:
        assert self.textfile is not None
        tmp = self.textfile.with_name(f".{self.textfile.name}.tmp")
        tmp.write_text(self.render())
        os.replace(tmp, self.textfile)


def _labels(org: str, **extra: str) -> str:
    pairs = ([("org", org)] if org else []) + list(extra.items())
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}"

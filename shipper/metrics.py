"""Counters, a periodic stats line on stderr and an optional Prometheus textfile."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import logs

if TYPE_CHECKING:
    from .http import Stats


class Metrics:
    def __init__(self, http_stats: Stats, textfile: str | None, stats_interval: float) -> None:
        self.http = http_stats
        self.textfile = Path(textfile) if textfile else None
        self.stats_interval = stats_interval
        self.events = 0
        self.pages = 0
        self.gaps = 0
        self.quarantined = 0
        self.last_success = 0.0
        self.lag = 0.0
        self._next_report = time.monotonic() + stats_interval
        self._started = time.monotonic()

    def page(self, events: int, frontier_ms: int) -> None:
        self.events += events
        self.pages += 1
        self.last_success = time.time()
        self.lag = max(0.0, time.time() - frontier_ms / 1000)
        self.maybe_report(frontier_ms)

    def gap(self) -> None:
        self.gaps += 1

    def maybe_report(self, frontier_ms: int) -> None:
        self.lag = max(0.0, time.time() - frontier_ms / 1000)
        if time.monotonic() < self._next_report:
            return
        self._next_report = time.monotonic() + self.stats_interval
        self.report()

    def report(self) -> None:
        logs.info("stats", events=self.events, pages=self.pages, requests=self.http.requests,
                  retries=self.http.retries, throttled=self.http.throttled, lag_s=round(self.lag, 1),
                  quarantined=self.quarantined, gaps=self.gaps)
        if self.textfile:
            try:
                self.write_textfile()
            except OSError as exc:
                # Metrics are for dashboards: failing them must never stop the audit trail.
                logs.error("cannot write metrics.textfile", file=str(self.textfile), reason=exc.strerror)

    def write_textfile(self) -> None:
        assert self.textfile is not None
        lines = [
            "# HELP genesys_audit_events_emitted_total Events written to the output.",
            "# TYPE genesys_audit_events_emitted_total counter",
            f"genesys_audit_events_emitted_total {self.events}",
            "# TYPE genesys_audit_pages_total counter",
            f"genesys_audit_pages_total {self.pages}",
            "# TYPE genesys_audit_requests_total counter",
        ]
        lines += [f'genesys_audit_requests_total{{status="{k}"}} {v}' for k, v in sorted(self.http.by_status.items())]
        lines += [
            "# TYPE genesys_audit_throttled_total counter",
            f"genesys_audit_throttled_total {self.http.throttled}",
            "# TYPE genesys_audit_retries_total counter",
            f"genesys_audit_retries_total {self.http.retries}",
            "# TYPE genesys_audit_lag_seconds gauge",
            f"genesys_audit_lag_seconds {self.lag:.3f}",
            "# TYPE genesys_audit_last_success_timestamp_seconds gauge",
            f"genesys_audit_last_success_timestamp_seconds {self.last_success:.3f}",
            "# TYPE genesys_audit_quarantined_total counter",
            f"genesys_audit_quarantined_total {self.quarantined}",
            "# TYPE genesys_audit_gaps_total counter",
            f"genesys_audit_gaps_total {self.gaps}",
        ]
        tmp = self.textfile.with_name(f".{self.textfile.name}.tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, self.textfile)

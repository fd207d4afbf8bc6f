"""The async audit query's mechanics: POST a transaction, poll it, page its results.

Loops end: a cursor the API hands out twice is an error, and a lost transaction is submitted again
(from the newest event met while the answers kept time order, else from the window's start) only
while restarts bring events the chunk had not met before. A page size that had to shrink (too-large pages) is kept and grows
back slowly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from .. import logs
from ..core.ledger import plan_windows
from ..errors import ApiError
from ..models import QueryStatus, ResultsPage, decode_page, format_ms
from ..net.http import compact_json
from .base import CursorTrail, ReadProgress, Restarts, server_side_query

if TYPE_CHECKING:
    from ..config import Config
    from ..net.http import HttpClient

TOO_LARGE = "response.entity.too.large"
MAX_RESUBMITS = 8
GROW_AFTER_PAGES = 4
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


def _results(body: bytes) -> ResultsPage:
    return decode_page(body, ResultsPage)


class PageSize:
    """The results page size: halved on a too-large page, then grown back by half after every few
    pages that fit, up to the configured size."""

    def __init__(self, limit: int) -> None:
        self.limit = self.size = limit
        self._fits = 0

    def shrink(self) -> bool:
        """False when it cannot shrink any more."""
        if self.size <= 1:
            return False
        self.size, self._fits = max(1, self.size // 2), 0
        return True

    def fitted(self) -> None:
        if self.size < self.limit:
            self._fits += 1
            if self._fits >= GROW_AFTER_PAGES:
                self.size, self._fits = min(self.limit, self.size + max(1, self.size // 2)), 0


class AsyncQuery:
    """Reads windows of any age (31 days at most each) through transactions."""

    def __init__(self, cfg: Config, client: HttpClient) -> None:
        self.client = client
        self.base = cfg.api_base
        self.page = PageSize(cfg.poll.page_size)
        self.max_window_ms = int(cfg.poll.max_window * 1000)
        self.query_timeout = float(cfg.poll.query_timeout)
        self.allow_redirect = cfg.genesys.allow_redirect
        self.service_name, self.filters = server_side_query(cfg.filters)

    def _submit(self, start_ms: int, end_ms: int) -> str:
        body: dict[str, Any] = {
            "interval": f"{format_ms(start_ms)}/{format_ms(end_ms)}",
            "sort": [{"name": "Timestamp", "sortOrder": "ascending"}],
        }
        if self.service_name:
            body["serviceName"] = self.service_name
        if self.filters:
            body["filters"] = self.filters
        status: QueryStatus = self.client.request(
            "POST", f"{self.base}/api/v2/audits/query", json=body, expect=(200, 202),
            decode=QueryStatus, what="audit query submit",
        )
        if status.state != "Succeeded":
            status = self.client.poll_until(
                f"{self.base}/api/v2/audits/query/{status.id}",
                lambda s: s.state not in ("Queued", "Running"),
                QueryStatus,
                what="audit query status",
                timeout=self.query_timeout,
            )
        if status.state != "Succeeded":
            raise ApiError(f"audit query {status.id} ended {status.state}: {status.errorMessage or 'no reason given'}")
        return status.id

    def _results(self, txn: str, cursor: str | None, size: int, redirect: bool) -> ResultsPage:
        params: dict[str, Any] = {"pageSize": size, "expand": "user"}
        if cursor:
            params["cursor"] = cursor
        if redirect:
            params["allowRedirect"] = "true"
        page: ResultsPage = self.client.request(
            "GET", f"{self.base}/api/v2/audits/query/{txn}/results", params=params,
            expect=(200, 302), decode=_results, what="audit query results",
        )
        if page.downloadUrl:
            # A pre-signed URL on another host: never send it our bearer token.
            resp = self.client.request("GET", page.downloadUrl, authenticated=False, what="audit results download")
            try:
                page.entities = _raw_list.decode(compact_json(resp.content))
            except (msgspec.DecodeError, RecursionError):
                raise ApiError("audit results download: the file is not a JSON array") from None
        return page

    def _page(self, txn: str, cursor: str | None) -> ResultsPage:
        redirect = self.allow_redirect
        while True:
            try:
                page = self._results(txn, cursor, self.page.size, redirect)
            except ApiError as exc:
                if exc.code != TOO_LARGE and "too.large" not in str(exc):
                    raise
                if not self.page.shrink():
                    if redirect:
                        raise
                    redirect = True
                logs.warning("page too large, retrying smaller", page_size=self.page.size, allow_redirect=redirect)
                continue
            self.page.fitted()
            return page

    def pages(self, start_ms: int, end_ms: int, progress: ReadProgress) -> Iterator[list[msgspec.Raw]]:
        for w_start, w_end in plan_windows(start_ms, end_ms, self.max_window_ms):
            yield from self._window(w_start, w_end, progress)

    def _window(self, start_ms: int, end_ms: int, progress: ReadProgress) -> Iterator[list[msgspec.Raw]]:
        txn = self._submit(start_ms, end_ms)
        cursor: str | None = None
        cursors = CursorTrail("audit query results")
        restarts = Restarts(progress, MAX_RESUBMITS)
        while True:
            try:
                page = self._page(txn, cursor)
            except ApiError as exc:
                if exc.status != 404 and not (exc.status == 400 and "cursor" in str(exc).lower()):
                    raise
                if not restarts.another():
                    raise ApiError(f"audit query: transaction lost {restarts.count} times in a row without a new "
                                   f"event; last: {exc}", exc.status, exc.code) from None
                # Expired transaction or rejected cursor: read the rest of the window again; the
                # pipeline drops the ids it already wrote.
                resume = progress.resume_ms(start_ms, end_ms)
                logs.warning("audit query transaction expired; resubmitting the window",
                             reason=str(exc), start=format_ms(resume))
                txn, cursor, cursors = self._submit(resume, end_ms), None, CursorTrail(cursors.what)
                continue
            assert isinstance(page.entities, list)
            if page.entities:
                yield page.entities
            if not page.cursor:
                return
            cursor = cursors.follow(page.cursor)

    def probe(self) -> int:
        now_ms = int(self.client.server_now() * 1000)
        txn = self._submit(now_ms - 3_600_000, now_ms)
        entities = self._results(txn, None, 1, self.allow_redirect).entities
        return len(entities) if isinstance(entities, list) else 0

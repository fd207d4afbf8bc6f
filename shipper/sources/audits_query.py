"""The real Genesys Cloud async audit query: POST a transaction, poll it, page its results."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from .. import logs
from ..errors import ApiError
from ..filters import server_side_query
from ..http import compact_json
from ..models import QueryStatus, ResultsPage, format_ms
from ..window import plan_windows
from . import last_event_ms

if TYPE_CHECKING:
    from ..config import Config
    from ..http import HttpClient

TOO_LARGE = "response.entity.too.large"
MAX_RESUBMITS = 8
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


class AuditsQuerySource:
    name = "audits-query"
    ordered = True  # sorted by Timestamp ascending, as requested

    def __init__(self, cfg: Config, client: HttpClient) -> None:
        self.client = client
        self.base = cfg.api_base
        self.page_size = cfg.poll.page_size
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
        status = self.client.request(
            "POST", f"{self.base}/api/v2/audits/query", json=body, expect=(200, 202),
            decode=QueryStatus, what="audit query submit",
        )
        if status.state != "Succeeded":
            status = self.client.poll(
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
            expect=(200, 302), decode=ResultsPage, what="audit query results",
        )
        if page.downloadUrl:
            # A pre-signed URL on another host: never send it our bearer token.
            resp = self.client.request(
                "GET", page.downloadUrl, authenticated=False, what="audit results download"
            )
            try:
                page.entities = _raw_list.decode(compact_json(resp.content))
            except msgspec.DecodeError:
                raise ApiError("audit results download: the file is not a JSON array") from None
        return page

    def _page(self, txn: str, cursor: str | None) -> ResultsPage:
        size = self.page_size
        redirect = self.allow_redirect
        while True:
            try:
                return self._results(txn, cursor, size, redirect)
            except ApiError as exc:
                if exc.code != TOO_LARGE and "too.large" not in str(exc):
                    raise
                if size > 1:
                    size = max(1, size // 2)
                elif not redirect:
                    redirect = True
                else:
                    raise
                logs.warning("page too large, retrying smaller", page_size=size, allow_redirect=redirect)

    def pages(self, start_ms: int, end_ms: int) -> Iterator[list[msgspec.Raw]]:
        for w_start, w_end in plan_windows(start_ms, end_ms, self.max_window_ms):
            resume = w_start
            txn = self._submit(resume, w_end)
            cursor: str | None = None
            resubmits = 0
            while True:
                try:
                    page = self._page(txn, cursor)
                except ApiError as exc:
                    if exc.status != 404 and not (exc.status == 400 and "cursor" in str(exc).lower()):
                        raise
                    resubmits += 1
                    if resubmits > MAX_RESUBMITS:
                        raise ApiError(f"audit query: transaction rejected {resubmits} times in a row without "
                                       f"progress; last: {exc}", exc.status, exc.code) from None
                    # Expired transaction or rejected cursor: go back to the last written position; the
                    # engine drops the ids it already wrote.
                    logs.warning("audit query transaction expired; resubmitting from last position",
                                 reason=str(exc), resume=format_ms(resume))
                    txn = self._submit(resume, w_end)
                    cursor = None
                    continue
                resubmits = 0
                if page.entities:
                    resume = last_event_ms(page.entities, resume)
                    yield page.entities
                if not page.cursor:
                    break
                cursor = page.cursor

    def probe(self) -> int:
        now_ms = int(time.time() * 1000)
        txn = self._submit(now_ms - 3_600_000, now_ms)
        return len(self._results(txn, None, 1, self.allow_redirect).entities)

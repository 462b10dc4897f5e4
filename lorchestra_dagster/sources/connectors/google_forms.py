"""Google Forms: forms.responses.list with ``filter=timestamp > <RFC3339>`` and ``pageToken``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from lorchestra_dagster.sources.connectors.base import (
    FetchRequest,
    FetchResult,
    limited,
    rfc3339,
)
from lorchestra_dagster.sources.connectors.google import (
    GoogleStreamSettings,
    list_pages,
    service,
)
from lorchestra_dagster.timestamps import parse_utc

SCOPES = ["https://www.googleapis.com/auth/forms.responses.readonly"]


class GoogleFormsSettings(GoogleStreamSettings):
    """The responses of one form."""

    connector: Literal["google_forms"] = Field(description="google_forms")
    base_url: str = Field(default="https://forms.googleapis.com", description="Forms API root")
    form_id: str = Field(description="the form's id")
    page_size: int = Field(default=5000, ge=1, le=5000, description="pageSize per page")


def fetch(req: FetchRequest) -> FetchResult:
    return FetchResult(limited(_pages(req), req.window.limit))


def _pages(req: FetchRequest) -> Iterator[list[dict[str, Any]]]:
    s: GoogleFormsSettings = req.settings
    kw: dict[str, Any] = {"formId": s.form_id, "pageSize": s.page_size}
    if req.window.since:
        kw["filter"] = f"timestamp > {rfc3339(req.window.since)}"
    with service(req, "forms", "v1", SCOPES) as svc:  # closes its keep-alive connection
        for got in list_pages(req, svc.forms().responses().list, kw, "responses"):
            if req.window.until:
                # The API filters only from below; the upper bound is applied here.
                got = [
                    r
                    for r in got
                    if (parse_utc(r.get("lastSubmittedTime")) or req.window.until)
                    < req.window.until
                ]
            yield got

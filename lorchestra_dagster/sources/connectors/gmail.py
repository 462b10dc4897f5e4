"""Gmail: users.messages.list (``q=after:<epoch>``, ``pageToken``) then messages.get format=full.

Gmail has no "get many": a listed page of ids costs one ``messages.get`` each. They are
sent ``fetch_concurrency`` at a time per account (one keep-alive connection per worker
thread, since httplib2 connections are not thread-safe), so a page costs about
``page_size / fetch_concurrency`` round trips instead of ``page_size``; the page keeps the
listed order and any message that fails after its retries fails the page.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from typing import Any, Literal

from pydantic import Field

from lorchestra_dagster.sources.connectors.base import (
    FetchRequest,
    FetchResult,
    limited,
    malformed_page,
)
from lorchestra_dagster.sources.connectors.google import (
    GoogleStreamSettings,
    authorized_http,
    execute_retried,
    list_pages,
    service,
)

SCOPES = ["https://www.googleapis.com/auth/gmail.readonly"]


class GmailSettings(GoogleStreamSettings):
    """One Gmail account."""

    connector: Literal["gmail"] = Field(description="gmail")
    base_url: str = Field(default="https://gmail.googleapis.com", description="Gmail API root")
    user_id: str = Field(default="me", description="userId path parameter")
    query: str = Field(default="", description="extra Gmail search terms, e.g. -in:chats")
    page_size: int = Field(default=100, ge=1, le=500, description="maxResults per list page")
    fetch_concurrency: int = Field(
        default=4,
        ge=1,
        le=16,
        description="messages.get requests in flight per account (Gmail's per-user quota "
        "allows a few; 1 fetches one message at a time)",
    )


def fetch(req: FetchRequest) -> FetchResult:
    return FetchResult(_pages(req))


def _pages(req: FetchRequest) -> Iterator[list[dict[str, Any]]]:
    """One list page of ids, then those messages in full: a page of messages at a time.

    The window's limit caps the listed ids, so no message past it is fetched. Every
    connection opened here (the list's, one per worker thread) is closed at the end.
    """
    s: GmailSettings = req.settings
    terms = [s.query] if s.query else []
    if req.window.since:
        terms.append(f"after:{int(req.window.since.timestamp())}")
    if req.window.until:
        terms.append(f"before:{int(req.window.until.timestamp())}")
    kw = {"userId": s.user_id, "maxResults": s.page_size, "q": " ".join(terms)}
    base = s.effective_base(req.env)
    local = threading.local()
    opened: list[Any] = []

    def get(msg_id: str, page: int) -> dict[str, Any]:
        if s.fetch_concurrency > 1 and not hasattr(local, "http"):
            local.http = authorized_http(req, SCOPES)
            opened.append(local.http)
        return execute_retried(
            messages.get(userId=s.user_id, id=msg_id, format="full"),
            req,
            s,
            page=page,
            base_url=base,
            http=getattr(local, "http", None),
        )

    try:
        with (
            service(req, "gmail", "v1", SCOPES) as svc,
            ThreadPoolExecutor(
                s.fetch_concurrency, thread_name_prefix=f"gmail-{req.stream}"
            ) as pool,
        ):
            messages = svc.users().messages()
            listed = limited(list_pages(req, messages.list, kw, "messages"), req.window.limit)
            for page, refs in enumerate(listed, start=1):
                ids = _ids(refs, req.stream, page)
                yield list(pool.map(get, ids, repeat(page, len(ids))))
    finally:  # after the pool has finished: no worker still uses a connection
        for http in opened:
            http.close()


def _ids(refs: list[Any], stream: str, page: int) -> list[str]:
    """The message ids of one list page (``[{"id", "threadId"}, ...]``)."""
    if not all(isinstance(ref, dict) and ref.get("id") for ref in refs):
        raise malformed_page(stream, page, "a listed message has no id")
    return [str(ref["id"]) for ref in refs]

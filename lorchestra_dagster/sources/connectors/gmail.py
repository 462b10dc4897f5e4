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
    return FetchResult(limited(_pages(req), req.window.limit))


def _pages(req: FetchRequest) -> Iterator[list[dict[str, Any]]]:
    """One list page of ids, then those messages in full: a page of messages at a time."""
    s: GmailSettings = req.settings
    svc = service(req, "gmail", "v1", SCOPES)
    messages = svc.users().messages()
    terms = [s.query] if s.query else []
    if req.window.since:
        terms.append(f"after:{int(req.window.since.timestamp())}")
    if req.window.until:
        terms.append(f"before:{int(req.window.until.timestamp())}")
    base = s.effective_base(req.env)
    local = threading.local()

    def get(msg_id: str, n: int) -> dict[str, Any]:
        if s.fetch_concurrency > 1 and not hasattr(local, "http"):
            local.http = authorized_http(req, SCOPES)
        return execute_retried(
            messages.get(userId=s.user_id, id=msg_id, format="full"),
            req,
            s,
            page=n,
            base_url=base,
            http=getattr(local, "http", None),
        )

    with ThreadPoolExecutor(s.fetch_concurrency, thread_name_prefix=f"gmail-{req.stream}") as pool:
        yield from _list_pages(req, messages, terms, base, get, pool)


def _list_pages(
    req: FetchRequest,
    messages: Any,
    terms: list[str],
    base: str,
    get: Any,
    pool: ThreadPoolExecutor,
) -> Iterator[list[dict[str, Any]]]:
    s: GmailSettings = req.settings
    token: str | None = None
    page = 0
    requests = 0
    left = req.window.limit
    while True:
        page += 1
        requests += 1
        kw = {"userId": s.user_id, "maxResults": s.page_size, "q": " ".join(terms)}
        if token:
            kw["pageToken"] = token
        body = execute_retried(messages.list(**kw), req, s, page=requests, base_url=base)
        listed = body.get("messages", [])
        if not isinstance(listed, list):
            raise malformed_page(req.stream, page, "'messages' is not a list")
        ids = [str(m["id"]) for m in listed][:left]
        first = requests + 1
        requests += len(ids)
        yield list(pool.map(get, ids, range(first, first + len(ids))))
        if left is not None:
            left -= len(ids)
        token = body.get("nextPageToken")
        if not token or (left is not None and left <= 0):
            return

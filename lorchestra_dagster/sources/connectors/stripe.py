"""Stripe list endpoints through the official ``stripe`` package.

The client's ``api_base`` is the configured base URL and its own network
retries are off; pages are walked by the shared paging loop with ``starting_after``
(:data:`STARTING_AFTER`), one page at a time, so a 429/5xx retries just that page.
Pages are read with the client's ``raw_request`` (the SDK's auth, encoding,
error classes), and objects are the decoded response body: Stripe's JSON
unchanged, never rebuilt as SDK objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import requests
import stripe as stripe_sdk
from pydantic import Field

from lorchestra_dagster.errors import PermanentError, TransientError
from lorchestra_dagster.sources.connectors.base import (
    FetchRequest,
    FetchResult,
    HttpStreamSettings,
    RateLimited,
    Unreachable,
    auth_error,
    connect_reason,
    limited,
    malformed_page,
    parse_retry_after,
    require_env,
)
from lorchestra_dagster.sources.connectors.paging import Paging, pages


class StripeSettings(HttpStreamSettings):
    """One Stripe list resource of one account."""

    connector: Literal["stripe"] = Field(description="stripe")
    base_url: str = Field(default="https://api.stripe.com", description="Stripe API root")
    resource: Literal["customers", "invoices", "payment_intents", "refunds"] = Field(
        description="list endpoint"
    )
    api_key_env: str = Field(default="STRIPE_API_KEY", description="env var of the secret key")
    page_size: int = Field(default=100, ge=1, le=100, description="limit per page")


def _page(
    client: Any, path: str, params: dict[str, Any], *, stream: str, page: int, key_var: str
) -> dict[str, Any]:
    try:
        # raw_request: the SDK's request, auth, encoding and error classes, without turning
        # each of the page's objects into a StripeObject only to take its JSON back out.
        response = client.raw_request("get", path, **params)
    except stripe_sdk.RateLimitError as exc:
        headers = exc.headers or {}
        retry_after = headers.get("Retry-After") or headers.get("retry-after")
        raise RateLimited(
            f"stream {stream!r}: rate limited on page {page} (HTTP 429)",
            retry_after=parse_retry_after(retry_after),
            stream=stream,
        ) from None
    except (stripe_sdk.AuthenticationError, stripe_sdk.PermissionError) as exc:
        raise auth_error(stream, exc.http_status or 401, key_var) from None
    except stripe_sdk.APIConnectionError as exc:
        raise Unreachable(connect_reason(exc), stream=stream) from None
    except stripe_sdk.APIError as exc:
        if exc.http_status and exc.http_status >= 500:
            raise TransientError(
                f"stream {stream!r}: server error on page {page} (HTTP {exc.http_status})",
                stream=stream,
            ) from None
        raise malformed_page(stream, page, "invalid response body") from None
    except stripe_sdk.StripeError as exc:
        raise PermanentError(
            f"stream {stream!r}: request for page {page} refused (HTTP {exc.http_status})",
            stream=stream,
        ) from None
    body = getattr(response, "data", None)
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise malformed_page(stream, page, "not a Stripe list object")
    return body


def _after_last(body: dict[str, Any]) -> str | None:
    """The id to start the next page after: the page's last object, when there is more."""
    data = body["data"]
    return str(data[-1]["id"]) if body.get("has_more") and data else None


#: Stripe's paging: ``has_more`` on a page, ``starting_after=<last id>`` on the next request
#: (what the package's auto-pagination does, one page per call so a retry repeats one page).
STARTING_AFTER = Paging[dict[str, Any]](
    items_key="data",
    next_cursor=_after_last,
    with_cursor=lambda params, after: {**params, "starting_after": after},
)


def fetch(req: FetchRequest) -> FetchResult:
    return FetchResult(limited(_pages(req), req.window.limit))


def _pages(req: FetchRequest) -> Iterator[list[dict[str, Any]]]:
    s: StripeSettings = req.settings
    key = require_env(req.env, s.api_key_env, req.stream, "Stripe secret key")
    base = s.effective_base(req.env)
    params: dict[str, Any] = {"limit": s.page_size}
    created: dict[str, int] = {}
    if req.window.since:
        created["gt"] = int(req.window.since.timestamp())
    if req.window.until:
        created["lt"] = int(req.window.until.timestamp())
    if created:
        params["created"] = created
    # One requests session for every page: its pool keeps the connection alive, and the
    # with-block closes it (the SDK would otherwise open a session per thread and leave it).
    with requests.Session() as session:
        client = stripe_sdk.StripeClient(
            key,
            base_addresses={"api": base},
            max_network_retries=0,
            http_client=stripe_sdk.RequestsClient(timeout=s.timeout_s, session=session),
        )
        path = f"/v1/{s.resource}"

        def send(call: dict[str, Any], page: int) -> dict[str, Any]:
            return _page(client, path, call, stream=req.stream, page=page, key_var=s.api_key_env)

        yield from pages(req, STARTING_AFTER, params, send, base_url=base)

"""httpx plumbing shared by the OData connectors: status mapping, MSAL tokens, paging."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import msal

from lorchestra_dagster.errors import PermanentError, TransientError
from lorchestra_dagster.sources.connectors.base import (
    FetchRequest,
    RateLimited,
    Unreachable,
    auth_error,
    connect_reason,
    malformed_page,
    parse_retry_after,
)
from lorchestra_dagster.sources.connectors.paging import Paging, pages


def check_response(resp: httpx.Response, *, stream: str, page: int, cred_var: str) -> None:
    """Raise the error class the policy assigns to a non-2xx response (never the body)."""
    status = resp.status_code
    if status < 300:
        return
    if status == 429:
        raise RateLimited(
            f"stream {stream!r}: rate limited on page {page} (HTTP 429)",
            retry_after=parse_retry_after(resp.headers.get("retry-after")),
            stream=stream,
        )
    if status >= 500:
        raise TransientError(
            f"stream {stream!r}: server error on page {page} (HTTP {status})", stream=stream
        )
    if status in (401, 403):
        raise auth_error(stream, status, cred_var)
    raise PermanentError(
        f"stream {stream!r}: request for page {page} refused (HTTP {status})",
        stream=stream,
        code=f"http_{status}",
    )


def get_json(
    client: httpx.Client,
    url: str,
    *,
    stream: str,
    page: int,
    cred_var: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """GET one page and parse it; connection failures become ``Unreachable``."""
    try:
        resp = client.get(url, params=params, headers=headers)
    except httpx.ConnectError as exc:
        raise Unreachable(connect_reason(exc), stream=stream) from exc
    except httpx.TimeoutException as exc:
        raise TransientError(f"stream {stream!r}: page {page} timed out", stream=stream) from exc
    check_response(resp, stream=stream, page=page, cred_var=cred_var)
    try:
        body = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise malformed_page(stream, page, "not JSON") from None
    if not isinstance(body, dict):
        raise malformed_page(stream, page, "not a JSON object")
    return body


class MsalHttpClient:
    """The requests-like client MSAL accepts, backed by httpx with our timeout.

    MSAL only accepts ``https`` authorities. When the login URL is plain HTTP
    (the loopback sandbox), MSAL is given the ``https`` form of the same host
    and this adapter sends those requests to the configured plain-HTTP URL.
    """

    def __init__(self, client: httpx.Client, login_url: str) -> None:
        self._client = client
        parts = urlsplit(login_url)
        self._downgrade = parts.netloc if parts.scheme == "http" else None

    def _url(self, url: str) -> str:
        parts = urlsplit(url)
        if self._downgrade and parts.scheme == "https" and parts.netloc == self._downgrade:
            return urlunsplit(("http", *parts[1:]))
        return url

    def get(self, url: str, params: Any = None, headers: Any = None, **_: Any) -> httpx.Response:
        return self._client.get(self._url(url), params=params, headers=headers)

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **_: Any
    ) -> httpx.Response:
        return self._client.post(self._url(url), params=params, data=data, headers=headers)

    def close(self) -> None:  # MSAL may call this; the httpx client is owned by the caller
        return None


def msal_token(
    client: httpx.Client,
    *,
    stream: str,
    login_url: str,
    tenant_id: str,
    client_id: str,
    secret: str,
    secret_var: str,
    scope: str,
) -> str:
    """Client-credentials access token from Microsoft Entra ID (or the sandbox)."""
    parts = urlsplit(login_url.rstrip("/"))
    authority = urlunsplit(("https", parts.netloc, f"{parts.path}/{tenant_id}", "", ""))
    try:
        app = msal.ConfidentialClientApplication(
            client_id,
            client_credential=secret,
            authority=authority,
            http_client=MsalHttpClient(client, login_url),
            instance_discovery=False,
        )
        result = app.acquire_token_for_client(scopes=[scope])
    except httpx.ConnectError as exc:
        raise Unreachable(connect_reason(exc), stream=stream) from exc
    except httpx.TimeoutException as exc:
        raise TransientError(f"stream {stream!r}: token request timed out", stream=stream) from exc
    except ValueError as exc:
        raise PermanentError(
            f"stream {stream!r}: Microsoft login discovery failed at "
            f"{login_url} for tenant {tenant_id!r}: {exc}",
            stream=stream,
            code="auth",
        ) from exc
    if "access_token" in result:
        return str(result["access_token"])
    error = str(result.get("error", "unknown"))
    if error in ("invalid_client", "unauthorized_client", "invalid_request"):
        raise PermanentError(
            f"stream {stream!r}: Microsoft login rejected the client credential ({error}); "
            f"fix environment variable {secret_var} or client_id/tenant_id in sources.yaml",
            stream=stream,
            code="auth",
        )
    raise TransientError(f"stream {stream!r}: token request failed ({error})", stream=stream)


@dataclass(frozen=True)
class ODataRequest:
    """One OData page request: a URL and, for the first page only, its query."""

    url: str
    params: dict[str, str] | None = None


#: OData's paging (Graph, Dataverse): a page names ``@odata.nextLink``, an absolute URL that
#: already carries the query, so the next request is that URL alone.
ODATA = Paging[ODataRequest](
    items_key="value",
    next_cursor=lambda body: body.get("@odata.nextLink"),
    with_cursor=lambda _, link: ODataRequest(link),
)


def odata_pages(
    req: FetchRequest,
    client: httpx.Client,
    first: ODataRequest,
    *,
    headers: dict[str, str],
    cred_var: str,
    base_url: str,
) -> Iterator[list[Any]]:
    """The pages of an OData collection through the shared paging loop, on ``client``'s
    connection pool (one keep-alive connection for every page)."""

    def send(request: ODataRequest, page: int) -> dict[str, Any]:
        return get_json(
            client,
            request.url,
            stream=req.stream,
            page=page,
            cred_var=cred_var,
            params=request.params,
            headers=headers,
        )

    return pages(req, ODATA, first, send, base_url=base_url)

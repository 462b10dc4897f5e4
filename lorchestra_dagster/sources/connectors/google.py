"""google-api-python-client plumbing shared by Gmail and Forms.

Services are built from the discovery documents shipped inside the package
(``static_discovery=True``), so nothing is fetched from Google to build them,
and ``api_endpoint`` points them at the configured base URL. The client's own
retries are off (``num_retries=0``): our policy retries with Retry-After.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from pydantic import Field, model_validator

from lorchestra_dagster.errors import PermanentError, TransientError
from lorchestra_dagster.sources.connectors.base import (
    FetchRequest,
    HttpStreamSettings,
    RateLimited,
    Unreachable,
    auth_error,
    connect_reason,
    malformed_page,
    parse_retry_after,
    require_env,
    with_retries,
)
from lorchestra_dagster.sources.connectors.paging import Paging, pages


class GoogleStreamSettings(HttpStreamSettings):
    """OAuth credentials of a Google stream: a bearer token in env, or a token file."""

    token_env: str | None = Field(default=None, description="env var holding an access token")
    token_file_env: str | None = Field(
        default=None, description="env var naming an authorized-user JSON token file"
    )

    @model_validator(mode="after")
    def _one_credential(self) -> GoogleStreamSettings:
        if (self.token_env is None) == (self.token_file_env is None):
            raise ValueError("set exactly one of token_env or token_file_env")
        return self

    @property
    def credential_var(self) -> str:
        return self.token_env or self.token_file_env or ""


def service(req: FetchRequest, name: str, version: str, scopes: list[str]) -> Any:
    """The discovery-built client of ``name`` at the stream's base URL."""
    return build(
        name,
        version,
        http=authorized_http(req, scopes),
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": req.settings.effective_base(req.env)},
    )


def authorized_http(req: FetchRequest, scopes: list[str]) -> Any:
    """An httplib2 connection (keep-alive) carrying the stream's credentials.

    httplib2 connections are not thread-safe: a connector that sends requests from several
    threads builds one of these per thread and passes it to :func:`execute`.
    """
    s: GoogleStreamSettings = req.settings
    if s.token_env:
        creds = Credentials(
            token=require_env(req.env, s.token_env, req.stream, "Google OAuth access token")
        )
    else:
        path = require_env(req.env, s.token_file_env, req.stream, "Google OAuth token file")
        try:
            creds = Credentials.from_authorized_user_file(path, scopes)
        except (OSError, ValueError) as exc:
            raise PermanentError(
                f"stream {req.stream!r}: cannot read the token file named by "
                f"{s.token_file_env}: {type(exc).__name__}",
                stream=req.stream,
                code="missing_credential",
            ) from exc
    return google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=s.timeout_s))


def page_token(items_key: str) -> Paging[dict[str, Any]]:
    """Google's paging: a page names ``nextPageToken``, the next ``list`` call sends it as
    ``pageToken``; an empty page leaves its list out."""
    return Paging(
        items_key=items_key,
        next_cursor=lambda body: body.get("nextPageToken"),
        with_cursor=lambda kw, token: {**kw, "pageToken": token},
        items_optional=True,
    )


def list_pages(
    req: FetchRequest, method: Callable[..., Any], kw: dict[str, Any], items_key: str
) -> Iterator[list[Any]]:
    """Every page of a discovery ``list`` method (``users.messages.list``, ...), called
    with ``kw`` plus the page token, through the shared paging loop."""
    s: GoogleStreamSettings = req.settings

    def send(call: dict[str, Any], page: int) -> dict[str, Any]:
        return execute(method(**call), stream=req.stream, page=page, cred_var=s.credential_var)

    return pages(req, page_token(items_key), kw, send, base_url=s.effective_base(req.env))


def execute_retried(
    request: Any,
    req: FetchRequest,
    s: GoogleStreamSettings,
    *,
    page: int,
    base_url: str,
    http: Any = None,
) -> dict[str, Any]:
    """``execute`` under the shared retry policy. An HttpRequest may be executed again
    (the client's own retries do), so it is built once per call."""
    return with_retries(
        partial(
            execute, request, stream=req.stream, page=page, cred_var=s.credential_var, http=http
        ),
        stream=req.stream,
        attempts=s.max_attempts,
        base_url=base_url,
        env=req.env,
    )


def execute(
    request: Any, *, stream: str, page: int, cred_var: str, http: Any = None
) -> dict[str, Any]:
    """Execute one API request under the shared error policy (on ``http`` when given,
    else on the connection the service was built with)."""
    try:
        body = request.execute(http=http, num_retries=0)
    except HttpError as exc:
        status = int(exc.resp.status)
        if status == 429:
            raise RateLimited(
                f"stream {stream!r}: rate limited on page {page} (HTTP 429)",
                retry_after=parse_retry_after(exc.resp.get("retry-after")),
                stream=stream,
            ) from None
        if status >= 500:
            raise TransientError(
                f"stream {stream!r}: server error on page {page} (HTTP {status})", stream=stream
            ) from None
        if status in (401, 403):
            raise auth_error(stream, status, cred_var) from None
        raise PermanentError(
            f"stream {stream!r}: request for page {page} refused (HTTP {status})",
            stream=stream,
            code=f"http_{status}",
        ) from None
    except RefreshError:
        # A 401 makes the client try to refresh a token that cannot be refreshed.
        raise auth_error(stream, 401, cred_var) from None
    except (
        ConnectionRefusedError,
        httplib2.error.ServerNotFoundError,
        socket.gaierror,
        TransportError,
    ) as exc:
        raise Unreachable(connect_reason(exc), stream=stream) from None
    except (TimeoutError, ConnectionResetError) as exc:
        raise TransientError(
            f"stream {stream!r}: page {page} failed: {type(exc).__name__}", stream=stream
        ) from None
    if not isinstance(body, dict):
        raise malformed_page(stream, page, "not a JSON object")
    return body

"""Exchange Online mail through Microsoft Graph (``/users/{mailbox}/messages``).

Client-credentials token from MSAL; ``$filter=receivedDateTime ge ...`` for the
cursor and ``@odata.nextLink`` for paging. Objects are Graph ``message``
resources, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import Field

from lorchestra_dagster.sources.connectors.base import (
    SANDBOX_ENV_VAR,
    FetchRequest,
    FetchResult,
    HttpStreamSettings,
    limited,
    require_env,
    rfc3339,
    tls_context,
    with_retries,
)
from lorchestra_dagster.sources.connectors.http import ODataRequest, msal_token, odata_pages


class ExchangeSettings(HttpStreamSettings):
    """One Exchange mailbox read with an app registration (application permission Mail.Read)."""

    connector: Literal["exchange"] = Field(description="exchange")
    base_url: str = Field(default="https://graph.microsoft.com", description="Graph root")
    login_url: str = Field(
        default="https://login.microsoftonline.com", description="Microsoft Entra ID login root"
    )
    tenant_id: str = Field(description="directory (tenant) id")
    client_id: str = Field(description="application (client) id")
    client_secret_env: str = Field(description="env var holding the client secret")
    scope: str = Field(default="https://graph.microsoft.com/.default", description="token scope")
    mailbox: str = Field(description="mailbox user principal name or id")
    page_size: int = Field(default=100, ge=1, le=1000, description="$top per page")


def fetch(req: FetchRequest) -> FetchResult:
    return FetchResult(limited(_pages(req), req.window.limit))


def _pages(req: FetchRequest) -> Iterator[list[Any]]:
    s: ExchangeSettings = req.settings
    base = s.effective_base(req.env)
    login = (req.env.get(SANDBOX_ENV_VAR) or s.login_url).rstrip("/")
    secret = require_env(req.env, s.client_secret_env, req.stream, "Exchange client secret")
    with httpx.Client(timeout=s.timeout_s, verify=tls_context()) as client:
        token = with_retries(
            lambda: msal_token(
                client,
                stream=req.stream,
                login_url=login,
                tenant_id=s.tenant_id,
                client_id=s.client_id,
                secret=secret,
                secret_var=s.client_secret_env,
                scope=s.scope,
            ),
            stream=req.stream,
            attempts=s.max_attempts,
            base_url=login,
            env=req.env,
        )
        headers = {"Authorization": f"Bearer {token}", "Prefer": 'outlook.body-content-type="html"'}
        clauses = []
        if req.window.since:
            clauses.append(f"receivedDateTime ge {rfc3339(req.window.since)}")
        if req.window.until:
            clauses.append(f"receivedDateTime lt {rfc3339(req.window.until)}")
        params: dict[str, str] = {"$top": str(s.page_size)}
        if clauses:
            params["$filter"] = " and ".join(clauses)
        url = f"{base}/v1.0/users/{quote(s.mailbox)}/messages"
        yield from odata_pages(
            req,
            client,
            ODataRequest(url, params),
            headers=headers,
            cred_var=s.client_secret_env,
            base_url=base,
        )

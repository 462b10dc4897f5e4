"""Dataverse Web API (OData v4): one entity set, paged by ``@odata.nextLink``.

Asks for all annotations (``Prefer: odata.include-annotations="*"``) so option
sets and lookups keep their formatted values, and ``odata.maxpagesize`` for
the page size. Auth: an MSAL client-credentials token, or a ready bearer token
from an environment variable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import httpx
from pydantic import Field, model_validator

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


class DataverseSettings(HttpStreamSettings):
    """One Dataverse entity set of one environment."""

    connector: Literal["dataverse"] = Field(description="dataverse")
    base_url: str = Field(description="environment URL, e.g. https://org.crm.dynamics.com")
    entity_set: str = Field(description="entity set name, e.g. contacts")
    modified_field: str = Field(default="modifiedon", description="cursor column")
    login_url: str = Field(
        default="https://login.microsoftonline.com", description="Microsoft Entra ID login root"
    )
    tenant_id: str | None = Field(default=None, description="tenant id (MSAL auth)")
    client_id: str | None = Field(default=None, description="client id (MSAL auth)")
    client_secret_env: str | None = Field(
        default=None, description="env var of the client secret (MSAL)"
    )
    token_env: str | None = Field(default=None, description="env var of a ready bearer token")
    page_size: int = Field(default=500, ge=1, le=5000, description="odata.maxpagesize")

    @model_validator(mode="after")
    def _one_auth(self) -> DataverseSettings:
        msal_auth = self.client_secret_env is not None
        if msal_auth == (self.token_env is not None):
            raise ValueError(
                "set exactly one of client_secret_env (with tenant_id and client_id) or token_env"
            )
        if msal_auth and not (self.tenant_id and self.client_id):
            raise ValueError("client_secret_env needs tenant_id and client_id")
        return self


def _token(client: httpx.Client, req: FetchRequest) -> tuple[str, str]:
    s: DataverseSettings = req.settings
    if s.token_env:
        return require_env(req.env, s.token_env, req.stream, "Dataverse bearer token"), s.token_env
    secret_var = s.client_secret_env or ""
    secret = require_env(req.env, secret_var, req.stream, "Dataverse client secret")
    login = (req.env.get(SANDBOX_ENV_VAR) or s.login_url).rstrip("/")
    token = with_retries(
        lambda: msal_token(
            client,
            stream=req.stream,
            login_url=login,
            tenant_id=s.tenant_id or "",
            client_id=s.client_id or "",
            secret=secret,
            secret_var=secret_var,
            scope=f"{s.base_url.rstrip('/')}/.default",
        ),
        stream=req.stream,
        attempts=s.max_attempts,
        base_url=login,
        env=req.env,
    )
    return token, secret_var


def fetch(req: FetchRequest) -> FetchResult:
    return FetchResult(limited(_pages(req), req.window.limit))


def _pages(req: FetchRequest) -> Iterator[list[Any]]:
    s: DataverseSettings = req.settings
    base = s.effective_base(req.env)
    with httpx.Client(timeout=s.timeout_s, verify=tls_context()) as client:
        token, cred_var = _token(client, req)
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
            "Prefer": f'odata.maxpagesize={s.page_size},odata.include-annotations="*"',
        }
        clauses = []
        if req.window.since:
            clauses.append(f"{s.modified_field} gt {rfc3339(req.window.since)}")
        if req.window.until:
            clauses.append(f"{s.modified_field} lt {rfc3339(req.window.until)}")
        params: dict[str, str] | None = {"$filter": " and ".join(clauses)} if clauses else None
        url = f"{base}/api/data/v9.2/{s.entity_set}"
        yield from odata_pages(
            req,
            client,
            ODataRequest(url, params),
            headers=headers,
            cred_var=cred_var,
            base_url=base,
        )

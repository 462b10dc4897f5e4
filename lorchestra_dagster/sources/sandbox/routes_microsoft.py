"""Microsoft routes: Graph messages, Dataverse Web API, Entra ID discovery and token."""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lorchestra_dagster.sources.sandbox.names import EXCHANGE_MAILBOX
from lorchestra_dagster.sources.sandbox.state import SANDBOX_ENV, SandboxState
from lorchestra_dagster.sources.sandbox.streams import DATAVERSE_ENTITY_SETS
from lorchestra_dagster.sources.sandbox.wire import (
    data_endpoint,
    int_param,
    page_slice,
    vendor_error,
)
from lorchestra_dagster.timestamps import epoch_seconds

# OData (Graph, Dataverse) -------------------------------------------------------------
_ODATA_CLAUSE = re.compile(r"^(\w+)\s+(ge|gt|le|lt|eq)\s+(\S+)$")


def _odata_filter(expr: str, allowed: set[str]) -> list[tuple[str, str, float]] | str:
    """Parse ``a ge T and a lt U`` into clauses; a string return is the error message."""
    out: list[tuple[str, str, float]] = []
    if not expr.strip():
        return out
    for clause in re.split(r"\s+and\s+", expr.strip()):
        m = _ODATA_CLAUSE.match(clause.strip())
        if not m:
            return f"Syntax error in $filter at '{clause}'."
        if m.group(1) not in allowed:
            return f"Could not find a property named '{m.group(1)}'."
        out.append((m.group(1), m.group(2), epoch_seconds(m.group(3).strip("'"))))
    return out


def _next_link(request: Request, **params: Any) -> str:
    query = dict(request.query_params)
    query.update({k: str(v) for k, v in params.items()})
    return f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(query)}"


@data_endpoint("exchange")
async def graph_messages(request: Request, state: SandboxState) -> Response:
    if request.path_params["mailbox"].lower() != EXCHANGE_MAILBOX:
        return vendor_error("exchange", 404, "The specified object was not found in the store.")
    clauses = _odata_filter(request.query_params.get("$filter", ""), {"receivedDateTime"})
    if isinstance(clauses, str):
        return vendor_error("exchange", 400, clauses)
    lo, hi = state.span("exchange_office", "exchange", [(op, v) for _, op, v in clauses])
    rows = state.sorted_stream("exchange_office", "exchange")[lo:hi][::-1]
    size = int_param(request.query_params.get("$top"), 10, 1, 1000)
    chunk, nxt = page_slice(
        rows, int_param(request.query_params.get("$skiptoken"), 0, 0, 10**9), size
    )
    body: dict[str, Any] = {
        "@odata.context": f"{request.base_url}v1.0/$metadata#users('{EXCHANGE_MAILBOX}')/messages",
        "value": [r[2] for r in chunk],
    }
    if nxt is not None:
        body["@odata.nextLink"] = _next_link(request, **{"$skiptoken": nxt})
    return JSONResponse(body)


def _prefer(request: Request) -> tuple[int, bool]:
    prefer = request.headers.get("prefer", "")
    m = re.search(r"odata\.maxpagesize=(\d+)", prefer)
    return (int(m.group(1)) if m else 5000), "odata.include-annotations" in prefer


@data_endpoint("dataverse")
async def dataverse_entities(request: Request, state: SandboxState) -> Response:
    entity = request.path_params["entity_set"]
    stream = next((s for s, e in DATAVERSE_ENTITY_SETS.items() if e == entity), None)
    if stream is None:
        return vendor_error("dataverse", 404, f"Resource not found for the segment '{entity}'.")
    clauses = _odata_filter(request.query_params.get("$filter", ""), {"modifiedon"})
    if isinstance(clauses, str):
        return vendor_error("dataverse", 400, clauses)
    lo, hi = state.span(stream, "dataverse", [(op, v) for _, op, v in clauses])
    rows = state.sorted_stream(stream, "dataverse")[lo:hi]
    size, annotations = _prefer(request)
    chunk, nxt = page_slice(
        rows, int_param(request.query_params.get("$skiptoken"), 0, 0, 10**9), size
    )
    value = [
        r[2]
        if annotations
        else {k: v for k, v in r[2].items() if "@" not in k or k == "@odata.etag"}
        for r in chunk
    ]
    body: dict[str, Any] = {
        "@odata.context": f"{request.base_url}api/data/v9.2/$metadata#{entity}",
        "value": value,
    }
    if nxt is not None:
        body["@odata.nextLink"] = _next_link(request, **{"$skiptoken": nxt})
    headers = {"Preference-Applied": 'odata.include-annotations="*"'} if annotations else None
    return JSONResponse(body, headers=headers)


# Microsoft identity platform ---------------------------------------------------------
async def openid_configuration(request: Request) -> Response:
    tenant = request.path_params["tenant"]
    base = f"https://{request.url.netloc}/{tenant}"
    return JSONResponse(
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": f"{base}/v2.0",
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "tenant_region_scope": "EU",
        }
    )


async def token(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
    if form.get("grant_type") != "client_credentials":
        return JSONResponse(
            {
                "error": "unsupported_grant_type",
                "error_description": "AADSTS70003: unsupported grant",
            },
            400,
        )
    if form.get("client_secret") != SANDBOX_ENV["EXCHANGE_CLIENT_SECRET"]:
        return JSONResponse(
            {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
            },
            401,
        )
    access = "sandbox-at-" + secrets.token_hex(12)
    state.issued_tokens.add(access)
    return JSONResponse(
        {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": access}
    )

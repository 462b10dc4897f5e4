"""Gmail (users.messages list/get) and Google Forms (forms.get, responses.list) routes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lorchestra_dagster.sources.sandbox.names import GMAIL_ACCOUNTS
from lorchestra_dagster.sources.sandbox.state import SANDBOX_ENV, SandboxState
from lorchestra_dagster.sources.sandbox.wire import (
    bearer,
    data_endpoint,
    int_param,
    page_slice,
    vendor_error,
)
from lorchestra_dagster.timestamps import epoch_seconds


# Gmail ---------------------------------------------------------------------------
def _gmail_stream(request: Request) -> str | None:
    token = bearer(request)
    acct = next(
        (k for k in GMAIL_ACCOUNTS if SANDBOX_ENV[f"GMAIL_{k.upper()}_TOKEN"] == token), None
    )
    user = request.path_params["user_id"]
    if acct is None or user not in ("me", GMAIL_ACCOUNTS[acct]):
        return None
    return f"gmail_{acct}"


def _gmail_bound(q: str, op: str) -> float | None:
    m = re.search(rf"\b{op}:(\S+)", q)
    if not m:
        return None
    raw = m.group(1)
    if raw.isdigit():
        return float(raw)
    return datetime.strptime(raw, "%Y/%m/%d").replace(tzinfo=UTC).timestamp()


@data_endpoint("gmail")
async def gmail_list(request: Request, state: SandboxState) -> Response:
    stream = _gmail_stream(request)
    if stream is None:
        return vendor_error("gmail", 403, "Delegation denied for this user (sandbox).")
    q = request.query_params.get("q", "")
    after, before = _gmail_bound(q, "after"), _gmail_bound(q, "before")
    bounds = [b for b in (("gt", after), ("lt", before)) if b[1] is not None]
    lo, hi = state.span(stream, "gmail", bounds)  # type: ignore[arg-type]
    rows = state.sorted_stream(stream, "gmail")[lo:hi][::-1]  # newest first, like Gmail
    size = int_param(request.query_params.get("maxResults"), 100, 1, 500)
    chunk, nxt = page_slice(
        rows, int_param(request.query_params.get("pageToken"), 0, 0, 10**9), size
    )
    body: dict[str, Any] = {"resultSizeEstimate": len(rows)}
    if chunk:
        body["messages"] = [{"id": r[1], "threadId": r[2]["threadId"]} for r in chunk]
    if nxt is not None:
        body["nextPageToken"] = str(nxt)
    return JSONResponse(body)


@data_endpoint("gmail")
async def gmail_get(request: Request, state: SandboxState) -> Response:
    stream = _gmail_stream(request)
    if stream is None:
        return vendor_error("gmail", 403, "Delegation denied for this user (sandbox).")
    msg = state.get(stream, "gmail", request.path_params["msg_id"])
    if msg is None:
        return vendor_error("gmail", 404, "Requested entity was not found.")
    return JSONResponse(msg)


# Google Forms ----------------------------------------------------------------------
@data_endpoint("forms")
async def forms_get(request: Request, state: SandboxState) -> Response:
    spec = state.practice.forms.get(request.path_params["form_id"])
    if spec is None:
        return vendor_error("forms", 404, "Requested entity was not found.")
    return JSONResponse(state.practice.form_definitions()[spec.form_id])


_FORMS_FILTER = re.compile(r"^\s*timestamp\s*(>=|>)\s*(\S+)\s*$")


@data_endpoint("forms")
async def forms_responses(request: Request, state: SandboxState) -> Response:
    form_id = request.path_params["form_id"]
    if form_id not in state.practice.forms:
        return vendor_error("forms", 404, "Requested entity was not found.")
    stream = f"forms_{form_id}"
    bounds: list[tuple[str, float]] = []
    flt = request.query_params.get("filter")
    if flt:
        m = _FORMS_FILTER.match(flt)
        if not m:
            return vendor_error("forms", 400, "Invalid filter (expected 'timestamp > T').")
        bounds.append(("ge" if m.group(1) == ">=" else "gt", epoch_seconds(m.group(2))))
    lo, hi = state.span(stream, "forms", bounds)
    rows = state.sorted_stream(stream, "forms")[lo:hi]
    size = int_param(request.query_params.get("pageSize"), 5000, 1, 5000)
    chunk, nxt = page_slice(
        rows, int_param(request.query_params.get("pageToken"), 0, 0, 10**9), size
    )
    body: dict[str, Any] = {}
    if chunk:
        body["responses"] = [r[2] for r in chunk]
    if nxt is not None:
        body["nextPageToken"] = str(nxt)
    return JSONResponse(body)

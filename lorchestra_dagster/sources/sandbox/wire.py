"""What every sandbox data endpoint shares: vendor error bodies, auth, faults, paging."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lorchestra_dagster.sources.sandbox.faults import FaultRule
from lorchestra_dagster.sources.sandbox.state import SANDBOX_ENV, SandboxState

# vendor error bodies -------------------------------------------------------------
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
}
_MS_CODE = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Forbidden",
    404: "ResourceNotFound",
    429: "TooManyRequests",
    500: "InternalServerError",
}
_STRIPE_TYPE = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "invalid_request_error",
    500: "api_error",
}


def vendor_error(
    vendor: str, status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    if vendor in ("gmail", "forms"):
        body: dict[str, Any] = {
            "error": {
                "code": status,
                "message": message,
                "status": _GOOGLE_STATUS.get(status, "UNKNOWN"),
            }
        }
    elif vendor in ("exchange", "dataverse"):
        body = {"error": {"code": _MS_CODE.get(status, "Error"), "message": message}}
    else:
        body = {"error": {"message": message, "type": _STRIPE_TYPE.get(status, "api_error")}}
        if status == 429:
            body["error"]["code"] = "rate_limit"
    return JSONResponse(body, status_code=status, headers=headers)


def bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


Handler = Callable[[Request, SandboxState], Awaitable[Response]]


def data_endpoint(vendor: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a data handler with the vendor's auth check and the armed faults."""

    def deco(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            state: SandboxState = request.app.state.sandbox
            state.requests += 1
            state.paths.append(request.url.path)
            if request.client is not None:
                state.peers.add((request.client.host, request.client.port))
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                return await _answer(fn, vendor, request, state)
            finally:
                state.in_flight -= 1

        return endpoint

    return deco


async def _answer(fn: Handler, vendor: str, request: Request, state: SandboxState) -> Response:
    """Latency, auth, armed faults, then the handler."""
    if state.latency_s > 0:
        await asyncio.sleep(state.latency_s)
    if not _authorized(vendor, request, state):
        return vendor_error(
            vendor, 401, "Request had invalid authentication credentials (sandbox)."
        )
    rule = state.faults.take(request.url.path)
    if rule is not None:
        early = await _apply_fault(vendor, rule)
        if early is not None:
            return early
    return await fn(request, state)


def _authorized(vendor: str, request: Request, state: SandboxState) -> bool:
    token = bearer(request)
    if vendor == "gmail":
        return token in (SANDBOX_ENV["GMAIL_ACCT1_TOKEN"], SANDBOX_ENV["GMAIL_ACCT2_TOKEN"])
    if vendor == "forms":
        return token == SANDBOX_ENV["GOOGLE_FORMS_TOKEN"]
    if vendor in ("exchange", "dataverse"):
        return token in state.issued_tokens
    return token == SANDBOX_ENV["STRIPE_API_KEY"]


async def _apply_fault(vendor: str, rule: FaultRule) -> Response | None:
    if rule.kind == "rate_limit":
        return vendor_error(
            vendor,
            429,
            "Rate limit exceeded (sandbox).",
            headers={"Retry-After": f"{rule.retry_after:g}"},
        )
    if rule.kind == "server_error":
        return vendor_error(vendor, 500, "Internal error (sandbox).")
    if rule.kind == "slow":
        await asyncio.sleep(rule.delay_s)
        return None
    return Response('{"value": [{"id": "trunc', media_type="application/json")


def page_slice(rows: list[Any], offset: int, size: int) -> tuple[list[Any], int | None]:
    chunk = rows[offset : offset + size]
    nxt = offset + size if offset + size < len(rows) else None
    return chunk, nxt


def int_param(value: str | None, default: int, lo: int, hi: int) -> int:
    try:
        return max(lo, min(hi, int(value))) if value else default
    except ValueError:
        return default

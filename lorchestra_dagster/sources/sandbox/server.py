"""One loopback HTTP server speaking the five vendor APIs over the synthetic practice.

Paths keep each vendor's own prefix (``/gmail/v1``, ``/v1/forms``, ``/v1.0``,
``/api/data/v9.2``, ``/v1`` for Stripe, ``/{tenant}/oauth2/v2.0/token``), so
pointing a connector at the sandbox is a plain base-URL swap
(``LORCHESTRA_SANDBOX_URL``). Auth is checked per vendor and errors use each
vendor's error body. Faults are armed through :class:`.faults.Faults` (Python)
or ``POST /_sandbox/faults`` (HTTP).

The sandbox answers Microsoft's OpenID discovery with ``https`` URLs on its own
host, because MSAL refuses any other scheme; the exchange/dataverse connectors'
HTTP adapter maps them back to the configured (plain HTTP) base URL.
"""

from __future__ import annotations

import asyncio
import bisect
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lorchestra_dagster.sources.sandbox.faults import FaultRule, Faults
from lorchestra_dagster.sources.sandbox.generate import Practice, generate
from lorchestra_dagster.sources.sandbox.names import EXCHANGE_MAILBOX, GMAIL_ACCOUNTS
from lorchestra_dagster.sources.sandbox.streams import DATAVERSE_ENTITY_SETS, STRIPE_RESOURCES

# Credentials the sandbox accepts; `sandbox_env()` hands them to connectors.
SANDBOX_ENV = {
    "GMAIL_ACCT1_TOKEN": "sandbox-gmail-acct1",
    "GMAIL_ACCT2_TOKEN": "sandbox-gmail-acct2",
    "GOOGLE_FORMS_TOKEN": "sandbox-google-forms",
    "EXCHANGE_CLIENT_SECRET": "sandbox-client-secret",
    "DATAVERSE_CLIENT_SECRET": "sandbox-client-secret",
    "STRIPE_API_KEY": "sk_test_sandbox",
}


def sandbox_env() -> dict[str, str]:
    """Environment variables that make the shipped sources.yaml authenticate to the sandbox."""
    return dict(SANDBOX_ENV)


def _parse_ts(value: Any) -> float:
    """Epoch seconds from epoch seconds, epoch-ms strings or ISO-8601."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.isdigit():
        return int(value) / 1000.0
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


_TS_FIELD = {
    "gmail": "internalDate",
    "exchange": "receivedDateTime",
    "dataverse": "modifiedon",
    "stripe": "created",
    "forms": "lastSubmittedTime",
}


@dataclass
class SandboxState:
    """The practice, its indexes, issued tokens and armed faults."""

    practice: Practice
    faults: Faults = field(default_factory=Faults)
    issued_tokens: set[str] = field(default_factory=set)
    requests: int = 0
    _index: dict[str, list[tuple[float, str, dict[str, Any]]]] = field(default_factory=dict)
    _by_id: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    _keys: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    _gen: int = -1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_clients(self, n: int) -> dict[str, int]:
        with self._lock:
            return self.practice.add_clients(n)

    def sorted_stream(self, stream: str, kind: str) -> list[tuple[float, str, dict[str, Any]]]:
        """Objects of ``stream`` ascending by (source time, id); rebuilt after additions."""
        with self._lock:
            if self._gen != self.practice.generation:
                self._index.clear()
                self._by_id.clear()
                self._keys.clear()
                self._gen = self.practice.generation
            if stream not in self._index:
                ts_field = _TS_FIELD[kind]
                rows = [
                    (_parse_ts(o[ts_field]), _object_id(o), o)
                    for o in self.practice.streams[stream]
                ]
                rows.sort(key=lambda t: (t[0], t[1]))
                self._index[stream] = rows
                self._by_id[stream] = {r[1]: r[2] for r in rows}
                self._keys[stream] = [(r[0], r[1]) for r in rows]
            return self._index[stream]

    def span(self, stream: str, kind: str, bounds: list[tuple[str, float]]) -> tuple[int, int]:
        """Index range ``[lo, hi)`` of the sorted stream whose times satisfy every bound.

        Bisection keeps list calls cheap on a 10,000-client practice.
        """
        rows = self.sorted_stream(stream, kind)
        keys = self._keys[stream]
        lo, hi = 0, len(rows)
        for op, v in bounds:
            if op in ("gt", "le", "eq"):
                edge = bisect.bisect_right(keys, (v, "\uffff"))
            if op in ("ge", "lt", "eq"):
                low_edge = bisect.bisect_left(keys, (v, ""))
            if op == "gt":
                lo = max(lo, edge)
            elif op == "ge":
                lo = max(lo, low_edge)
            elif op == "lt":
                hi = min(hi, low_edge)
            elif op == "le":
                hi = min(hi, edge)
            else:
                lo, hi = max(lo, low_edge), min(hi, edge)
        return lo, max(lo, hi)

    def position(self, stream: str, kind: str, obj_id: str) -> int | None:
        """Index of object ``obj_id`` in the sorted stream, or None."""
        obj = self.get(stream, kind, obj_id)
        if obj is None:
            return None
        key = (_parse_ts(obj[_TS_FIELD[kind]]), obj_id)
        return bisect.bisect_left(self._keys[stream], key)

    def get(self, stream: str, kind: str, obj_id: str) -> dict[str, Any] | None:
        self.sorted_stream(stream, kind)
        return self._by_id[stream].get(obj_id)


def _object_id(obj: dict[str, Any]) -> str:
    for key in ("id", "responseId", "contactid", "cr_clientsessionid", "cr_clientreportid"):
        if key in obj:
            return str(obj[key])
    raise KeyError("object without id")


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


def _bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


Handler = Callable[[Request, SandboxState], Awaitable[Response]]


def data_endpoint(vendor: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a data handler with the vendor's auth check and the armed faults."""

    def deco(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            state: SandboxState = request.app.state.sandbox
            state.requests += 1
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

        return endpoint

    return deco


def _authorized(vendor: str, request: Request, state: SandboxState) -> bool:
    token = _bearer(request)
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


def _page(rows: list[Any], offset: int, size: int) -> tuple[list[Any], int | None]:
    chunk = rows[offset : offset + size]
    nxt = offset + size if offset + size < len(rows) else None
    return chunk, nxt


def _int(value: str | None, default: int, lo: int, hi: int) -> int:
    try:
        return max(lo, min(hi, int(value))) if value else default
    except ValueError:
        return default


# Gmail ---------------------------------------------------------------------------
def _gmail_stream(request: Request) -> str | None:
    token = _bearer(request)
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
    size = _int(request.query_params.get("maxResults"), 100, 1, 500)
    chunk, nxt = _page(rows, _int(request.query_params.get("pageToken"), 0, 0, 10**9), size)
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
        bounds.append(("ge" if m.group(1) == ">=" else "gt", _parse_ts(m.group(2))))
    lo, hi = state.span(stream, "forms", bounds)
    rows = state.sorted_stream(stream, "forms")[lo:hi]
    size = _int(request.query_params.get("pageSize"), 5000, 1, 5000)
    chunk, nxt = _page(rows, _int(request.query_params.get("pageToken"), 0, 0, 10**9), size)
    body: dict[str, Any] = {}
    if chunk:
        body["responses"] = [r[2] for r in chunk]
    if nxt is not None:
        body["nextPageToken"] = str(nxt)
    return JSONResponse(body)


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
        out.append((m.group(1), m.group(2), _parse_ts(m.group(3).strip("'"))))
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
    size = _int(request.query_params.get("$top"), 10, 1, 1000)
    chunk, nxt = _page(rows, _int(request.query_params.get("$skiptoken"), 0, 0, 10**9), size)
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
    chunk, nxt = _page(rows, _int(request.query_params.get("$skiptoken"), 0, 0, 10**9), size)
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


# Stripe -----------------------------------------------------------------------------
@data_endpoint("stripe")
async def stripe_list(request: Request, state: SandboxState) -> Response:
    resource = request.path_params["resource"]
    stream = next((s for s, r in STRIPE_RESOURCES.items() if r == resource), None)
    if stream is None:
        return vendor_error("stripe", 404, f"Unrecognized request URL (GET: /v1/{resource}).")
    qp = request.query_params
    bounds = []
    for op, name in (("gt", "gt"), ("gte", "ge"), ("lt", "lt"), ("lte", "le")):
        if f"created[{op}]" in qp:
            bounds.append((name, float(qp[f"created[{op}]"])))
    if "created" in qp:
        bounds.append(("eq", float(qp["created"])))
    lo, hi = state.span(stream, "stripe", bounds)
    limit = _int(qp.get("limit"), 10, 1, 100)
    if qp.get("starting_after"):
        pos = state.position(stream, "stripe", qp["starting_after"])
        if pos is None:
            return vendor_error("stripe", 400, f"No such object: '{qp['starting_after']}'")
        hi = max(lo, min(hi, pos))
    asc = state.sorted_stream(stream, "stripe")
    chunk = asc[max(lo, hi - limit) : hi][::-1]  # newest first, like Stripe
    return JSONResponse(
        {
            "object": "list",
            "url": f"/v1/{resource}",
            "has_more": hi - limit > lo,
            "data": [r[2] for r in chunk],
        }
    )


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


# admin ------------------------------------------------------------------------------
async def admin_faults(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    if request.method == "DELETE":
        state.faults.clear()
        return JSONResponse({"cleared": True})
    rule = FaultRule.model_validate(await request.json())
    state.faults.add(**rule.model_dump())
    return JSONResponse(rule.model_dump())


async def admin_add_clients(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    body = await request.json()
    return JSONResponse(state.add_clients(int(body.get("n", 1))))


async def admin_counts(request: Request) -> Response:
    return JSONResponse(request.app.state.sandbox.practice.counts())


def create_app(practice: Practice | None = None) -> Starlette:
    """The sandbox ASGI app over ``practice`` (default: 30 clients, seed 7)."""
    app = Starlette(
        routes=[
            Route("/_sandbox/faults", admin_faults, methods=["POST", "DELETE"]),
            Route("/_sandbox/add_clients", admin_add_clients, methods=["POST"]),
            Route("/_sandbox/counts", admin_counts),
            Route("/gmail/v1/users/{user_id}/messages", gmail_list),
            Route("/gmail/v1/users/{user_id}/messages/{msg_id}", gmail_get),
            Route("/v1/forms/{form_id}", forms_get),
            Route("/v1/forms/{form_id}/responses", forms_responses),
            Route("/v1.0/users/{mailbox}/messages", graph_messages),
            Route("/api/data/v9.2/{entity_set}", dataverse_entities),
            Route("/v1/{resource}", stripe_list),
            Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration),
            Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
        ]
    )
    app.state.sandbox = SandboxState(practice or generate())
    return app


@dataclass
class SandboxHandle:
    """A running sandbox: its base URL, live state, and ``stop()``."""

    url: str
    state: SandboxState
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def practice(self) -> Practice:
        return self.state.practice

    @property
    def faults(self) -> Faults:
        return self.state.faults

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(
    practice: Practice | None = None, host: str = "127.0.0.1", port: int = 0
) -> SandboxHandle:
    """Start the sandbox in a daemon thread on ``host:port`` (0 = a free port)."""
    app = create_app(practice)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="lorchestra-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"sandbox failed to start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return SandboxHandle(f"http://{host}:{bound}", app.state.sandbox, server, thread)

"""JSON-RPC 2.0 boundary of storacle: one dispatcher for every transport.

The in-process client and the HTTP server both hand raw request bytes to
``Dispatcher.handle``, so behaviour is identical whichever transport is used.
A malformed request never raises out of the dispatcher; it becomes an error
response.

Error codes (``error.data.classification`` is ``permanent`` or ``transient``):

=======  ==================================================================
-32700   parse error: the body is not JSON (or not UTF-8)
-32600   invalid request: not a JSON-RPC 2.0 object, a batch, or too large
-32601   method not found
-32602   invalid params: wrong types, bad identifiers, rows missing keys, ...
-32603   internal error: a bug or an unexpected storage failure
-32000   storage temporarily unavailable (locked, I/O): retry later
=======  ==================================================================
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lorchestra_dagster.errors import LorchestraError
from lorchestra_dagster.storacle import jsonio
from lorchestra_dagster.storacle.params import describe_invalid
from lorchestra_dagster.storacle.plan import Plan
from lorchestra_dagster.storacle.query import QueryParams
from lorchestra_dagster.storacle.service import StoracleService, rpc_code

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024


class RpcRequest(BaseModel):
    """A JSON-RPC 2.0 request object."""

    model_config = ConfigDict(extra="forbid")

    jsonrpc: Literal["2.0"] = Field(description="Must be exactly '2.0'")
    method: str = Field(description="Method name")
    params: dict[str, Any] | list[Any] | None = Field(default=None, description="Params")
    id: str | int | None = Field(default=None, description="Request id (absent: notification)")


class RpcErrorObject(BaseModel):
    """A JSON-RPC 2.0 error object."""

    model_config = ConfigDict(extra="forbid")

    code: int = Field(description="JSON-RPC error code")
    message: str = Field(description="Human-readable message (no payloads)")
    data: dict[str, Any] = Field(default_factory=dict, description="classification and context")


class ExecuteMeta(BaseModel):
    """``_meta`` of ``storacle.execute_plan``; extra keys are caller context."""

    model_config = ConfigDict(extra="allow")

    dry_run: bool = Field(default=False, description="Validate and count, write nothing")


class ExecutePlanParams(BaseModel):
    """Params of ``storacle.execute_plan``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    meta: ExecuteMeta = Field(default_factory=ExecuteMeta, alias="_meta", description="Options")
    payload: Plan = Field(description="The plan to apply")


class SqlParams(BaseModel):
    """Params of ``storacle.sql``."""

    model_config = ConfigDict(extra="forbid")

    sql: str = Field(description="One read-only SELECT/WITH query")


def error_response(
    req_id: Any,
    code: int,
    message: str,
    classification: str = "permanent",
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete JSON-RPC error response (``data.classification`` always set)."""
    body = {
        "code": code,
        "message": message,
        "data": {**(data or {}), "classification": classification},
    }
    return {"jsonrpc": "2.0", "id": req_id, "error": body}


class Dispatcher:
    """Turns request bytes (or an already-decoded object) into a response dict."""

    def __init__(self, service: StoracleService, *, max_bytes: int = DEFAULT_MAX_REQUEST_BYTES):
        self.service = service
        self.max_bytes = max_bytes

    def handle(self, raw: bytes | str | dict[str, Any] | list[Any]) -> dict[str, Any] | None:
        """Process one request; ``None`` for a notification (a request without id)."""
        try:
            return self._handle(raw)
        except Exception as err:  # noqa: BLE001 - the dispatcher never raises; the error is the response
            # Frames only: an exception's message may quote a request value (PHI).
            frames = "".join(traceback.format_tb(err.__traceback__))
            log.error("storacle dispatcher bug (%s)\n%s", type(err).__name__, frames)
            return error_response(None, INTERNAL_ERROR, f"internal error: {type(err).__name__}")

    def _handle(self, raw: bytes | str | dict[str, Any] | list[Any]) -> dict[str, Any] | None:
        if isinstance(raw, bytes | bytearray | str):
            if len(raw) > self.max_bytes:
                return error_response(
                    None,
                    INVALID_REQUEST,
                    f"request too large: {len(raw)} bytes > limit {self.max_bytes}; "
                    "split the plan into smaller batches",
                    data={"limit": self.max_bytes},
                )
            try:
                obj = jsonio.loads(raw)
            except (ValueError, UnicodeDecodeError) as err:
                return error_response(None, PARSE_ERROR, f"parse error: {err}")
        else:
            obj = raw
        if isinstance(obj, list):
            return error_response(
                None, INVALID_REQUEST, "batch requests are not supported; send one request per call"
            )
        if not isinstance(obj, dict):
            return error_response(None, INVALID_REQUEST, "invalid request: expected a JSON object")
        req_id = obj.get("id") if isinstance(obj.get("id"), str | int) else None
        try:
            req = RpcRequest.model_validate(obj)
        except ValidationError as err:
            detail = describe_invalid(err)
            return error_response(req_id, INVALID_REQUEST, f"invalid request: {detail}")
        response = self._call(req)
        return None if "id" not in obj else response

    def _call(self, req: RpcRequest) -> dict[str, Any]:
        if req.method not in METHODS:
            return error_response(
                req.id,
                METHOD_NOT_FOUND,
                f"method not found: {req.method!r}",
                data={"methods": list(METHODS)},
            )
        if req.params is not None and not isinstance(req.params, dict):
            return error_response(req.id, INVALID_PARAMS, "params must be an object")
        params = req.params or {}
        try:
            result = ROUTES[req.method](self.service, params)
        except ValidationError as err:
            return error_response(
                req.id, INVALID_PARAMS, f"invalid params for {req.method}: {describe_invalid(err)}"
            )
        except LorchestraError as err:
            data = {
                k: v for k, v in err.to_dict().items() if k not in ("classification", "message")
            }
            return error_response(req.id, rpc_code(err), err.message, err.classification, data)
        return {"jsonrpc": "2.0", "id": req.id, "result": result}


def _execute_plan(service: StoracleService, params: dict[str, Any]) -> Any:
    p = ExecutePlanParams.model_validate(params)
    return service.execute_plan(p.payload, dry_run=p.meta.dry_run)


#: The wire methods and what answers each (params already checked to be an object). Each
#: validates its params here, once, and hands the model on: the service and backends
#: never parse a request again.
ROUTES: dict[str, Callable[[StoracleService, dict[str, Any]], Any]] = {
    "storacle.execute_plan": _execute_plan,
    "storacle.query": lambda service, params: {
        "items": service.query(QueryParams.model_validate(params))
    },
    "storacle.sql": lambda service, params: {
        "items": service.sql(SqlParams.model_validate(params).sql)
    },
    "storacle.health": lambda service, _params: service.health(),
}
METHODS = tuple(ROUTES)

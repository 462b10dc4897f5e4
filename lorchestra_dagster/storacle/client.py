"""The storacle client: one API, two transports, one JSON-RPC envelope.

Both transports hand the same JSON-RPC request object to the same dispatcher
(``rpc.Dispatcher``), so a plan is checked by the same rules in a test, a CLI
run and against a remote server. ``HttpTransport`` encodes it to JSON bytes;
``InProcessTransport`` passes the object itself: a 5,000-row plan serialised
to JSON and parsed back cost more memory (the bytes, then a second copy of
every row) and time than the DuckDB write it carried, for no check the
dispatcher does not make anyway. The plan is a validated ``Plan`` model from
``plan.build`` on and is not validated again. ``make_client(settings)`` picks
HTTP when ``STORACLE_URL`` is set.
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol

import httpx

from lorchestra_dagster.errors import PermanentError, StoracleError, TransientError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle import jsonio
from lorchestra_dagster.storacle.auth import load_token
from lorchestra_dagster.storacle.plan import Plan
from lorchestra_dagster.storacle.rpc import Dispatcher
from lorchestra_dagster.storacle.service import StoracleService, get_service

_ids = itertools.count(1)


def plan_envelope(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-ready dict; rows are passed through, not copied by pydantic
    (``model_dump`` on a 5,000-row plan costs more than the DuckDB write)."""
    return {
        "plan_version": plan.plan_version,
        "plan_id": plan.plan_id,
        "jsonrpc": plan.jsonrpc,
        "meta": plan.meta.model_dump(),
        "ops": [
            {"jsonrpc": op.jsonrpc, "id": op.id, "method": op.method, "params": op.params}
            for op in plan.ops
        ],
    }


class Transport(Protocol):
    """Sends one JSON-RPC request object and returns the response object."""

    def send(self, request: dict[str, Any]) -> dict[str, Any]: ...

    def prepare(self) -> None: ...

    def close(self) -> None: ...


class InProcessTransport:
    """Calls the dispatcher in this process with the request object itself.

    No bytes exist, so the HTTP server's request-size bound (which protects a
    server from what it has not read yet) does not apply; the warehouse's own
    limits (rows, bytes, memory) do. The response shares the backend's result
    objects: nothing downstream mutates them.
    """

    def __init__(self, service: StoracleService) -> None:
        self.dispatcher = Dispatcher(service)

    def send(self, request: dict[str, Any]) -> dict[str, Any]:
        response = self.dispatcher.handle(request)
        if response is None:
            raise StoracleError("storacle returned no response (notification?)")
        return response

    def prepare(self) -> None:
        self.dispatcher.service.prepare()

    def close(self) -> None:
        return None


class HttpTransport:
    """POSTs to ``{url}/rpc``; network trouble is transient, 4xx (but 408/429) permanent."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s), headers=headers
        )

    def send(self, request: dict[str, Any]) -> dict[str, Any]:
        params = request.get("params") or {}
        if isinstance(params.get("payload"), Plan):  # rows by reference, not via pydantic
            request = {**request, "params": {**params, "payload": plan_envelope(params["payload"])}}
        body = jsonio.dumps(request)
        try:
            resp = self._http.post(f"{self.url}/rpc", content=body)
        except httpx.TimeoutException as err:
            raise TransientError(f"storacle at {self.url} timed out: {type(err).__name__}") from err
        except httpx.TransportError as err:
            raise TransientError(
                f"storacle at {self.url} is unreachable ({type(err).__name__}); "
                "is `lorchestra storacle serve` running?",
                code="storacle_unreachable",
            ) from err
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and ("result" in payload or "error" in payload):
            return payload
        kind = (
            TransientError
            if resp.status_code >= 500 or resp.status_code in (408, 429)
            else PermanentError
        )
        raise kind(f"storacle at {self.url} answered HTTP {resp.status_code} without JSON-RPC")

    def prepare(self) -> None:
        return None  # the server's process holds the warehouse

    def close(self) -> None:
        self._http.close()


class StoracleClient:
    """Typed calls over a transport; every error surfaces as ``StoracleError``."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """One JSON-RPC call; the ``result`` or a ``StoracleError`` carrying the error object."""
        req_id = next(_ids)
        request = {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params}
        response = self.transport.send(request)
        if "error" in response and response["error"] is not None:
            err = response["error"]
            data = dict(err.get("data") or {})
            raise StoracleError(
                f"{method}: {err.get('message')}", rpc_code=int(err.get("code", -32603)), data=data
            )
        return response.get("result")

    def execute_plan(self, plan: Plan | dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Apply a plan; raises ``StoracleError`` naming the failing op when any op errors."""
        params = {"_meta": {"dry_run": dry_run}, "payload": plan}
        result: dict[str, Any] = self.call("storacle.execute_plan", params)
        errors = [r for r in result.get("results", []) if r.get("error")]
        if errors:
            root = next(
                (e for e in errors if not e["error"].get("data", {}).get("reason")), errors[0]
            )
            err, data = root["error"], dict(root["error"].get("data") or {})
            table = ".".join(str(x) for x in (data.get("dataset"), data.get("table")) if x)
            target = table or data.get("path") or "?"
            message = (
                f"plan {result.get('plan_id', '')[:12]} failed: op {root['id']} "
                f"({data.get('method', '?')} {target}): {err.get('message')}"
            )
            if len(errors) > 1:
                message += f" ({len(errors) - 1} other op(s) rolled back or not applied)"
            data["results"] = result["results"]
            raise StoracleError(
                message,
                rpc_code=int(err.get("code", -32603)),
                data=data,
                plan_id=result.get("plan_id"),
            )
        return result

    def query(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows of ``storacle.query`` params."""
        items: list[dict[str, Any]] = self.call("storacle.query", params)["items"]
        return items

    def sql(self, select: str) -> list[dict[str, Any]]:
        """Rows of one read-only SELECT/WITH."""
        items: list[dict[str, Any]] = self.call("storacle.sql", {"sql": select})["items"]
        return items

    def health(self) -> dict[str, Any]:
        status: dict[str, Any] = self.call("storacle.health", {})
        return status

    def prepare(self) -> None:
        """Have the warehouse loaded before a run's first job (in process: its backend
        and libraries; over HTTP nothing: the server's process holds them)."""
        self.transport.prepare()

    def close(self) -> None:
        self.transport.close()


def make_client(settings: Settings) -> StoracleClient:
    """HTTP client when ``settings.storacle_url`` is set, else the in-process one.

    The HTTP client sends the home's bearer token (``auth.load_token``).

    The in-process client shares the process-wide service for the home, so every
    client in a process uses one warehouse connection.
    """
    if settings.storacle_url:
        token = load_token(settings.home)
        return StoracleClient(HttpTransport(settings.storacle_url, token=token))
    return StoracleClient(InProcessTransport(get_service(settings)))

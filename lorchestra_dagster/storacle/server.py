"""The storacle HTTP server: ``POST /rpc`` (JSON-RPC 2.0) and ``GET /health``.

The server owns the warehouse file; every other process (runs, the Dagster
webserver, the CLI) reaches it over HTTP by setting ``STORACLE_URL``. Request
bodies are bounded: a body over the limit is refused with HTTP 413 and a
JSON-RPC error before it is read into memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle import jsonio
from lorchestra_dagster.storacle.rpc import (
    DEFAULT_MAX_REQUEST_BYTES,
    INVALID_REQUEST,
    Dispatcher,
    error_response,
)
from lorchestra_dagster.storacle.service import StoracleService, get_service

log = logging.getLogger(__name__)


def _json(obj: Any, status: int = 200) -> Response:
    body = jsonio.dumps(obj)
    return Response(body, status_code=status, media_type="application/json")


def create_app(
    settings: Settings | None = None,
    *,
    service: StoracleService | None = None,
    max_bytes: int | None = None,
) -> Starlette:
    """The ASGI app over a service (the process-wide one for ``settings`` by default).

    ``max_bytes`` defaults to env ``LORCHESTRA_STORACLE_MAX_BYTES`` or 64 MiB.
    """
    if max_bytes is None:
        max_bytes = int(
            os.environ.get("LORCHESTRA_STORACLE_MAX_BYTES") or DEFAULT_MAX_REQUEST_BYTES
        )
    if service is None:
        service = get_service(settings or Settings.from_env())
    dispatcher = Dispatcher(service, max_bytes=max_bytes)

    def too_large(size: int | str) -> Response:
        return _json(
            error_response(
                None,
                INVALID_REQUEST,
                f"request too large: {size} bytes > limit {max_bytes}; split the plan",
                data={"limit": max_bytes},
            ),
            413,
        )

    async def rpc(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            return too_large(int(declared))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                return too_large(f"more than {max_bytes}")
            chunks.append(chunk)
        response = await run_in_threadpool(dispatcher.handle, b"".join(chunks))
        if response is None:
            return Response(status_code=204)
        return _json(response)

    async def health(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(service.health))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        service.close()  # checkpoint and release the warehouse file on shutdown

    return Starlette(
        routes=[Route("/rpc", rpc, methods=["POST"]), Route("/health", health, methods=["GET"])],
        lifespan=lifespan,
    )


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    log.info("storacle serving %s on http://%s:%d", settings.home, host, port)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)

"""The storacle HTTP server: ``POST /rpc`` (JSON-RPC 2.0) and ``GET /health``.

The server owns the warehouse file; every other process (runs, the Dagster
webserver, the CLI) reaches it over HTTP by setting ``STORACLE_URL``. Every
request passes ``guard`` first (``storacle.auth``: bearer token, loopback or
allowed ``Host``/``Origin``, JSON bodies only), then the body bound: a body over
the limit is refused with HTTP 413 and a JSON-RPC error before it is read.
Nothing of a request (headers, body, values) is ever logged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle import auth, jsonio
from lorchestra_dagster.storacle.rpc import (
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
    token: str | None = None,
) -> Starlette:
    """The ASGI app over a service (the process-wide one for ``settings`` by default).

    ``max_bytes`` defaults to ``Settings.storacle_max_bytes`` (64 MiB);
    ``token`` to ``auth.load_token`` of the service's home.
    """
    settings = settings or Settings.from_env()
    if max_bytes is None:
        max_bytes = settings.storacle_max_bytes
    if service is None:
        service = get_service(settings)
    dispatcher = Dispatcher(service, max_bytes=max_bytes)
    expected = token or auth.load_token(service.settings.home)
    hosts = auth.allowed_hosts()

    def refuse(status: int, code: int, message: str) -> Response:
        return _json(error_response(None, code, message), status)

    def guard(request: Request, *, body: bool) -> Response | None:
        """The refusal for a request that may not reach the dispatcher, else None."""
        host = auth.host_name(request.headers.get("host", ""))
        if host not in hosts:
            return refuse(
                403,
                auth.FORBIDDEN_ORIGIN,
                f"Host {host or '(none)'!r} is not loopback or in {auth.ALLOWED_HOSTS_ENV}",
            )
        origin = request.headers.get("origin")
        if origin is not None and auth.origin_host(origin) not in hosts:
            return refuse(
                403,
                auth.FORBIDDEN_ORIGIN,
                f"Origin is not loopback or in {auth.ALLOWED_HOSTS_ENV}; "
                "browser pages may not call storacle",
            )
        if not auth.check_token(auth.bearer(request.headers.get("authorization")), expected):
            return refuse(
                401,
                auth.UNAUTHORIZED,
                f"missing or wrong bearer token (see {auth.TOKEN_ENV} or "
                f"$LORCHESTRA_HOME/{auth.TOKEN_FILE})",
            )
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if body and ctype != "application/json":
            return refuse(415, auth.UNSUPPORTED_MEDIA, "the body must be application/json")
        return None

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
        refused = guard(request, body=True)
        if refused is not None:
            return refused
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
        refused = guard(request, body=False)
        if refused is not None:
            return refused
        return JSONResponse(await run_in_threadpool(service.health))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        service.close()  # checkpoint and release the warehouse file on shutdown

    return Starlette(
        routes=[Route("/rpc", rpc, methods=["POST"]), Route("/health", health, methods=["GET"])],
        lifespan=lifespan,
    )


def serve(
    settings: Settings, *, host: str = "127.0.0.1", port: int = 8765, allow_remote: bool = False
) -> None:
    """Run the server in the foreground until interrupted.

    Raises ``PermanentError`` (before binding) for a non-loopback ``host``
    without ``allow_remote`` and an explicit token.
    """
    import uvicorn

    auth.check_bind(host, allow_remote=allow_remote)
    log.info("storacle serving %s on http://%s:%d", settings.home, host, port)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)

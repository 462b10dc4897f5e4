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

import threading
import time
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lorchestra_dagster.sources.sandbox.faults import FaultRule, Faults
from lorchestra_dagster.sources.sandbox.generate import Practice, generate
from lorchestra_dagster.sources.sandbox.routes_google import (
    forms_get,
    forms_responses,
    gmail_get,
    gmail_list,
)
from lorchestra_dagster.sources.sandbox.routes_microsoft import (
    dataverse_entities,
    graph_messages,
    openid_configuration,
    token,
)
from lorchestra_dagster.sources.sandbox.routes_stripe import stripe_list
from lorchestra_dagster.sources.sandbox.state import SANDBOX_ENV, SandboxState, sandbox_env

__all__ = [
    "SANDBOX_ENV",
    "SandboxHandle",
    "SandboxState",
    "create_app",
    "sandbox_env",
    "serve_in_thread",
]


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
    practice: Practice | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    latency_s: float = 0.0,
) -> SandboxHandle:
    """Start the sandbox in a daemon thread on ``host:port`` (0 = a free port).

    ``latency_s`` delays every data request (pages and single messages alike), as a
    vendor across the internet would; the handle's ``state.latency_s`` changes it live.
    """
    app = create_app(practice)
    app.state.sandbox.latency_s = latency_s
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

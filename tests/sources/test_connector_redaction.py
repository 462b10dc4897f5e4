"""No vendor text reaches an error: every connector against a hostile loopback vendor.

A vendor's error body often echoes what it was sent or holds (a customer's name in a
Stripe 400, a message subject in a Gmail 404). This vendor answers every data request
with a body that carries a planted marker, for each status class the connectors map
(refused, server error, not JSON, wrong shape) and on the Microsoft token endpoint. The
marker must appear in neither the error message, its repr, the formatted traceback with
its whole cause chain, nor the redacted message the engine records.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sources_kit import env_for, run_injest, write_catalog

from lorchestra_dagster.errors import LorchestraError, safe_message

pytestmark = pytest.mark.e2e

MARK = "PLANTED-Maria-Okafor-1987-04-12"
STREAMS = {
    "gmail": "gmail_acct1",
    "google_forms": "forms_followup",
    "exchange": "exchange_office",
    "dataverse": "dataverse_sessions",
    "stripe": "stripe_invoices",
}
# (status, content type, body) of every data request, one per failure class.
ANSWERS = {
    "refused_400": (400, "application/json", {"error": {"message": f"No such customer: {MARK}"}}),
    "refused_404": (404, "application/json", {"error": {"message": f"{MARK} not found"}}),
    "server_500": (500, "application/json", {"error": {"message": f"crash while reading {MARK}"}}),
    "not_json": (200, "text/html", f"<html><body>{MARK}</body></html>"),
    "wrong_shape": (200, "application/json", [MARK, {"name": MARK}]),
}


class HostileVendor(BaseHTTPRequestHandler):
    """Answers like a vendor that echoes private data in every error it gives."""

    answer: tuple[int, str, object] = ANSWERS["refused_400"]
    token_answer: tuple[int, object] | None = None

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        return None

    def _send(self, status: int, ctype: str, body: object) -> None:
        raw = body if isinstance(body, str) else json.dumps(body)
        data = raw.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # http.server's naming
        if self.path.endswith("/.well-known/openid-configuration"):
            tenant = self.path.strip("/").split("/")[0]
            base = f"https://{self.headers['Host']}/{tenant}"
            self._send(
                200,
                "application/json",
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "issuer": f"{base}/v2.0",
                },
            )
            return
        self._send(*self.answer)

    def do_POST(self) -> None:  # http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if "/oauth2/" in self.path:
            if self.token_answer is not None:
                status, body = self.token_answer
                self._send(status, "application/json", body)
                return
            token = {"token_type": "Bearer", "expires_in": 3599, "access_token": "hostile-at"}
            self._send(200, "application/json", token)
            return
        self._send(*self.answer)


@pytest.fixture
def vendor() -> Iterator[tuple[str, type[HostileVendor]]]:
    handler = type("Vendor", (HostileVendor,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _assert_no_marker(exc: BaseException) -> None:
    texts = {
        "str": str(exc),
        "repr": repr(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "recorded": safe_message(exc),
    }
    leaked = sorted(name for name, text in texts.items() if MARK in text)
    assert not leaked, f"vendor text leaked into: {leaked}"


def _catalog(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "catalog", max_attempts=2, timeout_s=5)


@pytest.mark.parametrize("answer", sorted(ANSWERS))
@pytest.mark.parametrize("connector", sorted(STREAMS))
def test_vendor_error_bodies_never_reach_the_error(vendor, tmp_path, connector, answer):
    url, handler = vendor
    handler.answer = ANSWERS[answer]
    with pytest.raises(LorchestraError) as info:
        run_injest(_catalog(tmp_path), STREAMS[connector], env_for(url=url))
    # The error still says which stream failed: redaction must not make it useless.
    assert STREAMS[connector] in str(info.value)
    _assert_no_marker(info.value)


@pytest.mark.parametrize("status", [400, 401])
@pytest.mark.parametrize("connector", ["exchange", "dataverse"])
def test_token_endpoint_errors_never_reach_the_error(vendor, tmp_path, connector, status):
    url, handler = vendor
    handler.token_answer = (
        status,
        {"error": "invalid_client", "error_description": f"AADSTS7000215: {MARK}"},
    )
    with pytest.raises(LorchestraError) as info:
        run_injest(_catalog(tmp_path), STREAMS[connector], env_for(url=url))
    assert STREAMS[connector] in str(info.value)
    _assert_no_marker(info.value)

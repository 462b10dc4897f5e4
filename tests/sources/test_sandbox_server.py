"""The sandbox's wire formats, auth, admin API and CLI."""

from __future__ import annotations

import copy

import httpx
import pytest
from typer.testing import CliRunner

from lorchestra_dagster.cli import app
from lorchestra_dagster.sources.sandbox.server import SANDBOX_ENV, serve_in_thread

pytestmark = pytest.mark.e2e


def _token(url: str) -> str:
    return httpx.post(
        f"{url}/tenant/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "c",
            "client_secret": SANDBOX_ENV["EXCHANGE_CLIENT_SECRET"],
            "scope": "s",
        },
    ).json()["access_token"]


def test_dataverse_strips_annotations_unless_asked(sandbox):
    headers = {"Authorization": f"Bearer {_token(sandbox.url)}"}
    plain = httpx.get(f"{sandbox.url}/api/data/v9.2/contacts", headers=headers).json()
    assert not [k for k in plain["value"][0] if "@OData" in k]
    headers["Prefer"] = 'odata.include-annotations="*",odata.maxpagesize=3'
    rich = httpx.get(f"{sandbox.url}/api/data/v9.2/contacts", headers=headers).json()
    assert len(rich["value"]) == 3 and "@odata.nextLink" in rich
    assert [k for k in rich["value"][0] if "@OData.Community" in k]


def test_vendor_error_bodies(sandbox):
    r = httpx.get(f"{sandbox.url}/v1/customers", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.get(f"{sandbox.url}/gmail/v1/users/me/messages")
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    r = httpx.get(f"{sandbox.url}/v1.0/users/x/messages")
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"
    bad = httpx.post(
        f"{sandbox.url}/t/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_secret": "wrong"},
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    headers = {"Authorization": f"Bearer {_token(sandbox.url)}"}
    r = httpx.get(
        f"{sandbox.url}/api/data/v9.2/contacts",
        params={"$filter": "fullname eq 1"},
        headers=headers,
    )
    assert r.status_code == 400


def test_admin_api_arms_faults_and_adds_clients(sandbox):
    before = httpx.get(f"{sandbox.url}/_sandbox/counts").json()
    added = httpx.post(f"{sandbox.url}/_sandbox/add_clients", json={"n": 1}).json()
    after = httpx.get(f"{sandbox.url}/_sandbox/counts").json()
    assert after["dataverse_contacts"] == before["dataverse_contacts"] + 1
    assert added["dataverse_contacts"] == 1
    httpx.post(
        f"{sandbox.url}/_sandbox/faults",
        json={"kind": "rate_limit", "count": 1, "path_contains": "/v1/refunds", "retry_after": 7},
    )
    headers = {"Authorization": f"Bearer {SANDBOX_ENV['STRIPE_API_KEY']}"}
    r = httpx.get(f"{sandbox.url}/v1/refunds", headers=headers)
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert httpx.get(f"{sandbox.url}/v1/refunds", headers=headers).status_code == 200


def test_gmail_account_is_chosen_by_token(sandbox):
    counts = {}
    for acct in ("acct1", "acct2"):
        headers = {"Authorization": f"Bearer {SANDBOX_ENV[f'GMAIL_{acct.upper()}_TOKEN']}"}
        body = httpx.get(
            f"{sandbox.url}/gmail/v1/users/me/messages", params={"maxResults": 500}, headers=headers
        ).json()
        counts[acct] = body["resultSizeEstimate"]
    assert counts == {a: len(sandbox.practice.streams[f"gmail_{a}"]) for a in counts}


def test_latency_knob_keeps_the_answers(base_practice):
    # The bench's P6 knob: the same bodies with a per-request delay (no time is asserted).
    headers = {"Authorization": f"Bearer {SANDBOX_ENV['GMAIL_ACCT1_TOKEN']}"}
    path = "/gmail/v1/users/me/messages"
    with serve_in_thread(copy.deepcopy(base_practice)) as plain:
        expected = httpx.get(f"{plain.url}{path}", headers=headers).json()
    with serve_in_thread(copy.deepcopy(base_practice), latency_s=0.01) as slow:
        assert slow.state.latency_s == 0.01
        assert httpx.get(f"{slow.url}{path}", headers=headers).json() == expected
        slow.state.latency_s = 0.0
        assert httpx.get(f"{slow.url}{path}", headers=headers).json() == expected
        assert slow.state.requests == 2


def test_cli_generate_and_env():
    runner = CliRunner()
    out = runner.invoke(app, ["sandbox", "generate", "--clients", "3", "--seed", "2"])
    assert out.exit_code == 0, out.output
    assert '"dataverse_contacts": 3' in out.output
    env = runner.invoke(app, ["sandbox", "env", "--url", "http://127.0.0.1:9"])
    assert "export LORCHESTRA_SANDBOX_URL=http://127.0.0.1:9" in env.output


def test_cli_serve_runs_a_real_server_process():
    import subprocess
    import sys
    import time
    from pathlib import Path

    from kit import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "lorchestra"),
            "sandbox",
            "serve",
            "--port",
            str(port),
            "--clients",
            "3",
            "--seed",
            "4",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                counts = httpx.get(f"http://127.0.0.1:{port}/_sandbox/counts", timeout=1).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "sandbox did not start"
                time.sleep(0.2)
        assert counts["dataverse_contacts"] == 3
    finally:
        proc.terminate()
        proc.wait(timeout=20)

"""``lorchestra sandbox up|status|env|down``: a background sandbox a person can find again."""

from __future__ import annotations

import os

import httpx
import pytest
from typer.testing import CliRunner

from lorchestra_dagster.cli import app
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.sources.sandbox import daemon

pytestmark = pytest.mark.e2e


def _cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_up_env_status_down_round_trip():
    settings = Settings.from_env()
    up = _cli("sandbox", "up", "--port", "0", "--clients", "2")
    try:
        assert up.exit_code == 0, up.output
        assert 'eval "$(.venv/bin/lorchestra sandbox env)"' in up.output
        info = daemon.read_state(settings)
        assert info is not None and info.clients == 2
        assert oct(os.stat(daemon.state_path(settings)).st_mode & 0o777) == "0o600"
        counts = httpx.get(f"{info.url}/_sandbox/counts", timeout=5).json()
        assert counts["stripe_customers"] == 2
        # A second `up` finds the running one instead of starting another.
        again = _cli("sandbox", "up", "--port", "0")
        assert "already running" in again.output and str(info.pid) in again.output
        env = _cli("sandbox", "env")
        assert env.exit_code == 0
        lines = env.output.splitlines()
        assert lines[0] == f"export LORCHESTRA_SANDBOX_URL={info.url}"
        assert "export STRIPE_API_KEY=sk_test_sandbox" in lines
        assert _cli("sandbox", "status").exit_code == 0
    finally:
        down = _cli("sandbox", "down")
    assert "stopped" in down.output
    assert daemon.read_state(settings) is None
    assert _cli("sandbox", "status").exit_code == 1
    missing = _cli("sandbox", "env")
    assert missing.exit_code == 1 and "sandbox up" in missing.output
    quiet = _cli("sandbox", "env", "--if-running")
    assert quiet.exit_code == 0 and quiet.output == ""


def test_stale_state_file_is_forgotten():
    settings = Settings.from_env()
    # A pid that is not a sandbox (this test's own interpreter runs pytest, not `sandbox`).
    daemon.write_state(settings, daemon.SandboxInfo(1, "http://127.0.0.1:9", 1, 7))
    assert daemon.running(settings) is None
    assert not daemon.state_path(settings).exists()
    assert "no sandbox running" in _cli("sandbox", "down").output


def test_taken_port_falls_back_to_a_free_one():
    sock = daemon.bind_socket("127.0.0.1", 0)
    taken = sock.getsockname()[1]
    settings = Settings.from_env()
    try:
        info, started = daemon.start(settings, port=taken, clients=1)
        assert started and not info.url.endswith(f":{taken}")
    finally:
        sock.close()
        daemon.stop(settings)

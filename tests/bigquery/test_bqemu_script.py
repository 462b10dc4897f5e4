"""scripts/bqemu.sh: the commands the Makefile, CI and people use."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest
from kit import free_port

from lorchestra_dagster.storacle.backends import bigquery_emulator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bqemu.sh"


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_setup_is_idempotent_and_start_status_stop_round_trip(tmp_path: Path) -> None:
    bigquery_emulator.setup()  # first call may install; the second must be a quiet no-op
    env = {
        **os.environ,
        "BQEMU_DATA_DIR": str(tmp_path / "data"),
        "BQEMU_STATE_DIR": str(tmp_path / "state"),
    }
    again = run("setup", env=env)
    assert again.returncode == 0 and again.stdout == "" and again.stderr == ""
    port = free_port()
    started = run("start", str(port), env=env)
    try:
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        assert url == f"http://127.0.0.1:{port}"
        listing = httpx.get(f"{url}/bigquery/v2/projects/local/datasets", timeout=5)
        assert listing.status_code == 200
        assert run("status", env=env).stdout.strip() == url
        assert run("start", str(port), env=env).stdout.strip() == url  # already running
    finally:
        stopped = run("stop", env=env)
    assert stopped.returncode == 0
    assert run("status", env=env).returncode == 1
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/bigquery/v2/projects/local/datasets", timeout=2)


def test_usage_error_without_command() -> None:
    done = run(env=dict(os.environ))
    assert done.returncode == 2 and "setup" in done.stderr

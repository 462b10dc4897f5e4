"""Small things a new user meets first: where the CLI looks, and a clean Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest
from kit import REPO, free_port
from typer.testing import CliRunner

from lorchestra_dagster.cli import app


@pytest.mark.unit
def test_jobs_list_names_home_and_catalog(monkeypatch):
    monkeypatch.setenv("LORCHESTRA_JOBS_DIR", str(REPO / "jobs"))
    res = CliRunner().invoke(app, ["jobs", "list"])
    assert res.exit_code == 0
    assert f"catalog {REPO / 'jobs'}" in res.stderr
    assert f"home {os.environ['LORCHESTRA_HOME']}" in res.stderr
    assert "ingest_stripe_customers" in res.stdout and "ingest_stripe_payment_intents" in res.stdout


@pytest.mark.unit
def test_jobs_list_of_an_empty_catalog_explains_and_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LORCHESTRA_JOBS_DIR", raising=False)
    res = CliRunner().invoke(app, ["jobs", "list"])
    assert res.exit_code == 1
    assert f"no jobs in catalog {tmp_path / 'jobs'}" in res.stderr
    assert "LORCHESTRA_JOBS_DIR" in res.stderr


@pytest.mark.e2e
def test_ctrl_c_on_storacle_serve_exits_cleanly(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [str(REPO / ".venv/bin/lorchestra"), "storacle", "serve", "--port", str(port)],
        env={**os.environ, "LORCHESTRA_HOME": str(tmp_path / "home")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (0, 130)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "storacle: stopped" in err

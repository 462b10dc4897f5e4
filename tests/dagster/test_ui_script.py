"""``make ui`` (scripts/ui.sh): webserver and daemon, the home's sandbox, a clean Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest
from kit import REPO, free_port

from lorchestra_dagster.settings import Settings
from lorchestra_dagster.sources.sandbox import daemon

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # a webserver and a daemon: ~30-60 s


def test_ui_uses_the_running_sandbox_and_stops_on_ctrl_c(tmp_path):
    home = tmp_path / "home"
    settings = Settings.from_env(home=home, jobs_dir=REPO / "jobs")
    info, _ = daemon.start(settings, port=0, clients=1)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("LORCHESTRA_SANDBOX_URL",)}
    env.update(LORCHESTRA_HOME=str(home), DAGSTER_PORT=str(port))
    log = tmp_path / "ui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "scripts/ui.sh"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        deadline = time.monotonic() + 240
        while "lorchestra UI:" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        assert httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=5).status_code == 200
        text = log.read_text()
        assert f"sources point at the sandbox on {info.url}" in text
        assert "dg dev" not in text and "superseded" not in text.lower()
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends the script
        proc.wait(timeout=120)
        time.sleep(1)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        daemon.stop(settings)

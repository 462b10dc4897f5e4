"""The web UI as a person uses it: `dagster dev`, headless Chromium, a materialization.

Starts ``dagster dev`` (webserver + daemon) on 127.0.0.1 with the shipped
catalog and a temp home, dismisses the welcome dialog through GraphQL,
checks that the five stage groups list their assets, clicks "Materialize" on
the drop-folder ingest asset, waits for the run to succeed, and saves
screenshots under ``tests/artifacts/`` (``LORCHESTRA_UPDATE_DOC_SCREENSHOT=1``
also refreshes ``docs/img/ui-assets.png``).

Chromium is Debian's package (``scripts/ensure_chromium.sh``), driven by
Playwright with ``executable_path``; no browser is ever downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dagster_helpers import BIN, JOBS, REPO, free_port, subprocess_env

from lorchestra_dagster import naming
from lorchestra_dagster.spec.catalog import load_catalog

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "tests" / "artifacts"
RUNS_QUERY = """
query Runs($job: String!) {
  runsOrError(filter: {pipelineName: $job}) {
    ... on Runs { results { runId status } }
  }
}
"""


def _ensure_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        subprocess.run(["bash", str(REPO / "scripts" / "ensure_chromium.sh")], check=True)
    assert os.path.exists(CHROMIUM), "Debian's chromium is required for the browser test"


def _default_sigint() -> None:
    """dagster dev maps SIGTERM onto SIGINT's handler: make sure SIGINT is not ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def dagster_ui(tmp_path: Path, _isolated_home: Path) -> Iterator[str]:
    """`dagster dev` on a free loopback port; the whole process group is stopped after."""
    dagster_home = _isolated_home / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    port = free_port()
    env = subprocess_env(
        {
            "DAGSTER_HOME": str(dagster_home),
            "LORCHESTRA_HOME": str(_isolated_home),
            "LORCHESTRA_JOBS_DIR": str(JOBS),
            "LORCHESTRA_DUCKDB_SHORT_LOCK": "1",
        }
    )
    log = (tmp_path / "dagster-dev.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (tmp_path / "dagster-dev.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass  # not listening yet
            assert time.monotonic() < deadline, "dagster dev did not answer within 180 s"
            time.sleep(1)
        nux = httpx.post(f"{url}/graphql", json={"query": "mutation { setNuxSeen }"}, timeout=30)
        assert nux.json()["data"]["setNuxSeen"] is True
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


def _wait_for_text(page, texts: list[str], timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        body = page.inner_text("body")
        missing = [t for t in texts if t not in body]
        if not missing:
            return body
        assert time.monotonic() < deadline, f"not shown: {missing}"
        time.sleep(1)


def _runs(url: str) -> list[dict]:
    resp = httpx.post(
        f"{url}/graphql",
        json={"query": RUNS_QUERY, "variables": {"job": "__ASSET_JOB"}},
        timeout=30,
    )
    return resp.json()["data"]["runsOrError"]["results"]


def test_asset_graph_and_materialize_from_the_ui(dagster_ui: str) -> None:
    from playwright.sync_api import sync_playwright

    _ensure_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    catalog = load_catalog(JOBS)
    url = dagster_ui
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{url}/asset-groups", wait_until="domcontentloaded", timeout=120_000)
            _wait_for_text(page, ["Global asset lineage", *naming.STAGES], timeout_s=120)
            page.screenshot(path=str(ARTIFACTS / "ui-lineage.png"))

            for stage in naming.STAGES:
                expected = sorted(j.job_id for j in catalog.jobs_in_stage(stage))
                assert expected, stage
                page.goto(
                    f"{url}/locations/lorchestra/asset-groups/{stage}/list",
                    wait_until="domcontentloaded",
                )
                _wait_for_text(page, expected, timeout_s=90)

            page.goto(f"{url}/assets/ingest/ingest_drop_folder", wait_until="domcontentloaded")
            _wait_for_text(page, ["ingest_drop_folder", "Never materialized"], timeout_s=90)
            button = page.locator("button").filter(has_text=re.compile(r"^Materialize$"))
            button.first.click()
            _wait_for_text(page, ["Launched run"], timeout_s=60)

            deadline = time.monotonic() + 420
            status = None
            while status != "SUCCESS":
                runs = _runs(url)
                status = runs[0]["status"] if runs else None
                assert status not in ("FAILURE", "CANCELED"), runs
                assert time.monotonic() < deadline, f"run did not succeed in time: {runs}"
                time.sleep(2)
            run_id = runs[0]["runId"]

            page.goto(f"{url}/runs/{run_id}", wait_until="domcontentloaded")
            _wait_for_text(page, ["Success"], timeout_s=90)
            page.screenshot(path=str(ARTIFACTS / "ui-run.png"))

            page.goto(f"{url}/assets/ingest/ingest_drop_folder", wait_until="domcontentloaded")
            body = _wait_for_text(page, ["Latest materialization", "ingest_drop_folder"])
            deadline = time.monotonic() + 60
            while "Never materialized" in body:
                assert time.monotonic() < deadline, "the asset page still says never materialized"
                time.sleep(1)
                body = page.inner_text("body")
            page.screenshot(path=str(ARTIFACTS / "ui-asset-detail.png"))

            page.goto(f"{url}/asset-groups", wait_until="domcontentloaded")
            _wait_for_text(page, ["Global asset lineage", *naming.STAGES])
            time.sleep(2)  # let the graph settle before the picture
            shot = ARTIFACTS / "ui-assets.png"
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("LORCHESTRA_UPDATE_DOC_SCREENSHOT") == "1":
        (REPO / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTIFACTS / "ui-asset-detail.png", REPO / "docs" / "img" / "ui-assets.png")

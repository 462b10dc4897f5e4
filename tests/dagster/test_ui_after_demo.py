"""The UI a person opens after ``make demo``: the demo's run on the timeline, every asset fresh.

What the README promises, followed as written: ``make demo`` (3 clients) into a
fresh home, then ``scripts/ui.sh`` (what ``make ui`` runs: the webserver and
the daemon on 127.0.0.1, the demo's sandbox picked up), then Debian's Chromium
through Playwright. The checks read the DOM, never pixels:

* the Overview timeline has one ``daily_all`` row whose one bar opens the
  demo's run (the id the demo printed);
* the Runs page lists that run, succeeded, tagged ``lorchestra/launched_by: demo``;
* each stage's asset list shows every job of ``daily_all`` as Materialized,
  none "Never materialized" or "Unsynced" (and Dagster's own staleness, read
  over GraphQL, is FRESH with the demo's run as the latest materialization);
* before the UI: the demo's output ends with what it wrote, the vault, today.md,
  the open alerts with the command that acknowledges one, and the next commands;
* ``today.md``'s asset (``project / render_today``) shows its latest
  materialization and the ``lorchestra/status`` it recorded.

Screenshots land in ``tests/artifacts/ui-demo-*.png``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from dagster_helpers import (
    BIN,
    CHROMIUM,
    CHROMIUM_FLAGS,
    JOBS,
    REPO,
    ensure_chromium,
    free_port,
    open_timeline_bars,
    wait_for_text,
)

from lorchestra_dagster import naming
from lorchestra_dagster.defs.pipelines import flatten
from lorchestra_dagster.spec.catalog import load_catalog

# make demo (~40 s at 3 clients), the webserver and daemon (~30 s) and a browser: ~2 min.
pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = REPO / "tests" / "artifacts"
ASSETS_QUERY = """
query {
  assetNodes {
    assetKey { path }
    staleStatus
    assetMaterializations(limit: 1) { runId }
  }
}
"""


@dataclass
class Demo:
    url: str
    run_id: str
    stdout: str


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LORCHESTRA_SANDBOX_URL", "STORACLE_URL", "DAGSTER_HOME", "MAKEFLAGS")
    }
    env.update(LORCHESTRA_HOME=str(home), DAGSTER_DISABLE_TELEMETRY="1", **extra)
    return env


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """``make demo`` into a fresh home, then ``scripts/ui.sh`` on a free port (stopped after)."""
    home = tmp_path / "home"
    env = _env(home, CLIENTS="3", COLUMNS="200")
    proc = None
    try:
        made = subprocess.run(
            ["make", "-s", "-o", ".venv/.installed", "demo"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=400, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
        found = re.search(r"Dagster run ([0-9a-f-]{36}) \(launched_by=demo\)", made.stdout)
        assert found, made.stdout[-3000:]
        _assert_demo_ending(made.stdout, home / "vault")
        port = free_port()
        log = tmp_path / "ui.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "scripts/ui.sh"],
                cwd=REPO,
                env={**env, "DAGSTER_PORT": str(port)},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        deadline = time.monotonic() + 240
        while "lorchestra UI:" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        assert "sources point at the sandbox" in log.read_text()  # make ui found the demo's
        yield Demo(f"http://127.0.0.1:{port}", found.group(1), made.stdout)
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends the script
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        subprocess.run(
            [str(BIN / "lorchestra"), "sandbox", "down"],
            cwd=REPO, env=env, capture_output=True, timeout=60, check=False,
        )  # fmt: skip


def _assert_demo_ending(stdout: str, vault: Path) -> None:
    """The demo's last screen, in order: written, vault, today.md, alerts, next commands."""
    lines = stdout.splitlines()
    order = [
        "vault files:",
        f"vault: {vault}",
        f"this morning's page: {vault / 'today.md'}",
        "open safety alerts",
        f"open alerts: {vault / 'alerts.md'}",
        "next:",
        "make ui",
    ]
    at = [next((i for i, ln in enumerate(lines) if want in ln), -1) for want in order]
    assert -1 not in at and at == sorted(at), (list(zip(order, at, strict=True)), stdout[-3000:])
    assert "sandbox down" in lines[-1], lines[-3:]
    ids = re.findall(r"alerts ack ([0-9a-f]{12}) --note", stdout)
    if "open safety alerts: none" not in stdout:
        assert ids, stdout[-3000:]  # an open alert comes with the command that acks it


def _asset_lists_shown(page, url: str, stage: str, labels: list[str]) -> str:
    """The stage's asset list once every label and as many Materialized badges are drawn."""
    page.goto(
        f"{url}/locations/lorchestra/asset-groups/{stage}/list", wait_until="domcontentloaded"
    )
    deadline = time.monotonic() + 90
    while True:
        body = wait_for_text(page, labels, timeout_s=90)
        badges = len(re.findall(r"^Materialized$", body, re.M))
        if badges >= len(labels):
            return body
        assert time.monotonic() < deadline, f"{stage}: {badges} of {len(labels)} materialized"
        time.sleep(1)


def test_demo_run_on_the_timeline_and_every_asset_fresh(demo: Demo) -> None:
    from playwright.sync_api import sync_playwright

    ensure_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    catalog = load_catalog(JOBS)
    jobs = flatten(catalog, "pipeline.daily_all").job_ids
    by_stage: dict[str, list[str]] = {}
    for jid in jobs:
        stage = catalog.jobs[jid].stage
        by_stage.setdefault(stage, []).append(" / ".join(naming.asset_key(stage, jid)))
    assert set(by_stage) == set(naming.STAGES), by_stage

    # Dagster's own view of freshness: each job's asset was last materialized by the demo.
    nodes = httpx.post(f"{demo.url}/graphql", json={"query": ASSETS_QUERY}, timeout=60).json()
    state = {
        " / ".join(n["assetKey"]["path"]): (
            n["staleStatus"],
            [m["runId"] for m in n["assetMaterializations"]],
        )
        for n in nodes["data"]["assetNodes"]
    }
    for label in (lab for labels in by_stage.values() for lab in labels):
        assert state[label] == ("FRESH", [demo.run_id]), (label, state.get(label))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            chunks = open_timeline_bars(page, demo.url, "daily_all")
            assert chunks.count() == 1  # the demo's one run, nothing else
            popover = page.locator(".bp5-popover")
            popover.locator(f'a[href="/runs/{demo.run_id}"]').wait_for(timeout=30_000)
            assert "daily_all" in popover.inner_text()
            page.screenshot(path=str(ARTIFACTS / "ui-demo-timeline.png"))

            page.goto(f"{demo.url}/runs", wait_until="domcontentloaded")
            body = wait_for_text(
                page, [demo.run_id[:8], "daily_all", "lorchestra/launched_by: demo"], timeout_s=90
            )
            assert "Failure" not in body, body[:3000]
            page.screenshot(path=str(ARTIFACTS / "ui-demo-runs.png"))
            page.goto(f"{demo.url}/runs/{demo.run_id}", wait_until="domcontentloaded")
            wait_for_text(page, ["Success", "daily_all"])
            page.screenshot(path=str(ARTIFACTS / "ui-demo-run.png"))

            page.set_viewport_size({"width": 1600, "height": 2600})  # one screen per stage
            for stage in naming.STAGES:
                body = _asset_lists_shown(page, demo.url, stage, by_stage[stage])
                for bad in ("Never materialized", "Unsynced", "Failed"):
                    assert bad not in body, (stage, bad, body[:3000])
                page.screenshot(path=str(ARTIFACTS / f"ui-demo-assets-{stage}.png"))

            page.set_viewport_size({"width": 1600, "height": 1000})
            page.goto(f"{demo.url}/assets/project/render_today", wait_until="domcontentloaded")
            body = wait_for_text(page, ["render_today", "Latest materialization", "today.md"])
            assert re.search(r"lorchestra/status\s+.*?\s+succeeded", body, re.S), body[:3000]
            assert "Never materialized" not in body
            page.screenshot(path=str(ARTIFACTS / "ui-demo-today-asset.png"))
        finally:
            browser.close()
    for name in ("timeline", "runs", "assets-project"):
        assert (ARTIFACTS / f"ui-demo-{name}.png").stat().st_size > 10_000, name

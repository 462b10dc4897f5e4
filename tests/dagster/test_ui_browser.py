"""The web UI as a person uses it: `dagster dev`, headless Chromium, a broken job, a CLI run.

Before the UI starts, the shipped catalog is copied to a temp dir (with the
drop-folder samples it reads) and ONE job of it is broken
(``ingest_stripe_refunds``: ``op: storacle.sumbit``), and ``lorchestra run
ingest_drop_folder`` runs once into the instance the UI will show. Then
``dagster dev`` (webserver + daemon) starts on 127.0.0.1 against that copy,
and the browser checks that:

* the code location loads (no code location error) and the five stage groups
  list their assets under the ``[stage, short name]`` keys of
  ``naming.asset_key``, the broken job included;
* the CLI run is on the Overview timeline (row "Jobless asset
  materializations", the UI's name for ``__ASSET_JOB``, its bar linking to the
  run) and on the Runs page, tagged ``lorchestra/launched_by: cli``;
* the broken job's asset page shows its ``path:line:col`` error and the bad op
  name, and materializing it from the UI fails with that error;
* the drop-folder ingest asset still materializes from the UI;
* the Automation page lists ``daily_all_schedule`` and the sensors.

Screenshots go to ``tests/artifacts/`` (``LORCHESTRA_UPDATE_DOC_SCREENSHOT=1``
also refreshes ``docs/img/ui-assets.png``).

Chromium is Debian's package (``scripts/ensure_chromium.sh``), driven by
Playwright with ``executable_path``; no browser is ever downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import kit
import pytest
import yaml
from dagster_helpers import (
    BIN,
    CHROMIUM,
    CHROMIUM_FLAGS,
    JOBS,
    REPO,
    dagster_dev,
    ensure_chromium,
    open_timeline_bars,
    subprocess_env,
    wait_for_text,
)

from lorchestra_dagster import naming
from lorchestra_dagster.spec.catalog import load_catalog

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = REPO / "tests" / "artifacts"
BROKEN_JOB = "ingest_stripe_refunds"
BROKEN_OP = "storacle.sumbit"
DROP_JOB = "ingest_drop_folder"
RUNS_QUERY = """
query {
  runsOrError {
    ... on Runs {
      results {
        runId status pipelineName
        assetSelection { path }
        tags { key value }
        repositoryOrigin { repositoryLocationName repositoryName }
      }
    }
  }
}
"""
WORKSPACE_QUERY = """
query {
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""
REPOS_QUERY = """
query {
  repositoriesOrError {
    ... on RepositoryConnection { nodes { name schedules { name } sensors { name } } }
  }
}
"""
MATERIALIZATIONS = """
query Materializations($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(limit: 2) { runId } }
  }
}
"""


@dataclass
class UI:
    url: str
    catalog: Path
    broken_file: Path
    cli_run_id: str


def _copy_catalog(root: Path) -> tuple[Path, Path]:
    """The shipped catalog under ``root/jobs`` with one job broken; its drop folder copied too.

    Returns the catalog and the broken job's file.
    """
    cat = root / "jobs"
    shutil.copytree(JOBS, cat)
    pattern = yaml.safe_load((JOBS / "sources.yaml").read_text())["streams"]["drop_folder"]["path"]
    if not Path(pattern).is_absolute():  # relative to the catalog: the copy needs the samples
        src = (JOBS / pattern).parent.resolve()
        dst = (cat / pattern).parent.resolve()
        assert src.is_relative_to(REPO) and not dst.exists(), (src, dst)
        shutil.copytree(src, dst)
        assert list(dst.glob(Path(pattern).name)), f"no drop-folder samples in {dst}"
    broken = cat / "ingest" / f"{BROKEN_JOB}.yaml"
    text = broken.read_text(encoding="utf-8")
    assert text.count("op: storacle.submit") >= 1, "the job to break changed shape"
    # One misspelt op (the first submit) is enough to make the whole file invalid.
    broken.write_text(text.replace("op: storacle.submit", f"op: {BROKEN_OP}", 1), encoding="utf-8")
    return cat, broken


@pytest.fixture
def ui(tmp_path: Path, _isolated_home: Path) -> Iterator[UI]:
    """Broken catalog copy + one CLI run, then `dagster dev` on a free loopback port.

    The whole process group of `dagster dev` is stopped after.
    """
    catalog, broken_file = _copy_catalog(tmp_path / "cat")
    dagster_home = kit.dagster_home(_isolated_home)
    env = subprocess_env(
        {
            "DAGSTER_HOME": str(dagster_home),
            "LORCHESTRA_HOME": str(_isolated_home),
            "LORCHESTRA_JOBS_DIR": str(catalog),
            "LORCHESTRA_DUCKDB_SHORT_LOCK": "1",
        }
    )
    cli = subprocess.run(
        [str(BIN / "lorchestra"), "run", DROP_JOB],
        cwd=REPO,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert cli.returncode == 0, cli.stdout[-3000:] + cli.stderr[-3000:]
    found = re.search(rf"succeeded {DROP_JOB} run ([0-9a-f]{{8}}-[0-9a-f-]{{27}})", cli.stdout)
    assert found, cli.stdout[-3000:]

    with dagster_dev(env, tmp_path / "dagster-dev.log") as url:
        nux = _gql(url, "mutation { setNuxSeen }")
        assert nux["setNuxSeen"] is True
        yield UI(url, catalog, broken_file, found.group(1))


def _gql(url: str, query: str, variables: dict | None = None) -> dict:
    resp = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
    )
    body = resp.json()
    assert "errors" not in body, body
    return body["data"]


def _runs(url: str) -> list[dict]:
    return _gql(url, RUNS_QUERY)["runsOrError"]["results"]


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def _wait_for_run(url: str, key: list[str], known: set[str], want: str) -> dict:
    """The one new run (not in ``known``) of ``key``, once it ended; its status must be ``want``."""
    deadline = time.monotonic() + 300
    while True:
        new = [
            r
            for r in _runs(url)
            if r["runId"] not in known and [a["path"] for a in r["assetSelection"] or []] == [key]
        ]
        assert len(new) <= 1, new
        if new and new[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            assert new[0]["status"] == want, new[0]
            return new[0]
        assert time.monotonic() < deadline, f"no {want} run of {key} in time: {new}"
        time.sleep(2)


def _materialize(page) -> None:
    button = page.locator("button").filter(has_text=re.compile(r"^Materialize$"))
    button.first.click()
    wait_for_text(page, ["Launched run"], timeout_s=60)


def _asset_path(key: list[str]) -> str:
    return "/assets/" + "/".join(key)


def test_broken_job_cli_run_and_materialize_from_the_ui(ui: UI) -> None:
    from playwright.sync_api import sync_playwright

    ensure_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    catalog = load_catalog(JOBS)  # the shipped, valid catalog: every job must be listed
    url = ui.url
    broken_key = naming.asset_key("ingest", BROKEN_JOB)
    drop_key = naming.asset_key("ingest", DROP_JOB)
    assert broken_key == ["ingest", "stripe_refunds"] and drop_key == ["ingest", "drop_folder"]

    # The location loaded in spite of the broken job.
    (entry,) = _gql(url, WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
    assert entry["name"] == "lorchestra" and entry["loadStatus"] == "LOADED", entry
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry

    # The CLI run is in the instance, filed under the location, tagged as the CLI's.
    (cli_run,) = _runs(url)
    assert cli_run["runId"] == ui.cli_run_id, cli_run
    assert cli_run["status"] == "SUCCESS", cli_run
    assert cli_run["pipelineName"] == "__ASSET_JOB", cli_run
    assert _tags(cli_run).get("lorchestra/launched_by") == "cli", cli_run
    assert cli_run["repositoryOrigin"] == {
        "repositoryLocationName": "lorchestra",
        "repositoryName": "__repository__",
    }, cli_run
    assert [a["path"] for a in cli_run["assetSelection"]] == [drop_key], cli_run

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{url}/locations", wait_until="domcontentloaded", timeout=120_000)
            body = wait_for_text(page, ["lorchestra", "Loaded"], timeout_s=120)
            assert "Failed" not in body and "code location error" not in body.lower(), body

            # Timeline, before any UI run: its only bar is the CLI run.
            chunks = open_timeline_bars(page, url, "Jobless asset materializations")
            assert chunks.count() == 1
            link = page.locator(f'.bp5-popover a[href="/runs/{ui.cli_run_id}"]')
            link.wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "ui-timeline.png"))

            page.goto(f"{url}/runs", wait_until="domcontentloaded")
            wait_for_text(
                page,
                [ui.cli_run_id[:8], "lorchestra/launched_by: cli", " / ".join(drop_key)],
                timeout_s=90,
            )
            page.screenshot(path=str(ARTIFACTS / "ui-runs.png"))

            page.goto(f"{url}/asset-groups", wait_until="domcontentloaded")
            wait_for_text(page, ["Global asset lineage", *naming.STAGES], timeout_s=120)
            page.screenshot(path=str(ARTIFACTS / "ui-lineage.png"))

            for stage in naming.STAGES:
                expected = sorted(
                    " / ".join(naming.asset_key(stage, j.job_id))
                    for j in catalog.jobs_in_stage(stage)
                )
                assert expected, stage
                if stage == "ingest":  # the broken job is listed with the valid ones
                    assert " / ".join(broken_key) in expected
                page.goto(
                    f"{url}/locations/lorchestra/asset-groups/{stage}/list",
                    wait_until="domcontentloaded",
                )
                wait_for_text(page, expected, timeout_s=90)

            # The broken job: its asset shows the error; materializing it fails with it.
            page.goto(f"{url}{_asset_path(broken_key)}", wait_until="domcontentloaded")
            wait_for_text(
                page,
                [
                    f"INVALID job {BROKEN_JOB}",
                    str(ui.broken_file),
                    f"unknown op '{BROKEN_OP}'",
                    "lorchestra/broken: true",
                    "Never materialized",
                ],
                timeout_s=90,
            )
            page.screenshot(path=str(ARTIFACTS / "ui-broken-asset.png"))
            known = {r["runId"] for r in _runs(url)}
            _materialize(page)
            failed = _wait_for_run(url, broken_key, known, "FAILURE")
            page.goto(f"{url}/runs/{failed['runId']}", wait_until="domcontentloaded")
            wait_for_text(
                page,
                [
                    "Failure",
                    f"job {BROKEN_JOB} is not loaded: its YAML is invalid",
                    f"{ui.broken_file}:",
                    BROKEN_OP,
                ],
                timeout_s=90,
            )
            page.screenshot(path=str(ARTIFACTS / "ui-broken-run.png"))

            # The other ingest asset still materializes from the UI.
            page.goto(f"{url}{_asset_path(drop_key)}", wait_until="domcontentloaded")
            wait_for_text(page, ["drop_folder", "Latest materialization"], timeout_s=90)
            known = {r["runId"] for r in _runs(url)}
            _materialize(page)
            run_id = _wait_for_run(url, drop_key, known, "SUCCESS")["runId"]

            page.goto(f"{url}/runs/{run_id}", wait_until="domcontentloaded")
            wait_for_text(page, ["Success"], timeout_s=90)
            page.screenshot(path=str(ARTIFACTS / "ui-run.png"))

            mats = _gql(url, MATERIALIZATIONS, {"path": drop_key})["assetOrError"]
            want = [{"runId": run_id}, {"runId": ui.cli_run_id}]  # newest first
            assert mats["assetMaterializations"] == want, mats
            page.goto(f"{url}{_asset_path(drop_key)}", wait_until="domcontentloaded")
            body = wait_for_text(page, ["Latest materialization", "lorchestra/status"])
            assert "Never materialized" not in body
            page.screenshot(path=str(ARTIFACTS / "ui-asset-detail.png"))
            # Its events: the UI's materialization (after the CLI's, see the GraphQL check).
            page.goto(f"{url}{_asset_path(drop_key)}?view=events", wait_until="domcontentloaded")
            wait_for_text(page, [f"Materialized in run {run_id[:8]}"], timeout_s=60)
            page.screenshot(path=str(ARTIFACTS / "ui-asset-events.png"))

            # Schedule and sensors loaded in spite of the broken job.
            (repo,) = _gql(url, REPOS_QUERY)["repositoriesOrError"]["nodes"]
            assert [s["name"] for s in repo["schedules"]] == ["daily_all_schedule"], repo
            sensors = sorted(s["name"] for s in repo["sensors"])
            page.goto(f"{url}/automation", wait_until="domcontentloaded")
            wait_for_text(page, ["daily_all_schedule", *sensors], timeout_s=90)
            page.screenshot(path=str(ARTIFACTS / "ui-automation.png"))

            page.goto(f"{url}/asset-groups", wait_until="domcontentloaded")
            wait_for_text(page, ["Global asset lineage", *naming.STAGES])
            time.sleep(2)  # let the graph settle before the picture
            shot = ARTIFACTS / "ui-assets.png"
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("LORCHESTRA_UPDATE_DOC_SCREENSHOT") == "1":
        (REPO / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTIFACTS / "ui-asset-detail.png", REPO / "docs" / "img" / "ui-assets.png")

"""A catalog laid out like the original's validates clean, loads in Dagster, runs end to end.

``original_catalog/`` holds the original's stage folders, pipeline ids, a
``config/`` extra, a ``1-0-0`` transform in the original's meta format; the
shipped transforms and schemas and a ``sources.yaml`` naming the original's
stream ids are added here. ``pipeline.daily_all`` runs against the loopback
sandbox through Dagster, then the Gmail backfill next to its live job.
"""

from __future__ import annotations

import copy
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml
from run_helpers import run_job, run_pipeline

from lorchestra_dagster.catalog_service import load_report
from lorchestra_dagster.engine import Services
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.sources.sandbox.generate import generate
from lorchestra_dagster.sources.sandbox.server import sandbox_env, serve_in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: the original's stream ids -> the shipped stream whose settings they take
STREAMS = {"gmail_acct2": "gmail_acct2", "google_forms_intake_01": "forms_intake_01"}


def build_catalog(root: Path) -> Path:
    shutil.copytree(HERE / "original_catalog", root)
    for registry in ("transforms", "schemas"):
        shutil.copytree(REPO / "jobs" / registry, root / registry, dirs_exist_ok=True)
    shipped = yaml.safe_load((REPO / "jobs" / "sources.yaml").read_text())["streams"]
    streams = {}
    for ours, theirs in STREAMS.items():
        streams[ours] = {**shipped[theirs], "page_size": 5}
    (root / "sources.yaml").write_text(yaml.safe_dump({"streams": streams}))
    return root


def test_it_validates_clean_and_every_job_is_a_dagster_asset(tmp_path):
    root = build_catalog(tmp_path / "jobs")
    report = load_report(root)
    assert report.errors == [], [i.render() for i in report.errors]
    assert not report.broken
    from lorchestra_dagster.defs.build import build_defs
    from lorchestra_dagster.defs.catalog_assets import asset_keys

    defs = build_defs(Settings.from_env(jobs_dir=root, home=tmp_path / "home"), report)
    repo = defs.get_repository_def()
    keys = set(repo.asset_graph.get_all_asset_keys())
    expected = asset_keys(report)
    assert set(expected) == set(report.catalog.jobs)  # every job, projection/ included
    assert set(expected.values()) <= keys
    stages = {j.stage for j in report.asset_jobs()}
    assert stages == {"ingest", "canonize", "formation", "projection"}
    jobs = {j.name for j in repo.get_all_jobs()}
    assert {"daily_all", "ingest", "canonize", "formation", "views", "project"} <= jobs


def test_daily_all_and_the_backfill_run_against_the_sandbox(tmp_path, _isolated_home):
    root = build_catalog(tmp_path / "jobs")
    handle = serve_in_thread(copy.deepcopy(generate(6, 5)))
    env = {**sandbox_env(), "LORCHESTRA_SANDBOX_URL": handle.url}
    services = Services.from_settings(
        Settings.from_env(jobs_dir=root, home=_isolated_home), env=env
    )
    try:
        first = run_pipeline("pipeline.daily_all", services)
        assert first.status == "succeeded", first.failures
        counts = services.client.sql(
            "SELECT source_system, COUNT(*) AS n FROM raw.raw_objects GROUP BY 1 ORDER BY 1"
        )
        raw = {r["source_system"]: r["n"] for r in counts}
        assert raw.get("gmail", 0) > 0 and raw.get("google_forms", 0) > 0
        events = services.client.sql("SELECT COUNT(*) AS n FROM derived.measurement_events")
        assert events[0]["n"] == raw["google_forms"]
        # file_renderer drew one markdown file per event under the vault, 0600
        files = sorted((services.settings.vault_dir / "views" / "forms" / "intake_01").glob("*.md"))
        assert len(files) == raw["google_forms"]
        assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
        # binding_id comes from the step's config, read by the expression as $$.config
        bound = services.client.sql("SELECT DISTINCT binding_id FROM derived.measurement_events")
        assert [r["binding_id"] for r in bound] == ["intake_01"]
        with sqlite3.connect(services.settings.vault_dir / "local.db") as con:
            mirrored = con.execute("SELECT COUNT(*) FROM measurement_events").fetchone()[0]
        assert mirrored == raw["google_forms"]
        # a second day with no new data reads and writes no canonical or derived rows
        second = run_pipeline("pipeline.daily_all", services)
        assert second.status == "succeeded", second.failures
        by_job = {j.job_id: j for j in second.jobs}
        for jid in ("canonize_gmail_jmap", "canonize_google_forms", "form_me_intake_01"):
            assert by_job[jid].rows_written == 0, jid
        backfill = run_job("ingest_gmail_acct2_backfill", services)
        assert backfill.status == "succeeded", backfill.error
    finally:
        services.client.close()
        handle.stop()

"""Which jobs of the shipped catalog a quiet day can skip (no timing: what is knowable).

A job is skipped only when every slice it reads can be fingerprinted. A table
written outside any job (the alert sync's ``derived.alerts``) once made
``view_proj_alerts`` and every vault page after it rerun every day.
"""

from __future__ import annotations

import pytest
from kit import REPO

from lorchestra_dagster.catalog_service import load_report
from lorchestra_dagster.defs.catalog_assets import catalog_jobs
from lorchestra_dagster.defs.fingerprints import Fingerprints
from lorchestra_dagster.spec.lineage import Slice

pytestmark = pytest.mark.unit


def test_every_job_but_ingest_and_clock_pages_can_be_skipped() -> None:
    report = load_report(REPO / "jobs")
    jobs = catalog_jobs(report)
    prints = Fingerprints(jobs, report.registry_sha256)
    never = sorted(jid for jid, job in jobs.items() if not prints.skippable(job))
    external = sorted(jid for jid, job in jobs.items() if job.inputs.external)
    assert never == external, set(never) ^ set(external)
    assert "render_today" in external and "view_proj_alerts" not in never
    assert {"render_alerts", "render_measures", "render_client_markdown"}.isdisjoint(never)


def test_the_alert_tables_have_their_change_columns() -> None:
    report = load_report(REPO / "jobs")
    prints = Fingerprints(catalog_jobs(report), report.registry_sha256)
    for table in ("alerts", "alert_history"):
        assert prints.knows(Slice("derived", table)), table

"""pipeline.daily_all on the synthetic practice, through the engine, on DuckDB.

The whole daily run against the loopback sandbox: every stage's tables are
filled, a PHQ-9 total is traced by hand from one synthetic response, the vault
tree is complete, and a second run writes no row and rewrites no file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kit import JOBS
from run_helpers import run_pipeline

from lorchestra_dagster.engine import Services
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.sources.sandbox.generate import generate
from lorchestra_dagster.sources.sandbox.server import sandbox_env, serve_in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PHQ9 = {"Not at all": 0, "Several days": 1, "More than half the days": 2, "Nearly every day": 3}


@pytest.fixture(scope="module")
def practice():
    return generate(8, 11, catalog_dir=JOBS)


@pytest.fixture
def daily(practice, tmp_path):
    home = Path(os.environ["LORCHESTRA_HOME"])
    with serve_in_thread(practice) as sandbox:
        env = {**os.environ, "LORCHESTRA_SANDBOX_URL": sandbox.url, **sandbox_env()}
        services = Services.from_settings(Settings.from_env(jobs_dir=JOBS, home=home), env=env)

        def run():
            return run_pipeline("pipeline.daily_all", services, max_workers=2)

        yield services, run, home
        services.client.close()


def _count(services, sql):
    return services.client.sql(sql)[0]["n"]


def _files(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_mtime_ns
        for p in root.rglob("*")
        if p.is_file() and p.name != "local.db"
    }


def test_daily_all_end_to_end_then_nothing_to_do(daily, practice):
    services, run, home = daily
    first = run()
    assert first.status == "succeeded", first.failures
    assert first.rows_written > 0

    # ingest: every object of every sandbox stream, exactly once
    raw = _count(
        services, "SELECT COUNT(*) AS n FROM raw.raw_objects WHERE source_system <> 'jsonl'"
    )
    assert raw == sum(practice.counts().values())
    # canonize: every raw object reached canonical (sessions fan out to four objects)
    for object_type in (
        "contact",
        "client_report",
        "email",
        "form_response",
        "customer",
        "invoice",
        "payment_intent",
        "refund",
    ):
        n_raw = _count(
            services,
            f"SELECT COUNT(*) AS n FROM raw.raw_objects WHERE object_type = '{object_type}'",
        )
        n_canon = _count(
            services,
            "SELECT COUNT(*) AS n FROM canonical.canonical_objects "
            f"WHERE object_type = '{object_type}'",
        )
        assert n_canon == n_raw, object_type
    sessions = _count(
        services, "SELECT COUNT(*) AS n FROM raw.raw_objects WHERE object_type = 'client_session'"
    )
    assert (
        _count(
            services,
            "SELECT COUNT(*) AS n FROM canonical.canonical_objects "
            "WHERE object_type = 'client_session'",
        )
        == 4 * sessions
    )
    # formation: one event per submission, a PHQ-9 total for every submission carrying PHQ-9
    responses = sum(len(practice.streams[s]) for s in practice.streams if s.startswith("forms_"))
    assert _count(services, "SELECT COUNT(*) AS n FROM derived.measurement_events") == responses

    # a score traced by hand from one synthetic response
    response = practice.streams["forms_intake_01"][0]
    from lorchestra_dagster.spec import load_yaml_file

    binding = load_yaml_file(JOBS / "bindings" / "intake_01.yaml").data
    qids = [
        q["question_id"]
        for q in binding["questions"]
        if q["instrument"] == "phq9" and q["item"] <= 9
    ]
    texts = [response["answers"][q]["textAnswers"]["answers"][0]["value"] for q in qids]
    expected = sum(PHQ9[t] for t in texts)
    got = services.client.sql(
        "SELECT value_numeric, severity_code FROM derived.observations "
        "WHERE measure_code = 'phq9_total' AND measurement_event_idem_key LIKE "
        f"'%{response['responseId']}%'"
    )
    assert [r["value_numeric"] for r in got] == [expected]
    band = next(
        b
        for lo, hi, b in [
            (0, 4, "minimal"),
            (5, 9, "mild"),
            (10, 14, "moderate"),
            (15, 19, "moderately_severe"),
            (20, 27, "severe"),
        ]
        if lo <= expected <= hi
    )
    assert got[0]["severity_code"] == band

    # the vault: local.db, a folder per client with contact and measures, alerts at the root
    vault = home / "vault"
    assert (vault / "local.db").is_file()
    assert (vault / "alerts.md").is_file()
    folders = [p for p in (vault / "clients").iterdir() if p.is_dir()]
    assert len(folders) == len(practice.streams["dataverse_contacts"])
    assert all((f / "contact.md").is_file() for f in folders)
    assert any((f / "measures.md").is_file() and (f / "measures.png").is_file() for f in folders)
    assert any((f / "sessions").is_dir() for f in folders)

    tables = {
        t: _count(services, f"SELECT COUNT(*) AS n FROM {t}")
        for t in (
            "raw.raw_objects",
            "canonical.canonical_objects",
            "derived.measurement_events",
            "derived.observations",
        )
    }
    files = _files(vault)

    second = run()
    assert second.status == "succeeded", second.failures
    assert second.rows_written == 0
    # A quiet day skips every job but ingest (the outside world) and the clock's page;
    # the alerts formation raised were synced before the views, not after the run.
    reran = {j.job_id for j in second.jobs if j.status != "skipped"}
    assert reran <= {j.job_id for j in second.jobs if j.stage == "ingest"} | {"render_today"}, reran
    assert {t: _count(services, f"SELECT COUNT(*) AS n FROM {t}") for t in tables} == tables
    assert _files(vault) == files

"""``lorchestra validate`` checks sources.yaml and the streams injest steps name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kit import JOBS
from typer.testing import CliRunner

from lorchestra_dagster.cli import app

pytestmark = pytest.mark.unit


@pytest.fixture
def catalog(tmp_path):
    return Path(shutil.copytree(JOBS, tmp_path / "jobs"))


def _validate(root: Path):
    return CliRunner().invoke(app, ["validate", "--jobs-dir", str(root)])


def test_shipped_catalog_is_clean(catalog):
    res = _validate(catalog)
    assert res.exit_code == 0, res.output


def test_unknown_stream_is_named_with_its_line(catalog):
    job = catalog / "ingest" / "ingest_stripe_refunds.yaml"
    job.write_text(job.read_text().replace("source: stripe_refunds", "source: stripe_refundz"))
    res = _validate(catalog)
    assert res.exit_code == 1
    line = next(x for x in res.output.splitlines() if "L071" in x)
    assert line.startswith(str(job) + ":") and "'stripe_refundz'" in line
    lineno = int(line.split(":")[1])
    assert "stripe_refundz" in job.read_text().splitlines()[lineno - 1]


def test_bad_stream_setting_is_reported(catalog):
    sources = catalog / "sources.yaml"
    text = sources.read_text()
    assert "connector: stripe" in text
    sources.write_text(
        text.replace("connector: stripe", "connector: stripe\n    bogus_setting: 1", 1)
    )
    res = _validate(catalog)
    assert res.exit_code == 1
    assert "L070" in res.output and "bogus_setting" in res.output


def test_edited_transform_without_new_checksum_is_refused(catalog):
    spec = next((catalog / "transforms").rglob("spec.jsonata"))
    spec.write_text(spec.read_text() + "\n")
    res = _validate(catalog)
    assert res.exit_code == 1
    assert "L072" in res.output and str(spec.parent) in res.output


def test_broken_instrument_is_reported(catalog):
    inst = catalog / "instruments" / "gad7.yaml"
    inst.write_text(inst.read_text().replace("scales:", "scalez:", 1))
    res = _validate(catalog)
    assert res.exit_code == 1
    assert "L073" in res.output and "gad7.yaml" in res.output


def test_later_stage_dependency_is_a_lineage_error(catalog):
    job = catalog / "ingest" / "ingest_stripe_refunds.yaml"
    text = job.read_text()
    job.write_text(text.replace("steps:", "deps:\n- formation/formation_form_responses\nsteps:", 1))
    res = _validate(catalog)
    assert res.exit_code == 1
    assert "L074" in res.output and "formation_form_responses" in res.output


def test_source_limits_are_checked_with_their_line(catalog):
    sources = catalog / "sources.yaml"
    text = sources.read_text()
    assert "  stripe: {max_concurrent_jobs: 2}" in text
    text = text.replace("  stripe: {max_concurrent_jobs: 2}", "  stripe: {max_concurrent_jobs: 0}")
    sources.write_text(text.replace("  gmail: {", "  gmial: {"))
    res = _validate(catalog)
    assert res.exit_code == 1
    lines = [x for x in res.output.splitlines() if "L070" in x]
    assert any("'gmial'" in x and "a source is a connector" in x for x in lines), res.output
    bad = next(x for x in lines if "sources.stripe" in x)
    assert "max_concurrent_jobs" in bad
    lineno = int(bad.split(":")[1])
    assert "stripe: {max_concurrent_jobs: 0}" in sources.read_text().splitlines()[lineno - 1]


def test_each_job_belongs_to_its_connector_and_each_source_has_a_limit(catalog):
    from lorchestra_dagster.sources.catalog import DEFAULT_MAX_CONCURRENT_JOBS, source_concurrency

    sources = catalog / "sources.yaml"
    text = sources.read_text()
    text = text.replace("  stripe: {max_concurrent_jobs: 2}", "  stripe: {}")
    sources.write_text(
        text.replace("  gmail: {max_concurrent_jobs: 2}", "  gmail: {max_concurrent_jobs: 1}")
    )
    groups, limits = source_concurrency(
        catalog,
        {
            "ingest_gmail_acct1": ["gmail_acct1"],
            "ingest_stripe_refunds": ["stripe_refunds"],
            "two": ["stripe_refunds", "stripe_invoices", "forms_followup"],
            "unknown": ["no_such_stream"],
            "view": [],
        },
    )
    assert groups == {
        "ingest_gmail_acct1": ("gmail",),
        "ingest_stripe_refunds": ("stripe",),
        "two": ("stripe", "google_forms"),
    }
    # Named with a value, named without one, not named: every connector has a limit.
    assert limits["gmail"] == 1
    assert limits["stripe"] == limits["exchange"] == DEFAULT_MAX_CONCURRENT_JOBS

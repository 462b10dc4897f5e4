"""A backfill job writing its live job's slice: declared with ``backfill_of``, never a cycle.

Both jobs read a cursor over the slice they write (the original's Gmail
backfill reads ``MIN(last_seen)`` of its account), so inferred lineage sees
each depending on the other. ``backfill_of: <live job>`` says what it is; the
cycle's error names that key.
"""

from __future__ import annotations

import pytest
from migration_kit import write_catalog

from lorchestra_dagster.catalog_service import load_report

pytestmark = pytest.mark.unit

SLICE = "{source_system: gmail, connection_name: gmail-acct2, object_type: email}"


def _job(job_id: str, cursor: str, head: str = "") -> str:
    return f"""\
job_id: {job_id}
version: '2.0'
{head}steps:
- step_id: cursor
  op: storacle.query
  params:
    dataset: raw
    table: raw_objects
    columns: ['{cursor}']
    filters: {SLICE}
- step_id: persist
  op: plan.build
  params:
    items: []
    method: bq.upsert
    dataset: raw
    table: raw_objects
    key_columns: [idem_key]
    field_defaults: {SLICE}
"""


READER = """\
job_id: canonize_gmail
version: '2.0'
steps:
- step_id: read
  op: storacle.query
  params: {dataset: raw, table: raw_objects, filters: {source_system: gmail}}
"""


def _catalog(tmp_path, head: str):
    return write_catalog(
        tmp_path / "jobs",
        {
            "ingest/ingest_gmail_acct2.yaml": _job("ingest_gmail_acct2", "MAX(last_seen) AS since"),
            "ingest/ingest_gmail_acct2_backfill.yaml": _job(
                "ingest_gmail_acct2_backfill", "MIN(last_seen) AS until", head
            ),
            "canonize/canonize_gmail.yaml": READER,
        },
    )


def test_undeclared_backfill_is_a_cycle_whose_hint_names_backfill_of(tmp_path):
    report = load_report(_catalog(tmp_path, ""))
    cycles = [i for i in report.errors if "cycle" in i.message]
    assert cycles, [i.render() for i in report.errors]
    assert all("backfill_of: ingest_gmail_acct2" in i.message for i in cycles)


def test_declared_backfill_loads_clean_and_readers_depend_on_the_live_job(tmp_path):
    report = load_report(_catalog(tmp_path, "backfill_of: ingest_gmail_acct2\n"))
    assert report.errors == [], [i.render() for i in report.errors]
    assert report.lineage is not None
    assert report.lineage.deps["canonize_gmail"] == ["ingest_gmail_acct2"]
    assert report.lineage.deps["ingest_gmail_acct2"] == []
    assert report.lineage.deps["ingest_gmail_acct2_backfill"] == []
    assert not report.broken


def test_backfill_of_an_unknown_job_is_an_error(tmp_path):
    report = load_report(_catalog(tmp_path, "backfill_of: ingest_gmail_acct9\n"))
    [issue] = [i for i in report.errors if i.code == "L046"]
    assert issue.line == 3 and "ingest_gmail_acct9" in issue.message

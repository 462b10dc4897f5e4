"""The canonize schema check validates what the run wrote, not the whole slice each time.

A day with one new form response re-validated every payload of the slice (up to 50,000
rows, parsed at once: 6.3 s of one core at 873 clients, after the canonizer had already
validated them), and rows past the 50,000th were never checked at all.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from kit import JOBS

from lorchestra_dagster.defs import checks
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.spec.lineage import Slice
from lorchestra_dagster.storacle.client import make_client
from lorchestra_dagster.storacle.plan import make_plan

pytestmark = pytest.mark.e2e

SCHEMA = "iglu:org.canonical/form_response/jsonschema/1-0-0"
KEY = dg.AssetKey(["canonize", "google_forms_response"])


def _row(n: int, when: str) -> dict:
    # An empty payload misses every required field of form_response: each row is invalid.
    return {
        "idem_key": f"r{n:05d}#form_response",
        "canonical_format": "form_response",
        "canonical_schema": SCHEMA,
        "payload": {},
        "canonicalized_at": when,
    }


def test_the_schema_check_reads_the_rows_of_this_run_in_pages(tmp_path: Path, monkeypatch):
    client = make_client(Settings.from_env(home=tmp_path / "home", jobs_dir=JOBS))
    old = [_row(n, "2026-01-01T00:00:00+00:00") for n in range(5)]
    new = [_row(n, "2026-03-01T00:00:00+00:00") for n in range(5, 8)]
    op = {"dataset": "canonical", "table": "canonical_objects", "key_columns": ["idem_key"]}
    client.execute_plan(make_plan([("bq.upsert", {**op, "rows": old + new})]))
    sl = Slice("canonical", "canonical_objects", (("canonical_format", "form_response"),))
    monkeypatch.setattr(checks, "SCHEMA_CHECK_PAGE", 2)  # several pages over 8 rows
    try:
        run = checks._schema_result(KEY, client, JOBS, sl, "2026-02-01T00:00:00+00:00")
        whole = checks._schema_result(KEY, client, JOBS, sl, None)
        # a job that wrote 3 rows without stamping them after its start: the whole slice
        unstamped = checks._schema_result(KEY, client, JOBS, sl, "2026-06-01T00:00:00+00:00", 3)
    finally:
        client.close()
    assert not run.passed and not whole.passed
    assert run.metadata["checked"].value == 3 and run.metadata["invalid"].value == 3
    assert run.metadata["scope"].value == "rows written by this run"
    assert whole.metadata["checked"].value == 8 and whole.metadata["invalid"].value == 8
    assert unstamped.metadata["checked"].value == 8
    assert unstamped.metadata["scope"].value == "the whole slice"
    first = whole.metadata["first_invalid_keys"].value
    assert first == [f"r{n:05d}#form_response" for n in range(5)]  # keys, never payloads

"""The same view SQL on the BigQuery backend (local-bigquery emulator on loopback).

The views are authored once in BigQuery SQL; this runs them through the BigQuery
backend unchanged and checks they give the rows the DuckDB path gives.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from kit import REPO, emulator_config, plan_ops, read
from vault_practice import EXPECTED_VIEW_ROWS, canonical_rows, derived_rows, flag_rows

import lorchestra_dagster.alerts.store  # noqa: F401 - declares derived.alerts, which proj_alerts reads

pytestmark = pytest.mark.slow

KEYS = {
    "proj_clients": "client_id",
    "proj_sessions": "session_id",
    "proj_transcripts": "transcript_id",
    "proj_clinical_documents": "document_id",
    "proj_form_responses": "idem_key",
    "proj_contact_events": "event_id",
    "proj_measurements": "idem_key",
    "proj_invoices": "invoice_id",
    "proj_alerts": "alert_id",
}


@pytest.fixture(scope="module")
def bq() -> Iterator:
    backend = emulator_config().make_backend()
    yield backend
    backend.close()


def seed_ops() -> list[dict]:
    events, observations = derived_rows()
    return [
        {
            "method": "bq.upsert",
            "params": {"dataset": ds, "table": tb, "key_columns": [key], "rows": rows},
        }
        for ds, tb, key, rows in (
            ("canonical", "canonical_objects", "idem_key", canonical_rows()),
            ("derived", "measurement_events", "idem_key", events),
            ("derived", "observations", "idem_key", observations),
            ("derived", "safety_flags", "flag_id", flag_rows(observations)),
        )
    ]


def test_views_give_the_same_rows_on_bigquery(bq) -> None:
    bq.execute(plan_ops(*seed_ops()), dry_run=False)
    for path in sorted((REPO / "jobs" / "views").glob("*.yaml")):
        [item] = yaml.safe_load(path.read_text())["steps"][0]["params"]["items"]
        bq.execute(
            plan_ops({"method": "bq.execute", "params": {"sql": item["sql"]}}), dry_run=False
        )
    for view, count in EXPECTED_VIEW_ROWS.items():
        rows = bq.query(read({"dataset": "canonical", "table": view}))
        assert len(rows) == count, view
        assert len({r[KEYS[view]] for r in rows}) == count, view
    sessions = bq.query(read({"dataset": "canonical", "table": "proj_sessions"}))
    assert sorted((r["session_id"], r["session_num"]) for r in sessions) == [
        ("s1", 1),
        ("s2", 2),
        ("s3", 1),
    ]
    measures = bq.query(read({"dataset": "canonical", "table": "proj_measurements"}))
    assert sorted((r["measure_code"], r["client_id"] is None) for r in measures) == [
        ("gad7_total", False),
        ("phq9_total", False),
        ("phq9_total", True),
    ]

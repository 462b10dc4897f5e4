"""The original's ``proj_me_*`` jobs: ``measurement_projector`` and a ``bq.upsert`` whose
target comes from each item, run unchanged (the read it did itself is an explicit step)."""

from __future__ import annotations

import pytest
from kit import upsert_job
from migration_kit import issues_of, services_for, write_catalog

from lorchestra_dagster.engine import execute_with
from lorchestra_dagster.spec import load_catalog

pytestmark = pytest.mark.e2e

SCHEMA = "iglu:org.canonical/form_response/jsonschema/1-0-0"

PROJ_ME = f"""\
job_id: proj_me_intake_01
version: '2.0'
steps:
- step_id: project
  op: call
  params:
    callable: measurement_projector
    canonical_schema: '{SCHEMA}'
    connection_name: google-forms-intake-01
    measurement_table: measurement_events
    event_type: form
    event_subtype: intake_01
- step_id: persist
  op: plan.build
  params:
    items: '@run.project.items'
    method: bq.upsert
- step_id: write
  op: storacle.submit
  params:
    plan: '@run.persist.plan'
"""

SEED = upsert_job(
    "seed_forms", "canonical", "canonical_objects", auto_timestamp_columns=["canonicalized_at"]
)


def _row(n: int, conn: str = "google-forms-intake-01") -> dict:
    return {
        "idem_key": f"google_forms:{conn}:form_response:r{n}#form_response",
        "source_system": "google_forms",
        "connection_name": conn,
        "object_type": "form_response",
        "canonical_schema": SCHEMA,
        "payload": {
            "response_id": f"r{n}",
            "form_id": "intake_01",
            "submitted_at": "2026-02-01T21:57:01+00:00",
            "respondent": {"email": f"client{n}@example.org"},
        },
    }


def test_proj_me_reads_projects_and_upserts_per_item(tmp_path, _isolated_home):
    cat = write_catalog(
        tmp_path / "jobs",
        {"projection/table/proj_me_intake_01.yaml": PROJ_ME, "canonize/seed_forms.yaml": SEED},
    )
    steps = [s.op for s in load_catalog(cat).jobs["proj_me_intake_01"].jobdef.steps]
    assert steps == ["storacle.query", "call", "plan.build", "storacle.submit"]
    assert issues_of(cat, "projection/table/proj_me_intake_01.yaml") == []
    with services_for(cat, _isolated_home) as svc:
        rows = [_row(1), _row(2), _row(3, conn="google-forms-followup")]
        seed = execute_with({"job_id": "seed_forms", "payload": {"rows": rows}}, svc)
        assert seed.status == "succeeded", seed.error_message()
        first = execute_with({"job_id": "proj_me_intake_01"}, svc)
        assert first.status == "succeeded", first.error_message()
        got = svc.client.sql(
            "SELECT measurement_event_id, subject_id, binding_id, event_type "
            "FROM derived.measurement_events ORDER BY 1"
        )
        again = execute_with({"job_id": "proj_me_intake_01"}, svc)
    assert [(r["subject_id"], r["binding_id"], r["event_type"]) for r in got] == [
        ("client1@example.org", "intake_01", "form"),
        ("client2@example.org", "intake_01", "form"),
    ]
    assert got[0]["measurement_event_id"] == _row(1)["idem_key"]
    # incremental: nothing re-canonized, nothing read again
    assert again.status == "succeeded" and again.rows_read == 0

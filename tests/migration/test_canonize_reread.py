"""The original's canonize job (``left_anti`` without timestamps, default volatile columns):
an updated raw row is canonized again once, and a rerun after that reads nothing."""

from __future__ import annotations

import pytest
from migration_kit import services_for, write_catalog
from registry_kit import write_original_transform

from lorchestra_dagster.engine import execute_with

pytestmark = pytest.mark.e2e

SEED = """\
job_id: ingest_contacts
version: '2.0'
steps:
- step_id: persist
  op: plan.build
  params:
    items: '@payload.items'
    method: bq.upsert
    dataset: raw
    table: raw_objects
    key_columns: [idem_key]
    payload_wrap: true
    id_field: contactid
    field_defaults:
      source_system: dataverse
      connection_name: dataverse-clinic
      object_type: contact
    auto_external_id: true
    auto_timestamp_columns: [first_seen, last_seen]
    skip_update_columns: [first_seen]
- step_id: write
  op: storacle.submit
  params: {plan: '@run.persist.plan'}
"""

CANONIZE = """\
job_id: canonize_dataverse_contacts
version: '2.0'
steps:
- step_id: read
  op: storacle.query
  params:
    dataset: raw
    table: raw_objects
    columns: [idem_key, source_system, connection_name, object_type, payload, correlation_id]
    filters: {source_system: dataverse, object_type: contact}
    parse_json_columns: [payload]
    limit: 100
    incremental:
      target_dataset: canonical
      target_table: canonical_objects
      source_key: idem_key
      target_key: idem_key
      join_key_suffix: contact
      mode: left_anti
- step_id: canonize
  op: call
  params:
    callable: canonizer
    source_type: dataverse
    items: '@run.read.items'
    config: {transform_id: contact/dataverse_to_canonical@2-0-0}
- step_id: persist
  op: plan.build
  params:
    items: '@run.canonize.items'
    method: bq.upsert
    dataset: canonical
    table: canonical_objects
    key_columns: [idem_key]
    idem_key_suffix: contact
    auto_timestamp_columns: [canonicalized_at, created_at]
    field_defaults:
      canonical_schema: iglu:org.canonical/contact/jsonschema/2-0-0
      canonical_format: contact
      transform_ref: contact/dataverse_to_canonical@2-0-0
    skip_update_columns: [created_at]
- step_id: write
  op: storacle.submit
  params: {plan: '@run.persist.plan'}
"""


def _contact(n: int, **extra):
    return {"contactid": f"c{n}", "firstname": "A", "lastname": f"L{n}", **extra}


def test_updated_raw_rows_are_canonized_again_then_settle(tmp_path, _isolated_home):
    cat = write_catalog(
        tmp_path / "jobs",
        {
            "ingest/ingest_contacts.yaml": SEED,
            "canonize/canonize_dataverse_contacts.yaml": CANONIZE,
        },
    )
    write_original_transform(cat)
    with services_for(cat, _isolated_home) as svc:

        def run(job, **payload):
            res = execute_with({"job_id": job, "payload": payload}, svc)
            assert res.status == "succeeded", res.error_message()
            return res

        run("ingest_contacts", items=[_contact(1), _contact(2)])
        assert run("canonize_dataverse_contacts").rows_read == 2
        assert run("canonize_dataverse_contacts").rows_read == 0
        # c1 changes in a field the transform ignores: read once more, then settled
        run("ingest_contacts", items=[_contact(1, mobile="x"), _contact(2)])
        again = run("canonize_dataverse_contacts")
        assert again.rows_read == 1
        assert run("canonize_dataverse_contacts").rows_read == 0

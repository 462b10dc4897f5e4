"""storacle.query as the original wrote it: BigQuery column expressions, ``in``, ``-col``,
and cursors over a table that does not exist yet."""

from __future__ import annotations

import datetime as dt

import pytest
from migration_kit import issues_of, services_for, write_catalog

from lorchestra_dagster.callables import register, result
from lorchestra_dagster.engine import execute_with

pytestmark = pytest.mark.e2e

SEEN = {}


@register("test_remember_window")
def _remember(params, ctx):
    SEEN["config"] = params.get("config")
    return result([], input=0)


BACKFILL = """\
job_id: ingest_backfill
version: '2.0'
steps:
- step_id: cursor
  op: storacle.query
  params:
    dataset: raw
    table: raw_objects
    columns:
    - 'MIN(last_seen) as until'
    - 'TIMESTAMP_SUB(MIN(last_seen), INTERVAL 30 DAY) as since'
    filters:
      source_system: gmail
      connection_name: gmail-acct2
      object_type: {op: in, value: [email]}
- step_id: ingest
  op: call
  params:
    callable: test_remember_window
    config:
      since: '@run.cursor.items[0].since'
      until: '@run.cursor.items[0].until'
"""

QUERY = """\
job_id: debug_query_record
version: '2.0'
steps:
- step_id: query
  op: storacle.query
  params:
    dataset: raw
    table: raw_objects
    columns:
    - idem_key
    - 'LENGTH(TO_JSON_STRING(payload)) as payload_size'
    filters:
    - {column: idem_key, op: in, value: [k1, k2]}
    order_by: '-idem_key'
"""

# The dict form of filters keeps plain equality; the op form goes in the list.
BACKFILL = BACKFILL.replace("object_type: {op: in, value: [email]}", "object_type: email")


def _seed(svc, rows):
    plan_rows = [
        {
            "idem_key": k,
            "source_system": "gmail",
            "connection_name": "gmail-acct2",
            "object_type": "email",
            "payload": {"n": n},
            "last_seen": seen,
        }
        for k, n, seen in rows
    ]
    from lorchestra_dagster.storacle.plan import make_plan

    plan = make_plan(
        [
            (
                "bq.upsert",
                {
                    "dataset": "raw",
                    "table": "raw_objects",
                    "key_columns": ["idem_key"],
                    "rows": plan_rows,
                },
            )
        ],
        {"correlation_id": "t", "run_id": "t", "step_id": "s", "job_id": "j"},
    )
    svc.client.execute_plan(plan.model_dump(mode="json"), dry_run=False)


def test_cursor_over_a_missing_table_gives_one_row_of_nulls(tmp_path, _isolated_home):
    cat = write_catalog(tmp_path / "jobs", {"ingest/ingest_backfill.yaml": BACKFILL})
    assert issues_of(cat, "ingest/ingest_backfill.yaml") == []
    with services_for(cat, _isolated_home) as svc:
        rows = svc.client.query(
            {"dataset": "raw", "table": "raw_objects", "columns": ["MAX(last_seen) AS since"]}
        )
        assert rows == [{"since": None}]
        # no aggregate: an empty table has no rows
        assert svc.client.query({"dataset": "raw", "table": "raw_objects"}) == []
        res = execute_with({"job_id": "ingest_backfill"}, svc)
    assert res.status == "succeeded", res.error_message()
    assert SEEN["config"] == {"since": None, "until": None}


def test_timestamp_sub_runs_on_the_warehouse(tmp_path, _isolated_home):
    cat = write_catalog(tmp_path / "jobs", {"ingest/ingest_backfill.yaml": BACKFILL})
    with services_for(cat, _isolated_home) as svc:
        _seed(svc, [("k1", 1, "2026-03-31T00:00:00+00:00"), ("k2", 2, "2026-04-02T00:00:00+00:00")])
        res = execute_with({"job_id": "ingest_backfill"}, svc)
    assert res.status == "succeeded", res.error_message()
    since, until = (dt.datetime.fromisoformat(str(SEEN["config"][k])) for k in ("since", "until"))
    assert until == dt.datetime(2026, 3, 31, tzinfo=dt.UTC)
    assert since == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_to_json_string_in_and_descending_order(tmp_path, _isolated_home):
    cat = write_catalog(tmp_path / "jobs", {"debug/debug_query_record.yaml": QUERY})
    assert issues_of(cat, "debug/debug_query_record.yaml") == []
    with services_for(cat, _isolated_home) as svc:
        _seed(
            svc,
            [(k, n, "2026-01-01T00:00:00+00:00") for k, n in (("k1", 1), ("k2", 22), ("k3", 3))],
        )
        res = execute_with({"job_id": "debug_query_record"}, svc)
        rows = svc.client.query(
            {
                "dataset": "raw",
                "table": "raw_objects",
                "columns": ["idem_key", "LENGTH(TO_JSON_STRING(payload)) as payload_size"],
                "filters": [{"column": "idem_key", "op": "in", "value": ["k1", "k2"]}],
                "order_by": "-idem_key",
            }
        )
    assert res.status == "succeeded", res.error_message()
    assert rows == [{"idem_key": "k2", "payload_size": 8}, {"idem_key": "k1", "payload_size": 7}]


@pytest.mark.parametrize(
    "expr",
    [
        "TIMESTAMP_SUB(last_seen, INTERVAL 1 DAY); DROP TABLE x",
        "GETENV('HOME') AS h",
        "read_csv('/etc/passwd')",
        "(SELECT 1) AS x",
    ],
)
def test_other_sql_in_columns_is_still_refused(tmp_path, _isolated_home, expr):
    cat = write_catalog(
        tmp_path / "jobs", {"debug/q.yaml": "job_id: q\nversion: '2.0'\nsteps: []\n"}
    )
    with services_for(cat, _isolated_home) as svc:
        with pytest.raises(Exception, match="not allowed"):
            svc.client.query({"dataset": "raw", "table": "raw_objects", "columns": [expr]})

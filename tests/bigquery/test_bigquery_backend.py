"""BigQuery-only behaviour against the loopback emulator.

What every backend must do is in tests/storacle (the conformance suite runs
there on this emulator too); here: the BigQuery mechanics (load-job staging,
transactions, declared schemas, clustering, typed parameters, the dagster-gcp
resource and the service factory).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import bigquery
from kit import plan_ops, read

from lorchestra_dagster.defs.bigquery import LorchestraBigQueryResource
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.backends import bigquery_emulator
from lorchestra_dagster.storacle.backends import bigquery_sql as bqsql
from lorchestra_dagster.storacle.backends.base import OpFailure, WarehouseBackend
from lorchestra_dagster.storacle.backends.bigquery import BigQueryBackend
from lorchestra_dagster.storacle.backends.bigquery_config import BigQueryConfig
from lorchestra_dagster.storacle.service import make_warehouse

pytestmark = pytest.mark.e2e

T0 = "2026-11-29T06:00:00+00:00"


def raw(n: int, **over) -> list[dict]:
    return [
        {
            "idem_key": f"gmail:acct:email:{i:04d}",
            "source_system": "gmail",
            "connection_name": "acct",
            "object_type": "email",
            "external_id": str(i),
            "payload": {"subject": f"s{i}", "n": i},
            "first_seen": T0,
            "last_seen": T0,
            **over,
        }
        for i in range(n)
    ]


def upsert(rows: list[dict], table: str = "raw_objects", dataset: str = "raw") -> dict:
    return {
        "id": "op",
        "method": "bq.upsert",
        "params": {
            "dataset": dataset,
            "table": table,
            "key_columns": ["idem_key"],
            "rows": rows,
            "skip_update_columns": ["first_seen"],
            "volatile_columns": ["last_seen"],
        },
    }


def staging_tables(bq: BigQueryBackend) -> list[str]:
    """Tables left in the staging dataset (none when it was never needed)."""
    try:
        found = bq.client.list_tables(f"{bq.project}.{bq.staging_dataset}")
        return [t.table_id for t in found]
    except NotFound:
        return []


def test_declared_schema_types_and_clustering(bq: BigQueryBackend) -> None:
    bq.execute(plan_ops(upsert(raw(2))), dry_run=False)
    table = bq.client.get_table(f"{bq.project}.{bq.prefix}raw.raw_objects")
    types = {f.name: f.field_type for f in table.schema}
    assert types["payload"] == "JSON" and types["source_ts"] == "TIMESTAMP"
    assert types["first_seen"] == "TIMESTAMP" and types["idem_key"] == "STRING"
    assert table.clustering_fields == ["source_system", "connection_name", "object_type"]
    assert bq.prefix.startswith("t") and table.dataset_id == f"{bq.prefix}raw"
    assert staging_tables(bq) == []  # dropped after the MERGE


def test_large_batch_goes_through_a_load_job_and_reruns_unchanged(bq: BigQueryBackend) -> None:
    rows = raw(2000)
    [first] = bq.execute(plan_ops(upsert(rows)), dry_run=False)
    assert (first["inserted"], first["updated"], first["unchanged"]) == (2000, 0, 0)
    [again] = bq.execute(plan_ops(upsert(rows)), dry_run=False)
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 2000)
    jobs = list(bq.client.list_jobs(max_results=50))
    queries = [j.query for j in jobs if getattr(j, "query", None)]
    assert queries and max(len(q) for q in queries) < 5000  # rows never ride in SQL text
    assert any(j.job_type == "load" for j in jobs)


def test_failure_inside_the_transaction_rolls_back_every_write(bq: BigQueryBackend) -> None:
    bq.execute(plan_ops(upsert(raw(3))), dry_run=False)
    before = bq.query(read({"dataset": "raw", "table": "raw_objects", "order_by": "idem_key"}))
    ops = [
        upsert(raw(5, external_id="changed")),
        {"id": "w", "method": "wal.append", "params": {"table": "journal", "rows": [{"a": 1}]}},
        # a read inside the plan of a table nobody wrote: fails after both writes ran
        {"id": "q", "method": "bq.query", "params": {"dataset": "derived", "table": "nope"}},
    ]
    with pytest.raises(OpFailure) as info:
        bq.execute(plan_ops(*ops), dry_run=False)
    assert info.value.index == 2 and "derived.nope" in str(info.value.cause)
    after = bq.query(read({"dataset": "raw", "table": "raw_objects", "order_by": "idem_key"}))
    assert after == before
    assert bq.query(read({"dataset": "wal", "table": "journal"})) == []  # created empty, no rows
    assert staging_tables(bq) == []


def test_reads_inside_a_plan_see_its_earlier_writes(bq: BigQueryBackend) -> None:
    ops = [
        upsert(raw(2)),
        {"id": "q", "method": "bq.query", "params": {"dataset": "raw", "table": "raw_objects"}},
    ]
    _, result = bq.execute(plan_ops(*ops), dry_run=False)
    assert result["rows"] == 2 and len(result["items"]) == 2


def test_dry_run_leaves_targets_and_staging_untouched(bq: BigQueryBackend) -> None:
    [res] = bq.execute(plan_ops(upsert(raw(3))), dry_run=True)
    assert res["inserted"] == 3
    datasets = {d.dataset_id for d in bq.client.list_datasets()}
    assert f"{bq.prefix}raw" not in datasets
    assert staging_tables(bq) == []


def test_type_mismatch_names_column_and_count_not_values(bq: BigQueryBackend) -> None:
    bq.execute(plan_ops(upsert(raw(1))), dry_run=False)
    rows = [
        {"run_id": "r1", "rows_read": "many", "started_at": "secret@example.com"},
        {"run_id": "r2", "rows_read": 3},
    ]
    params = {"dataset": "ops", "table": "runs", "rows": rows}
    op = {"id": "x", "method": "bq.insert", "params": params}
    with pytest.raises(OpFailure) as info:
        bq.execute(plan_ops(op), dry_run=False)
    message = str(info.value.cause)
    assert "ops.runs" in message and "rows_read (BIGINT): 1 value(s)" in message
    assert "started_at" in message and "secret@example.com" not in message
    assert info.value.cause.classification == "permanent"


def test_views_run_unchanged_bigquery_sql(bq: BigQueryBackend) -> None:
    bq.execute(plan_ops(upsert(raw(3))), dry_run=False)
    view = (
        "CREATE OR REPLACE VIEW derived.subjects AS "
        "SELECT r.idem_key, JSON_VALUE(r.payload, '$.subject') AS subject, "
        "SAFE_CAST(JSON_VALUE(r.payload, '$.n') AS INT64) AS n, "
        "COUNTIF(o.idem_key IS NOT NULL) AS observed "
        "FROM raw.raw_objects r LEFT JOIN derived.observations o "
        "ON o.measurement_event_idem_key = r.idem_key "
        "WHERE NOT EXISTS (SELECT 1 FROM canonical.canonical_objects c "
        "WHERE c.idem_key = CONCAT(r.idem_key, '#x')) GROUP BY 1, 2, 3"
    )
    # observations and canonical_objects were never written: created empty (declared)
    bq.execute(
        plan_ops({"id": "v", "method": "bq.execute", "params": {"sql": view}}), dry_run=False
    )
    rows = bq.sql("SELECT subject, n, observed FROM derived.subjects ORDER BY n")
    assert rows == [{"subject": f"s{i}", "n": i, "observed": 0} for i in range(3)]


def test_permanent_errors_name_the_table(bq: BigQueryBackend) -> None:
    view = "CREATE VIEW derived.v AS SELECT x FROM derived.never_written"
    with pytest.raises(OpFailure) as info:
        bq.execute(
            plan_ops({"id": "v", "method": "bq.execute", "params": {"sql": view}}), dry_run=False
        )
    cause = info.value.cause
    assert cause.classification == "permanent" and "never_written" in cause.message
    with pytest.raises(PermanentError, match="raw.not_there") as sql_info:
        bq.sql("SELECT * FROM raw.not_there")
    assert sql_info.value.classification == "permanent"


def test_all_six_parameter_types_round_trip(bq: BigQueryBackend) -> None:
    """STRING, INT64, FLOAT64, BOOL, TIMESTAMP and JSON as the server sees them."""
    p = bqsql.query_parameter
    when = dt.datetime(2026, 11, 29, 6, 30, tzinfo=dt.UTC)
    params = [p("s", "text"), p("i", 42), p("f", 2.5), p("b", True), p("t", T0, "TIMESTAMPTZ")]
    params += [p("j", {"k": [1, 2]}), p("w", when)]
    sql = (
        "SELECT @s AS s, @i + 1 AS i, @f * 2 AS f, NOT @b AS b, "
        "TIMESTAMP_ADD(@t, INTERVAL 1 HOUR) AS t, JSON_VALUE(@j, '$.k[1]') AS j, "
        "JSON_TYPE(@j) AS jt, @w AS w"
    )
    config = bigquery.QueryJobConfig(query_parameters=params)
    [row] = bq.client.query_and_wait(sql, job_config=config)
    assert dict(row) == {
        "s": "text",
        "i": 43,
        "f": 5.0,
        "b": False,
        "t": dt.datetime(2026, 11, 29, 7, tzinfo=dt.UTC),
        "j": "2",
        "jt": "object",
        "w": when,
    }


def test_json_and_timestamps_cross_the_boundary_like_duckdb(bq: BigQueryBackend) -> None:
    row = {"idem_key": "k", "meta": {"b": 2, "a": [1, {"z": None}]}, "at": "2026-11-29T06:00:00Z"}
    params = {"dataset": "derived", "table": "free", "key_columns": ["idem_key"], "rows": [row]}
    op = {"id": "m", "method": "bq.upsert", "params": params}
    bq.execute(plan_ops(op), dry_run=False)
    [text] = bq.query(read({"dataset": "derived", "table": "free"}))
    assert text == {"idem_key": "k", "meta": '{"a":[1,{"z":null}],"b":2}', "at": T0}
    [parsed] = bq.query(
        read({"dataset": "derived", "table": "free", "parse_json_columns": ["meta"]})
    )
    assert parsed["meta"] == json.loads(text["meta"])


def test_resource_is_a_dagster_gcp_resource(bq_emulator: bigquery_emulator.Emulator) -> None:
    from dagster_gcp import BigQueryResource

    resource = LorchestraBigQueryResource(project="local", api_endpoint=bq_emulator.url)
    assert isinstance(resource, BigQueryResource)
    with resource.get_client() as client:
        assert [tuple(r.values()) for r in client.query_and_wait("SELECT 1 AS x")] == [(1,)]
    env = {"LORCHESTRA_BQ_ENDPOINT": bq_emulator.url, "LORCHESTRA_BQ_DATASET_PREFIX": "p_"}
    from_env = LorchestraBigQueryResource.from_env(env)
    assert from_env.config() == BigQueryConfig.from_env(env)
    assert from_env.dataset_prefix == "p_" and from_env.project == "local"


def test_service_builds_bigquery_from_env(bq_emulator: bigquery_emulator.Emulator, tmp_path):
    env = bq_emulator.env(prefix="envtest_")
    settings = Settings.from_env(env, home=tmp_path)
    backend = make_warehouse(settings)
    try:
        assert isinstance(backend, WarehouseBackend) and backend.name == "bigquery"
        assert isinstance(backend, BigQueryBackend) and backend.prefix == "envtest_"
        assert backend.query(read({"dataset": "derived", "table": "observations"})) == []
    finally:
        backend.close()
    with pytest.raises(PermanentError, match="GOOGLE_CLOUD_PROJECT"):
        BigQueryConfig.from_env({})
    assert BigQueryConfig.from_env({"GOOGLE_CLOUD_PROJECT": "p"}).anonymous is None
    with pytest.raises(PermanentError, match="prefix"):
        bad = {**env, "LORCHESTRA_BQ_DATASET_PREFIX": "bad-prefix"}
        BigQueryConfig.from_env(bad).make_backend()

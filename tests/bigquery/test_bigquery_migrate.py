"""Moving an embedded DuckDB warehouse into BigQuery (the emulator)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kit import plan_ops, read

from lorchestra_dagster.storacle.backends.bigquery import BigQueryBackend
from lorchestra_dagster.storacle.backends.bigquery_migrate import copy_warehouse
from lorchestra_dagster.storacle.backends.duckdb import DuckDBBackend

pytestmark = pytest.mark.e2e

T0 = "2026-11-29T06:00:00+00:00"


def seed(duck: DuckDBBackend) -> None:
    raw = [
        {
            "idem_key": f"gmail:acct:email:{i}",
            "source_system": "gmail",
            "connection_name": "acct",
            "object_type": "email",
            "payload": {"subject": f"s{i}", "labels": ["a"], "quote": '"x"'},
            "first_seen": T0,
            "last_seen": T0,
        }
        for i in range(7)
    ]
    steps = [
        {"run_id": "r1", "step_id": s, "status": "succeeded", "rows_out": n, "manifest": {"n": n}}
        for n, s in enumerate(["read", "build", "submit"])
    ]
    journal = [{"event": "e1", "at": T0, "detail": {"k": 1}}, {"event": "e2", "at": T0}]
    ops = [
        {"id": "1", "method": "bq.upsert", "params": {
            "dataset": "raw", "table": "raw_objects", "key_columns": ["idem_key"], "rows": raw}},
        {"id": "2", "method": "bq.upsert", "params": {
            "dataset": "ops", "table": "step_runs", "key_columns": ["run_id", "step_id"],
            "rows": steps}},
        {"id": "3", "method": "wal.append", "params": {"table": "journal", "rows": journal}},
    ]  # fmt: skip
    duck.execute(plan_ops(*ops), dry_run=False)


def snapshot(backend, dataset: str, table: str, order: list[str], json_cols: list[str]):
    return backend.query(
        read(
            {"dataset": dataset, "table": table, "order_by": order, "parse_json_columns": json_cols}
        )
    )


def test_copy_duckdb_warehouse_into_bigquery_then_rerun_changes_nothing(
    bq: BigQueryBackend, tmp_path: Path
) -> None:
    duck = DuckDBBackend(tmp_path / "warehouse.duckdb")
    try:
        seed(duck)
        dry = copy_warehouse(duck, bq, batch_rows=3, dry_run=True)
        assert {(s["dataset"], s["table"]): s["inserted"] for s in dry} == {
            ("ops", "step_runs"): 3,
            ("raw", "raw_objects"): 7,
            ("wal", "journal"): 2,
        }
        first = copy_warehouse(duck, bq, batch_rows=3)
        assert [(s["table"], s["mode"], s["inserted"]) for s in first] == [
            ("step_runs", "upsert", 3),
            ("raw_objects", "upsert", 7),
            ("journal", "append", 2),
        ]
        for dataset, table, order, json_cols in (
            ("raw", "raw_objects", ["idem_key"], ["payload"]),
            ("ops", "step_runs", ["run_id", "step_id"], ["manifest"]),
            ("wal", "journal", ["event"], ["detail"]),
        ):
            assert snapshot(bq, dataset, table, order, json_cols) == snapshot(
                duck, dataset, table, order, json_cols
            )
        again = copy_warehouse(duck, bq, batch_rows=3)
        assert [(s["table"], s["inserted"], s["updated"], s["skipped"]) for s in again] == [
            ("step_runs", 0, 0, False),
            ("raw_objects", 0, 0, False),
            ("journal", 0, 0, True),
        ]
        assert sum(s["unchanged"] for s in again) == 10
    finally:
        duck.close()

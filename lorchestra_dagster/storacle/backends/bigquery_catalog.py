"""Datasets, tables and staging of the BigQuery backend (everything before the DML).

The backend's write path needs, in order: the dataset, the target table with
its declared or inferred schema (columns added, INT64 widened), and a staging
table loaded by a load job. All of that is DDL or a load, which BigQuery keeps
out of multi-statement transactions, so it lives here, apart from the
transactional part in ``bigquery.py``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import bigquery
from sqlglot import exp

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.storacle import tables
from lorchestra_dagster.storacle.backends import bigquery_sql as bqsql
from lorchestra_dagster.storacle.backends.bigquery_errors import map_error
from lorchestra_dagster.storacle.sql import ident

log = logging.getLogger(__name__)

STAGING_TTL = dt.timedelta(hours=2)  # safety net if a process dies before dropping staging


class BigQueryCatalog:
    """Names, datasets, table schemas (cached) and staging tables of one project/prefix.

    Args:
        client: the backend's ``bigquery.Client``.
        dataset_prefix: prepended to raw/canonical/derived/wal/ops.
        location: where datasets are created.
    """

    def __init__(self, client: bigquery.Client, *, dataset_prefix: str, location: str) -> None:
        if dataset_prefix and not tables.is_identifier(dataset_prefix + "x"):
            raise PermanentError(
                f"LORCHESTRA_BQ_DATASET_PREFIX {dataset_prefix!r} is not a valid dataset prefix",
                code="bq_config",
            )
        self.client = client
        self.project = client.project
        self.prefix = dataset_prefix
        self.location = location
        self.datasets: set[str] = set()
        self._tables: dict[tuple[str, str], dict[str, str]] = {}

    def forget(self) -> None:
        """Drop cached schemas (after DDL or a failure that may come from a stale one)."""
        self._tables.clear()

    # -- names -------------------------------------------------------------------------------

    def dataset_id(self, dataset: str) -> str:
        """BigQuery dataset id of a lorchestra dataset (prefix applied to the five)."""
        ident(dataset, "dataset")
        return self.prefix + dataset if dataset in tables.DATASETS else dataset

    def path(self, dataset: str, table: str) -> str:
        return bqsql.table_path(self.project, self.dataset_id(dataset), table)

    def table_id(self, dataset: str, table: str) -> str:
        ident(table, "table")
        return f"{self.project}.{self.dataset_id(dataset)}.{table}"

    def table_ref(self, dataset: str, table: str) -> exp.Table:
        return exp.Table(
            this=ident(table, "table"),
            db=exp.to_identifier(self.dataset_id(dataset), quoted=True),
            catalog=exp.to_identifier(self.project, quoted=True),
        )

    # -- catalog -----------------------------------------------------------------------------

    def ensure_dataset(self, dataset: str) -> None:
        self.ensure_dataset_id(self.dataset_id(dataset))

    def ensure_dataset_id(self, ds_id: str, *, expiration: dt.timedelta | None = None) -> None:
        if ds_id in self.datasets:
            return
        ds = bigquery.Dataset(f"{self.project}.{ds_id}")
        ds.location = self.location
        if expiration is not None:
            ds.default_table_expiration_ms = int(expiration.total_seconds() * 1000)
        self.client.create_dataset(ds, exists_ok=True)
        self.datasets.add(ds_id)

    def get_table(self, dataset: str, table: str) -> dict[str, str] | None:
        """Column types of ``dataset.table`` or None when it does not exist.

        Existing tables are cached per backend: their columns only grow, and a
        batch with a column the cache lacks re-reads the table before adding it.
        Any failed op or DDL clears the cache.
        """
        key = (dataset, table)
        cached = self._tables.get(key)
        if cached is not None:
            return cached
        try:
            found = self.client.get_table(self.table_id(dataset, table))
        except gexc.NotFound:
            return None
        self._tables[key] = bqsql.columns_of(found)
        return self._tables[key]

    def ensure_table(
        self, dataset: str, table: str, rows: list[dict[str, Any]]
    ) -> tuple[dict[str, str], list[str]]:
        """Create the table (declared or inferred) or add the batch columns it lacks.

        Same rules as the DuckDB backend: a declared table gets all its declared
        columns; other columns are inferred from the batch. Returns the table's
        column types and the batch's columns in order.
        """
        batch_cols = batch_columns(rows, f"{dataset}.{table}")
        existing = self.get_table(dataset, table) or {}
        if any(c not in existing for c in batch_cols):
            self._tables.pop((dataset, table), None)  # re-read: another process may have added
            existing = self.get_table(dataset, table) or {}
        missing = [c for c in batch_cols if c not in existing]
        spec = tables.declared(dataset, table)
        if not missing:
            return self.widen(dataset, table, rows, existing, spec), batch_cols
        known = dict(spec.columns) if spec else {}
        inferred = tables.infer_columns([{c: r.get(c) for c in missing} for r in rows])
        add = {c: known.get(c) or inferred[c] for c in missing}
        self._tables.pop((dataset, table), None)
        if not existing:
            self.ensure_dataset(dataset)
            columns = {**known, **add} if spec else add
            bq_table = bigquery.Table(
                self.table_id(dataset, table), schema=bqsql.schema_fields(columns)
            )
            clustering = bqsql.CLUSTERING.get((dataset, table))
            if clustering:
                bq_table.clustering_fields = clustering
            self.client.create_table(bq_table, exists_ok=True)
        else:
            found = self.client.get_table(self.table_id(dataset, table))
            found.schema = [*found.schema, *bqsql.schema_fields(add)]
            self.client.update_table(found, ["schema"])
        existing = self.get_table(dataset, table) or {}
        return self.widen(dataset, table, rows, existing, spec), batch_cols

    def widen(
        self,
        dataset: str,
        table: str,
        rows: list[dict[str, Any]],
        existing: dict[str, str],
        spec: tables.TableSchema | None,
    ) -> dict[str, str]:
        """Widen inferred INT64 columns that meet fractions to FLOAT64 (as DuckDB does)."""
        declared_cols = spec.columns if spec else {}
        for c in [c for c, kind in existing.items() if kind == tables.BIGINT]:
            if c not in declared_cols and bqsql.widened(rows, c):
                self.client.query_and_wait(
                    f"ALTER TABLE {self.path(dataset, table)} "
                    f"ALTER COLUMN {bqsql.q(c)} SET DATA TYPE FLOAT64"
                )
                self._tables.pop((dataset, table), None)
                existing = {**existing, c: tables.DOUBLE}
        return existing

    @property
    def staging_dataset(self) -> str:
        """Scratch dataset for load jobs; its tables expire on their own after STAGING_TTL."""
        return f"{self.prefix}lorchestra_staging"

    def load_staging(
        self, dataset: str, table: str, rows: list[dict[str, Any]], columns: dict[str, str]
    ) -> str:
        """Load rows into a fresh staging table (one load job); returns its path.

        Staging lives in its own dataset whose default table expiration removes
        anything a crashed process left behind; normally ``execute`` drops it.
        """
        label = f"{dataset}.{table}"
        payload = convert_rows(rows, columns, label)
        self.ensure_dataset_id(self.staging_dataset, expiration=STAGING_TTL)
        name = f"{dataset}__{table}__{uuid.uuid4().hex[:12]}"
        table_id = f"{self.project}.{self.staging_dataset}.{name}"
        config = bigquery.LoadJobConfig(
            schema=bqsql.schema_fields(columns, staging=True),
            create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
        )
        self.client.load_table_from_json(payload, table_id, job_config=config).result()
        return bqsql.table_path(self.project, self.staging_dataset, name)

    def drop(self, path: str) -> None:
        """Delete a staging table. A failure is logged, not raised: it must not hide
        the plan's own outcome, and the staging dataset's expiration removes it."""
        table_id = path.replace("`", "")
        try:
            self.client.delete_table(table_id, not_found_ok=True)
        except Exception as err:  # noqa: BLE001 - logged with its classification
            mapped = map_error(err, where=self.staging_dataset, action="drop staging")
            log.warning("BigQuery staging table not dropped (expires on its own): %s", mapped)

    def dataset_exists(self, dataset: str) -> bool:
        """True when the (prefixed) dataset exists; remembered once seen."""
        ds_id = self.dataset_id(dataset)
        if ds_id in self.datasets:
            return True
        try:
            self.client.get_dataset(f"{self.project}.{ds_id}")
        except gexc.NotFound:
            return False
        self.datasets.add(ds_id)
        return True

    def create_declared(self, dataset: str, table: str) -> None:
        """Create an empty declared table a view reads before anything was written to it.

        BigQuery checks a view's tables when the view is created; a declared table
        has a known shape, so creating it empty lets the view exist (showing no rows)
        on a fresh warehouse, as on DuckDB.
        """
        spec = tables.declared(dataset, table)
        if spec is None:
            return  # not ours to invent: BigQuery's notFound names it
        self.ensure_dataset(dataset)
        bq_table = bigquery.Table(
            self.table_id(dataset, table), schema=bqsql.schema_fields(spec.columns)
        )
        clustering = bqsql.CLUSTERING.get((dataset, table))
        if clustering:
            bq_table.clustering_fields = clustering
        self.client.create_table(bq_table, exists_ok=True)


def batch_columns(rows: list[dict[str, Any]], label: str) -> list[str]:
    cols = list(dict.fromkeys(c for row in rows for c in row))
    for name in cols:
        ident(name, f"column of {label}")
    return cols


def convert_rows(
    rows: list[dict[str, Any]], columns: dict[str, str], label: str
) -> list[dict[str, Any]]:
    """Rows as NDJSON-ready dicts typed for the staging schema.

    A value that does not fit its column is a permanent error naming the column
    and how many values failed (counts only: values may be client data).
    """
    bad: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for row in rows:
        converted: dict[str, Any] = {}
        for name, kind in columns.items():
            try:
                converted[name] = bqsql.load_value(row.get(name), kind)
            except (TypeError, ValueError, OverflowError):
                bad[name] = bad.get(name, 0) + 1
                converted[name] = None
        out.append(converted)
    if bad:
        detail = "; ".join(
            f"column {c} ({columns[c]}): {n} value(s) cannot be converted" for c, n in bad.items()
        )
        raise PermanentError(
            f"rows for {label} do not fit the table's types: {detail}", code="type_mismatch"
        )
    return out

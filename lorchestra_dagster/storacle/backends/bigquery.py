"""The production warehouse: BigQuery through the google-cloud-bigquery client.

Semantics mirror ``backends/duckdb.py`` (same counts, same dedupe, same JSON-safe
results); the mechanics are BigQuery's:

- Rows reach BigQuery by **load jobs** into short-lived staging tables (never
  streaming inserts, never values spliced into a query: queries are capped in
  size and streaming buffers cannot be updated for a while).
- Writes of a plan run in **one multi-statement transaction** inside a session:
  ``BEGIN TRANSACTION``, one ``MERGE``/``INSERT`` per op (each a job, so DML
  stats give per-op counts), ``COMMIT``. Any failure rolls the transaction back
  and aborts the session, so the targets are untouched.
- A **dry run** loads staging (scratch tables only) and counts with a read-only
  join against the targets; nothing in raw/canonical/derived/wal/ops changes.
- BigQuery forbids DDL on permanent tables inside a transaction, so table and
  column creation (and ``bq.execute`` views) run before the transaction opens.
  A plan that fails in its DML therefore can leave a new empty table or view
  behind, never changed rows.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from google.api_core import exceptions as gexc
from google.cloud import bigquery
from pydantic import BaseModel, ValidationError
from sqlglot import exp

from lorchestra_dagster.errors import LorchestraError, PermanentError
from lorchestra_dagster.storacle import tables, values
from lorchestra_dagster.storacle.backends import bigquery_sql as bqsql
from lorchestra_dagster.storacle.backends.base import OpFailure, write_result
from lorchestra_dagster.storacle.backends.bigquery_errors import map_error
from lorchestra_dagster.storacle.params import (
    ExecuteParams,
    InsertParams,
    UpsertParams,
    WalAppendParams,
)
from lorchestra_dagster.storacle.query import QueryParams
from lorchestra_dagster.storacle.sql import build_select, check_read_only, ident, transpile_ddl

DIALECT = "bigquery"
log = logging.getLogger(__name__)
STAGING_TTL = dt.timedelta(hours=2)  # safety net if a process dies before dropping staging
_WRITE_METHODS = ("bq.upsert", "bq.insert", "wal.append")


@dataclass
class _Prepared:
    """One op after the pre-transaction phase (params checked, staging loaded)."""

    index: int
    method: str
    result: dict[str, Any]
    dataset: str | None = None
    table: str | None = None
    staging: str | None = None  # full path of the staging table
    columns: dict[str, str] = field(default_factory=dict)  # batch columns -> storacle types
    upsert: UpsertParams | None = None
    query: QueryParams | None = None
    ddl: str | None = None
    target_missing: bool = False
    missing_in_target: list[str] = field(default_factory=list)  # dry run: columns to be added
    create_datasets: list[str] = field(default_factory=list)  # bq.execute: datasets it creates in
    reads: list[tuple[str, str]] = field(default_factory=list)  # bq.execute: tables it names
    rows: int = 0  # rows after dedupe


class BigQueryBackend:
    """``WarehouseBackend`` on BigQuery (or the local-bigquery emulator).

    Args:
        client: a ``bigquery.Client`` (from ``LorchestraBigQueryResource``); owned
            by the backend and closed by ``close()``.
        dataset_prefix: prepended to raw/canonical/derived/wal/ops.
        location: where datasets are created and jobs run.
    """

    name = "bigquery"

    def __init__(
        self, client: bigquery.Client, *, dataset_prefix: str = "", location: str = "US"
    ) -> None:
        if dataset_prefix and not tables.is_identifier(dataset_prefix + "x"):
            raise PermanentError(
                f"LORCHESTRA_BQ_DATASET_PREFIX {dataset_prefix!r} is not a valid dataset prefix",
                code="bq_config",
            )
        self.client = client
        self.project = client.project
        self.prefix = dataset_prefix
        self.location = location
        self._datasets: set[str] = set()
        self._tables: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    # -- names -------------------------------------------------------------------------------

    def dataset_id(self, dataset: str) -> str:
        """BigQuery dataset id of a lorchestra dataset (prefix applied to the five)."""
        ident(dataset, "dataset")
        return self.prefix + dataset if dataset in tables.DATASETS else dataset

    def path(self, dataset: str, table: str) -> str:
        return bqsql.table_path(self.project, self.dataset_id(dataset), table)

    def _table_id(self, dataset: str, table: str) -> str:
        ident(table, "table")
        return f"{self.project}.{self.dataset_id(dataset)}.{table}"

    def _table_ref(self, dataset: str, table: str) -> exp.Table:
        return exp.Table(
            this=ident(table, "table"),
            db=exp.to_identifier(self.dataset_id(dataset), quoted=True),
            catalog=exp.to_identifier(self.project, quoted=True),
        )

    # -- catalog -----------------------------------------------------------------------------

    def _ensure_dataset(self, dataset: str) -> None:
        self._ensure_dataset_id(self.dataset_id(dataset))

    def _ensure_dataset_id(self, ds_id: str, *, expiration: dt.timedelta | None = None) -> None:
        if ds_id in self._datasets:
            return
        ds = bigquery.Dataset(f"{self.project}.{ds_id}")
        ds.location = self.location
        if expiration is not None:
            ds.default_table_expiration_ms = int(expiration.total_seconds() * 1000)
        self.client.create_dataset(ds, exists_ok=True)
        self._datasets.add(ds_id)

    def _get_table(self, dataset: str, table: str) -> dict[str, str] | None:
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
            found = self.client.get_table(self._table_id(dataset, table))
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
        batch_cols = _batch_columns(rows, f"{dataset}.{table}")
        existing = self._get_table(dataset, table) or {}
        if any(c not in existing for c in batch_cols):
            self._tables.pop((dataset, table), None)  # re-read: another process may have added
            existing = self._get_table(dataset, table) or {}
        missing = [c for c in batch_cols if c not in existing]
        spec = tables.declared(dataset, table)
        if not missing:
            return self._widen(dataset, table, rows, existing, spec), batch_cols
        known = dict(spec.columns) if spec else {}
        inferred = tables.infer_columns([{c: r.get(c) for c in missing} for r in rows])
        add = {c: known.get(c) or inferred[c] for c in missing}
        self._tables.pop((dataset, table), None)
        if not existing:
            self._ensure_dataset(dataset)
            columns = {**known, **add} if spec else add
            bq_table = bigquery.Table(
                self._table_id(dataset, table), schema=bqsql.schema_fields(columns)
            )
            clustering = bqsql.CLUSTERING.get((dataset, table))
            if clustering:
                bq_table.clustering_fields = clustering
            self.client.create_table(bq_table, exists_ok=True)
        else:
            found = self.client.get_table(self._table_id(dataset, table))
            found.schema = [*found.schema, *bqsql.schema_fields(add)]
            self.client.update_table(found, ["schema"])
        existing = self._get_table(dataset, table) or {}
        return self._widen(dataset, table, rows, existing, spec), batch_cols

    def _widen(
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

    def _load_staging(
        self, dataset: str, table: str, rows: list[dict[str, Any]], columns: dict[str, str]
    ) -> str:
        """Load rows into a fresh staging table (one load job); returns its path.

        Staging lives in its own dataset whose default table expiration removes
        anything a crashed process left behind; normally ``execute`` drops it.
        """
        label = f"{dataset}.{table}"
        payload = _convert_rows(rows, columns, label)
        self._ensure_dataset_id(self.staging_dataset, expiration=STAGING_TTL)
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

    def _drop(self, path: str) -> None:
        table_id = path.replace("`", "")
        self.client.delete_table(table_id, not_found_ok=True)

    # -- writes ------------------------------------------------------------------------------

    def execute(self, ops: list[dict[str, Any]], *, dry_run: bool) -> list[dict[str, Any]]:
        with self._lock:
            prepared: list[_Prepared] = []
            try:
                for index, op in enumerate(ops):
                    with _failing_as(index, op):
                        prepared.append(self._prepare(index, op, dry_run=dry_run))
                for item in prepared:
                    if item.ddl is not None:
                        with _failing_as(item.index, ops[item.index]):
                            self._ddl(item, dry_run=dry_run)
                if dry_run:
                    for item in prepared:
                        with _failing_as(item.index, ops[item.index]):
                            self._count(item)
                else:
                    self._transaction(prepared, ops)
            except BaseException:
                self._tables.clear()  # a failure may come from a stale schema: re-read next time
                raise
            finally:
                for item in prepared:
                    if item.staging is not None:
                        self._drop(item.staging)
            return [item.result for item in prepared]

    def _prepare(self, index: int, op: dict[str, Any], *, dry_run: bool) -> _Prepared:
        method, params = op["method"], op["params"]
        if method == "bq.upsert":
            p = UpsertParams.model_validate(params)
            label = f"{p.dataset}.{p.table}"
            for name in (*p.key_columns, *p.skip_update_columns, *p.volatile_columns):
                ident(name, f"column of {label}")
            item = _Prepared(index, method, write_result(method, p.dataset, p.table, len(p.rows)))
            item.dataset, item.table, item.upsert = p.dataset, p.table, p
            rows = dedupe(p.rows, p.key_columns, label)
            return self._stage(item, rows, dry_run=dry_run)
        if method in ("bq.insert", "wal.append"):
            model: type[BaseModel] = InsertParams if method == "bq.insert" else WalAppendParams
            p2 = model.model_validate(params)
            dataset = getattr(p2, "dataset", "wal")
            item = _Prepared(index, method, write_result(method, dataset, p2.table, len(p2.rows)))
            item.dataset, item.table = dataset, p2.table
            return self._stage(item, list(p2.rows), dry_run=dry_run)
        if method == "bq.execute":
            p3 = ExecuteParams.model_validate(params)
            sql, datasets = transpile_ddl(p3.sql, read=p3.dialect, write=DIALECT)
            tree = sqlglot.parse_one(sql, read=DIALECT)
            item = _Prepared(index, method, write_result(method, None, None, 0))
            item.create_datasets = sorted(datasets)
            target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
            item.reads = sorted(
                {(t.db, t.name) for t in tree.find_all(exp.Table) if t.db and t.name}
                - ({(target.db, target.name)} if isinstance(target, exp.Table) else set())
            )
            tree = bqsql.qualify_tables(tree, project=self.project, prefix=self.prefix)
            item.ddl = tree.sql(dialect=DIALECT)
            return item
        if method == "bq.query":
            qp = QueryParams.model_validate(params)
            item = _Prepared(index, method, write_result(method, qp.dataset, qp.table, 0))
            item.query = qp
            return item
        raise PermanentError(f"method {method} is not a warehouse method", code="unknown_method")

    def _stage(self, item: _Prepared, rows: list[dict[str, Any]], *, dry_run: bool) -> _Prepared:
        assert item.dataset is not None and item.table is not None
        item.rows = len(rows)
        if not rows:
            return item
        if dry_run:
            batch_cols = _batch_columns(rows, f"{item.dataset}.{item.table}")
            found = self._get_table(item.dataset, item.table)
            existing = found or {}
            spec = tables.declared(item.dataset, item.table)
            known = dict(spec.columns) if spec else {}
            inferred = tables.infer_columns([{c: r.get(c) for c in batch_cols} for r in rows])
            types = {c: existing.get(c) or known.get(c) or inferred[c] for c in batch_cols}
            for c in batch_cols:
                if types[c] == tables.BIGINT and c not in known and bqsql.widened(rows, c):
                    types[c] = tables.DOUBLE
            item.target_missing = found is None
            item.columns = {c: types[c] for c in batch_cols}
            if item.method != "bq.upsert" or item.target_missing:
                _convert_rows(rows, item.columns, f"{item.dataset}.{item.table}")  # type check
                return item
            item.missing_in_target = [c for c in batch_cols if c not in existing]
        else:
            types, batch_cols = self.ensure_table(item.dataset, item.table, rows)
            item.columns = {c: types[c] for c in batch_cols}
        item.staging = self._load_staging(item.dataset, item.table, rows, item.columns)
        return item

    def _ddl(self, item: _Prepared, *, dry_run: bool) -> None:
        assert item.ddl is not None
        missing = [
            (d, t) for d, t in item.reads if tables.is_identifier(d) and not self._get_table(d, t)
        ]
        if dry_run:
            # BigQuery validates the statement and the tables it reads without running it;
            # when a real run would first create datasets or empty declared tables, that
            # check cannot pass yet and the sqlglot parse is the validation.
            targets = [self.dataset_id(d) for d in item.create_datasets]
            if not missing and all(ds in self._datasets for ds in targets):
                self.client.query(item.ddl, job_config=bigquery.QueryJobConfig(dry_run=True))
            return
        for dataset in item.create_datasets:
            self._ensure_dataset(dataset)
        for dataset, table in missing:
            self._create_declared(dataset, table)
        self._tables.clear()  # DDL may replace or drop tables
        self.client.query_and_wait(item.ddl)

    def _create_declared(self, dataset: str, table: str) -> None:
        """Create an empty declared table a view reads before anything was written to it.

        BigQuery checks a view's tables when the view is created; a declared table
        has a known shape, so creating it empty lets the view exist (showing no rows)
        on a fresh warehouse, as on DuckDB.
        """
        spec = tables.declared(dataset, table)
        if spec is None:
            return  # not ours to invent: BigQuery's notFound names it
        self._ensure_dataset(dataset)
        bq_table = bigquery.Table(
            self._table_id(dataset, table), schema=bqsql.schema_fields(spec.columns)
        )
        clustering = bqsql.CLUSTERING.get((dataset, table))
        if clustering:
            bq_table.clustering_fields = clustering
        self.client.create_table(bq_table, exists_ok=True)

    def _count(self, item: _Prepared) -> None:
        """Dry-run counts: what the transaction would insert/update, read-only."""
        r = item.result
        if item.method == "bq.query":
            items = self._select(item.query, session=None)  # type: ignore[arg-type]
            r["rows"], r["items"] = len(items), items
            return
        if item.method != "bq.upsert":
            r["inserted"] = item.rows
            return
        if item.target_missing or item.rows == 0:
            r["inserted"] = item.rows
            return
        assert item.upsert is not None and item.staging is not None
        sql = bqsql.count_sql(
            self.path(item.dataset, item.table),  # type: ignore[arg-type]
            item.staging,
            item.columns,
            key_columns=item.upsert.key_columns,
            skip_update_columns=item.upsert.skip_update_columns,
            volatile_columns=item.upsert.volatile_columns,
            missing_in_target=item.missing_in_target,
        )
        row = next(iter(self.client.query_and_wait(sql)))
        r["inserted"], r["updated"] = int(row["inserted"]), int(row["updated"])
        r["unchanged"] = item.rows - r["inserted"] - r["updated"]

    def _begin(self) -> str:
        """A new BigQuery session with an open transaction; returns the session id."""
        job = self.client.query(
            "BEGIN TRANSACTION", job_config=bigquery.QueryJobConfig(create_session=True)
        )
        job.result()
        return job.session_info.session_id

    def _abort(self, session_id: str) -> None:
        """End the session; a transaction still open is rolled back with it.

        Called after COMMIT too (sessions otherwise idle for 24 h). A failure here
        cannot undo a commit, so it is logged rather than failing the plan.
        """
        try:
            self.client.query_and_wait(
                "CALL BQ.ABORT_SESSION()", job_config=self._in_session(session_id)
            )
        except Exception as err:  # noqa: BLE001 - logged with its classification
            mapped = map_error(err, where="session", action="abort")
            log.warning("BigQuery session abort failed: %s", mapped)

    @staticmethod
    def _in_session(session_id: str, **kw: Any) -> bigquery.QueryJobConfig:
        prop = bigquery.ConnectionProperty("session_id", session_id)
        return bigquery.QueryJobConfig(connection_properties=[prop], **kw)

    def _transaction(self, prepared: list[_Prepared], ops: list[dict[str, Any]]) -> None:
        """Every write of the plan in one transaction; reads see the writes before them."""
        dml = [p.index for p in prepared if p.method in _WRITE_METHODS and p.staging is not None]
        reads = any(p.method == "bq.query" for p in prepared)
        if not dml or (len(dml) == 1 and not reads):
            # One MERGE/INSERT is atomic on its own: no session, no BEGIN/COMMIT jobs
            # (run records are one-op plans, and each job costs a round trip).
            for item in prepared:
                with _failing_as(item.index, ops[item.index]):
                    if item.method == "bq.query":
                        self._read(item, None)
                    elif item.index in dml:
                        self._write(item, None)
            return
        with _failing_as(dml[0], ops[dml[0]]):
            session_id = self._begin()
        try:
            for item in prepared:
                with _failing_as(item.index, ops[item.index]):
                    if item.method == "bq.query":
                        self._read(item, session_id)
                    elif item.index in dml:
                        self._write(item, session_id)
            with _failing_as(dml[-1], ops[dml[-1]]):
                self.client.query_and_wait(
                    "COMMIT TRANSACTION", job_config=self._in_session(session_id)
                )
        finally:
            self._abort(session_id)

    def _read(self, item: _Prepared, session_id: str | None) -> None:
        items = self._select(item.query, session=session_id)  # type: ignore[arg-type]
        item.result["rows"], item.result["items"] = len(items), items

    def _write(self, item: _Prepared, session_id: str | None) -> None:
        assert item.dataset and item.table and item.staging
        target = self.path(item.dataset, item.table)
        if item.method == "bq.upsert":
            p = item.upsert
            assert p is not None
            sql = bqsql.merge_sql(
                target,
                item.staging,
                item.columns,
                key_columns=p.key_columns,
                skip_update_columns=p.skip_update_columns,
                volatile_columns=p.volatile_columns,
            )
        else:
            sql = bqsql.insert_sql(target, item.staging, item.columns)
        config = self._in_session(session_id) if session_id else bigquery.QueryJobConfig()
        job = self.client.query(sql, job_config=config)
        job.result()
        stats = job.dml_stats
        inserted = int(stats.inserted_row_count) if stats else int(job.num_dml_affected_rows or 0)
        updated = int(stats.updated_row_count) if stats else 0
        item.result["inserted"], item.result["updated"] = inserted, updated
        if item.method == "bq.upsert":
            item.result["unchanged"] = item.rows - inserted - updated

    # -- reads -------------------------------------------------------------------------------

    def query(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            qp = QueryParams.model_validate(params)
        except ValidationError as err:
            raise PermanentError(
                f"invalid storacle.query params: {_describe(err)}", code="invalid_params"
            ) from err
        try:
            return self._select(qp, session=None)
        except LorchestraError:
            raise
        except Exception as err:  # noqa: BLE001 - classified, never swallowed
            raise map_error(err, where=f"{qp.dataset}.{qp.table}", action="query") from err

    def _select(self, qp: QueryParams, *, session: str | None) -> list[dict[str, Any]]:
        ident(qp.dataset, "dataset")
        ident(qp.table, "table")
        source = self._get_table(qp.dataset, qp.table)
        if source is None:
            if tables.declared(qp.dataset, qp.table) is not None:
                return []
            raise PermanentError(
                f"table {qp.dataset}.{qp.table} does not exist (not a declared table and "
                "never written)",
                code="unknown_table",
            )
        target = None
        if qp.incremental is not None:
            inc = qp.incremental
            ident(inc.target_dataset, "target_dataset")
            ident(inc.target_table, "target_table")
            target = self._get_table(inc.target_dataset, inc.target_table)
        built = build_select(
            qp, dialect=DIALECT, table_ref=self._table_ref, target_exists=target is not None
        )
        schemas = {"s": source, "t": target or {}}
        schemas[None] = schemas["s"]  # type: ignore[index]
        partners = bqsql.placeholder_columns(built.sql)
        params = []
        for name, value in built.params.items():
            alias, column = partners.get(name, (None, ""))
            params.append(bqsql.query_parameter(name, value, schemas.get(alias, {}).get(column)))
        config = self._in_session(session) if session else bigquery.QueryJobConfig()
        config.query_parameters = params
        rows = self.client.query_and_wait(built.sql, job_config=config)
        return _rows_out(rows, set(built.columns_json))

    def sql(self, select: str) -> list[dict[str, Any]]:
        tree = check_read_only(select, dialect=DIALECT)
        names = sorted({f"{t.db}.{t.name}" if t.db else t.name for t in tree.find_all(exp.Table)})
        tree = bqsql.qualify_tables(tree, project=self.project, prefix=self.prefix)
        try:
            rows = self.client.query_and_wait(tree.sql(dialect=DIALECT))
        except Exception as err:  # noqa: BLE001 - classified, never swallowed
            where = f"sql reading {', '.join(names) or 'no table'}"
            raise map_error(err, where=where, action="query") from err
        return _rows_out(rows, set())

    def close(self) -> None:
        self.client.close()


# -- helpers ----------------------------------------------------------------------------------


def dedupe(rows: list[dict[str, Any]], key_columns: list[str], label: str) -> list[dict[str, Any]]:
    """Last row per key wins (same rules and messages as the DuckDB backend)."""
    from lorchestra_dagster.storacle.backends.duckdb import dedupe as duckdb_dedupe

    return duckdb_dedupe(rows, key_columns, label)


def _batch_columns(rows: list[dict[str, Any]], label: str) -> list[str]:
    cols = list(dict.fromkeys(c for row in rows for c in row))
    for name in cols:
        ident(name, f"column of {label}")
    return cols


def _convert_rows(
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


def _rows_out(rows: Any, parse_json: set[str]) -> list[dict[str, Any]]:
    """JSON-safe dicts: timestamps ISO-8601 UTC, JSON columns as canonical text unless parsed."""
    fields = {f.name: f.field_type.upper() for f in (rows.schema or [])}
    out: list[dict[str, Any]] = []
    for raw in rows:
        row: dict[str, Any] = {}
        for name, value in raw.items():
            kind = fields.get(name)
            if name in parse_json:
                if kind != "JSON" and isinstance(value, str):
                    value = json.loads(value)
                row[name] = values.json_safe(value)
            elif kind == "JSON":
                row[name] = bqsql.json_text_out(value)
            else:
                row[name] = values.json_safe(value)
        out.append(row)
    return out


@contextmanager
def _failing_as(index: int, op: dict[str, Any]) -> Iterator[None]:
    """Turn any failure inside into ``OpFailure(index, classified error)``."""
    try:
        yield
    except OpFailure:
        raise
    except LorchestraError as err:
        raise OpFailure(index, err) from err
    except ValidationError as err:
        method = op.get("method", "?")
        cause = PermanentError(
            f"invalid params for {method}: {_describe(err)}", code="invalid_params"
        )
        raise OpFailure(index, cause) from err
    except Exception as err:  # noqa: BLE001 - every client error is classified, not lost
        cause = map_error(err, where=_where(op), action=str(op.get("method", "?")))
        raise OpFailure(index, cause) from err


def _where(op: dict[str, Any]) -> str:
    params = op.get("params") or {}
    table = params.get("table")
    if not table:
        return "bq.execute" if op.get("method") == "bq.execute" else str(op.get("method"))
    dataset = params.get("dataset") or ("wal" if op.get("method") == "wal.append" else "?")
    return f"{dataset}.{table}"


def _describe(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in err.errors()[:5]
    )


def make_backend(settings: Any = None, env: Any = None) -> BigQueryBackend:
    """Factory the storacle service calls for ``LORCHESTRA_BACKEND=bigquery``."""
    from lorchestra_dagster.storacle.backends.bigquery_resource import make_bigquery_backend

    return make_bigquery_backend(settings, env)

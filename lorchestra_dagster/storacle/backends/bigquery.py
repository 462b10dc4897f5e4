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

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from google.cloud import bigquery
from sqlglot import exp

from lorchestra_dagster.errors import LorchestraError, PermanentError
from lorchestra_dagster.storacle import tables, values
from lorchestra_dagster.storacle.backends import bigquery_sql as bqsql
from lorchestra_dagster.storacle.backends.base import Op, OpFailure, write_result
from lorchestra_dagster.storacle.backends.bigquery_catalog import (
    BigQueryCatalog,
    batch_columns,
    convert_rows,
)
from lorchestra_dagster.storacle.backends.bigquery_errors import map_error
from lorchestra_dagster.storacle.empty import over_empty_table
from lorchestra_dagster.storacle.params import (
    TABLE_ROW_METHODS,
    ExecuteParams,
    InsertParams,
    UpsertParams,
    WalAppendParams,
)
from lorchestra_dagster.storacle.query import QueryParams
from lorchestra_dagster.storacle.sql import build_select, check_read_only, ident, transpile_ddl
from lorchestra_dagster.storacle.values import dedupe

DIALECT = "bigquery"
log = logging.getLogger(__name__)


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
        client: a ``bigquery.Client`` (from ``BigQueryConfig.create_client``); owned
            by the backend and closed by ``close()``.
        dataset_prefix: prepended to raw/canonical/derived/wal/ops.
        location: where datasets are created and jobs run.
    """

    name = "bigquery"

    def __init__(
        self, client: bigquery.Client, *, dataset_prefix: str = "", location: str = "US"
    ) -> None:
        self.catalog = BigQueryCatalog(client, dataset_prefix=dataset_prefix, location=location)
        self.client = client
        self.project = client.project
        self.prefix = dataset_prefix
        self._lock = threading.Lock()

    @property
    def staging_dataset(self) -> str:
        """Scratch dataset of the load jobs (see ``BigQueryCatalog.staging_dataset``)."""
        return self.catalog.staging_dataset

    # -- writes ------------------------------------------------------------------------------

    def execute(self, ops: Sequence[Op], *, dry_run: bool) -> list[dict[str, Any]]:
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
                self.catalog.forget()  # a failure may come from a stale schema: re-read next time
                raise
            finally:
                for item in prepared:
                    if item.staging is not None:
                        self.catalog.drop(item.staging)
            return [item.result for item in prepared]

    def _prepare(self, index: int, op: Op, *, dry_run: bool) -> _Prepared:
        method, p = op.method, op.params
        # Dispatch on the params model (the registry's class), never on the name.
        if isinstance(p, UpsertParams):
            label = f"{p.dataset}.{p.table}"
            for name in (*p.key_columns, *p.skip_update_columns, *p.volatile_columns):
                ident(name, f"column of {label}")
            item = _Prepared(index, method, write_result(method, p.dataset, p.table, len(p.rows)))
            item.dataset, item.table, item.upsert = p.dataset, p.table, p
            rows = dedupe(p.rows, p.key_columns, label)
            return self._stage(item, rows, dry_run=dry_run)
        if isinstance(p, InsertParams | WalAppendParams):
            dataset = op.target["dataset"]
            item = _Prepared(index, method, write_result(method, dataset, p.table, len(p.rows)))
            item.dataset, item.table = dataset, p.table
            return self._stage(item, list(p.rows), dry_run=dry_run)
        if isinstance(p, ExecuteParams):
            sql, datasets = transpile_ddl(p.sql, read=p.dialect, write=DIALECT)
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
        if isinstance(p, QueryParams):
            item = _Prepared(index, method, write_result(method, p.dataset, p.table, 0))
            item.query = p
            return item
        raise PermanentError(f"method {method} is not a warehouse method", code="unknown_method")

    def _stage(self, item: _Prepared, rows: list[dict[str, Any]], *, dry_run: bool) -> _Prepared:
        assert item.dataset is not None and item.table is not None
        item.rows = len(rows)
        if not rows:
            return item
        if dry_run:
            batch_cols = batch_columns(rows, f"{item.dataset}.{item.table}")
            found = self.catalog.get_table(item.dataset, item.table)
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
            if item.upsert is None or item.target_missing:
                convert_rows(rows, item.columns, f"{item.dataset}.{item.table}")  # type check
                return item
            item.missing_in_target = [c for c in batch_cols if c not in existing]
        else:
            types, batch_cols = self.catalog.ensure_table(item.dataset, item.table, rows)
            item.columns = {c: types[c] for c in batch_cols}
        item.staging = self.catalog.load_staging(item.dataset, item.table, rows, item.columns)
        return item

    def _ddl(self, item: _Prepared, *, dry_run: bool) -> None:
        assert item.ddl is not None
        missing = [
            (d, t)
            for d, t in item.reads
            if tables.is_identifier(d) and not self.catalog.get_table(d, t)
        ]
        if dry_run:
            # BigQuery validates the statement and the tables it reads without running it;
            # when a real run would first create datasets or empty declared tables, that
            # check cannot pass yet and the sqlglot parse is the validation.
            ready = all(self.catalog.dataset_exists(d) for d in item.create_datasets)
            if not missing and ready:
                self.client.query(item.ddl, job_config=bigquery.QueryJobConfig(dry_run=True))
            return
        for dataset in item.create_datasets:
            self.catalog.ensure_dataset(dataset)
        for dataset, table in missing:
            self.catalog.create_declared(dataset, table)
        self.catalog.forget()  # DDL may replace or drop tables
        self.client.query_and_wait(item.ddl)

    def _count(self, item: _Prepared) -> None:
        """Dry-run counts: what the transaction would insert/update, read-only."""
        r = item.result
        if item.query is not None:
            items = self._select(item.query, session=None)
            r["rows"], r["items"] = len(items), items
            return
        if item.upsert is None:
            r["inserted"] = item.rows
            return
        if item.target_missing or item.rows == 0:
            r["inserted"] = item.rows
            return
        assert item.upsert is not None and item.staging is not None
        assert item.dataset is not None and item.table is not None
        sql = bqsql.count_sql(
            self.catalog.path(item.dataset, item.table),
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
        if job.session_info is None or not job.session_info.session_id:
            raise PermanentError("BigQuery opened no session for the transaction", code="session")
        return str(job.session_info.session_id)

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

    def _transaction(self, prepared: list[_Prepared], ops: Sequence[Op]) -> None:
        """Every write of the plan in one transaction; reads see the writes before them."""
        dml = [p.index for p in prepared if p.method in TABLE_ROW_METHODS and p.staging is not None]
        reads = any(p.query is not None for p in prepared)
        if not dml or (len(dml) == 1 and not reads):
            # One MERGE/INSERT is atomic on its own: no session, no BEGIN/COMMIT jobs
            # (run records are one-op plans, and each job costs a round trip).
            for item in prepared:
                with _failing_as(item.index, ops[item.index]):
                    if item.query is not None:
                        self._read(item, None)
                    elif item.index in dml:
                        self._write(item, None)
            return
        with _failing_as(dml[0], ops[dml[0]]):
            session_id = self._begin()
        try:
            for item in prepared:
                with _failing_as(item.index, ops[item.index]):
                    if item.query is not None:
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
        assert item.query is not None  # set by _prepare for every bq.query
        items = self._select(item.query, session=session_id)
        item.result["rows"], item.result["items"] = len(items), items

    def _write(self, item: _Prepared, session_id: str | None) -> None:
        assert item.dataset and item.table and item.staging
        target = self.catalog.path(item.dataset, item.table)
        p = item.upsert
        if p is not None:
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
        if item.upsert is not None:
            item.result["unchanged"] = item.rows - inserted - updated

    # -- reads -------------------------------------------------------------------------------

    def query(self, params: QueryParams) -> list[dict[str, Any]]:
        try:
            return self._select(params, session=None)
        except LorchestraError:
            raise
        except Exception as err:  # classified, never swallowed
            raise map_error(err, where=f"{params.dataset}.{params.table}", action="query") from err

    def _select(self, qp: QueryParams, *, session: str | None) -> list[dict[str, Any]]:
        ident(qp.dataset, "dataset")
        ident(qp.table, "table")
        source = self.catalog.get_table(qp.dataset, qp.table)
        if source is None:
            if tables.declared(qp.dataset, qp.table) is not None:
                return over_empty_table(qp)
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
            target = self.catalog.get_table(inc.target_dataset, inc.target_table)
        built = build_select(
            qp, dialect=DIALECT, table_ref=self.catalog.table_ref, target_exists=target is not None
        )
        # Placeholders outside a MERGE (alias None) compare with the source's columns.
        schemas: dict[str | None, dict[str, str]] = {"s": source, "t": target or {}, None: source}
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
        except Exception as err:  # classified, never swallowed
            where = f"sql reading {', '.join(names) or 'no table'}"
            raise map_error(err, where=where, action="query") from err
        return _rows_out(rows, set())

    def prepare(self) -> None:
        """Nothing to load ahead: the client is built with the backend, and rows travel
        as JSON."""

    def close(self) -> None:
        self.client.close()


# -- helpers ----------------------------------------------------------------------------------


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
def _failing_as(index: int, op: Op) -> Iterator[None]:
    """Turn any failure inside into ``OpFailure(index, classified error)``."""
    try:
        yield
    except OpFailure:
        raise
    except LorchestraError as err:
        raise OpFailure(index, err) from err
    except Exception as err:  # every client error is classified, not lost
        raise OpFailure(index, map_error(err, where=_where(op), action=op.method)) from err


def _where(op: Op) -> str:
    return op.table_name or op.method

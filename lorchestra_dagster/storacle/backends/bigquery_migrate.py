"""Copy an embedded DuckDB warehouse into BigQuery (the way up from one machine).

Every row goes through the BigQuery backend's own write path (load job into
staging, MERGE on the declared key), so the copy has the declared types,
clustering and JSON handling of a warehouse built on BigQuery from the start,
and running it again changes nothing. Tables without a declared key (the
append-only ``wal`` tables, tables inferred from plans) are appended, and only
into a table that does not exist yet in BigQuery, so a rerun never duplicates.
Views are not copied: rerun ``pipeline.views`` (the view SQL is BigQuery SQL).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.storacle import tables
from lorchestra_dagster.storacle.backends.base import Op, WarehouseBackend
from lorchestra_dagster.storacle.query import QueryParams, keyset_pages

DEFAULT_BATCH_ROWS = 5000


def _source_tables(source: WarehouseBackend) -> dict[tuple[str, str], dict[str, str]]:
    """(dataset, table) -> column -> DuckDB type, for the base tables of the five datasets."""
    rows = source.sql(
        "SELECT c.table_schema AS ds, c.table_name AS tb, c.column_name AS col, "
        "c.data_type AS kind FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
        "AND t.table_name = c.table_name "
        "WHERE t.table_type = 'BASE TABLE' ORDER BY c.table_schema, c.table_name, "
        "c.ordinal_position"
    )
    out: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        if row["ds"] in tables.DATASETS:
            out.setdefault((row["ds"], row["tb"]), {})[row["col"]] = str(row["kind"]).upper()
    return out


def _pages(
    source: WarehouseBackend,
    dataset: str,
    table: str,
    key: tuple[str, ...],
    json_columns: list[str],
    batch_rows: int,
) -> Iterator[list[dict[str, Any]]]:
    """Rows of one table in batches: keyset pages on a one-column key, else one read."""
    base: dict[str, Any] = {
        "dataset": dataset,
        "table": table,
        "parse_json_columns": json_columns,
    }
    if len(key) != 1:
        order = list(key) or None
        yield source.query(QueryParams.model_validate({**base, "order_by": order}))
        return
    yield from keyset_pages(
        lambda p: source.query(QueryParams.model_validate(p)), base, key[0], batch_rows
    )


def copy_warehouse(
    source: WarehouseBackend,
    target: WarehouseBackend,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    dry_run: bool = False,
) -> list[dict[str, Any]]:
    """Copy every table of ``source`` (DuckDB) into ``target`` (BigQuery).

    Returns one summary per table: ``{dataset, table, mode, rows, inserted,
    updated, unchanged, skipped}`` (counts only). ``dry_run`` counts what a real
    copy would write and writes nothing.
    """
    summaries: list[dict[str, Any]] = []
    for (dataset, table), columns in sorted(_source_tables(source).items()):
        spec = tables.declared(dataset, table)
        key = spec.key if spec is not None else ()
        json_columns = [c for c, kind in columns.items() if kind == tables.JSON]
        summary: dict[str, Any] = {
            "dataset": dataset,
            "table": table,
            "mode": "upsert" if key else "append",
            "rows": 0,
            "inserted": 0,
            "updated": 0,
            "unchanged": 0,
            "skipped": False,
        }
        if not key and _exists(target, dataset, table):
            summary["skipped"] = True  # appending again would duplicate every row
            summaries.append(summary)
            continue
        for page in _pages(source, dataset, table, key, json_columns, batch_rows):
            if not page:
                continue
            params: dict[str, Any] = {"dataset": dataset, "table": table, "rows": page}
            if key:
                params["key_columns"] = list(key)
            method = "bq.upsert" if key else "bq.insert"
            [result] = target.execute([Op.parse("copy", method, params)], dry_run=dry_run)
            for name in ("rows", "inserted", "updated", "unchanged"):
                summary[name] += result[name]
        summaries.append(summary)
    return summaries


def _exists(target: WarehouseBackend, dataset: str, table: str) -> bool:
    """True when ``dataset.table`` exists in the target (a read of zero rows succeeds)."""
    try:
        target.query(QueryParams(dataset=dataset, table=table, limit=0))
    except PermanentError as err:
        if err.code == "unknown_table":
            return False
        raise
    return True

"""A read of a declared table nobody wrote yet answers like SQL over an empty table.

``SELECT MAX(last_seen) AS since`` over an empty table is one row with
``since = NULL``; a plain ``SELECT *`` is no rows. A cursor query on a fresh
warehouse must see the first, or ``@run.cursor.items[0].since`` has nothing to
resolve. Rather than guess what each expression gives over no rows, the
query runs for real against an empty, typed copy of the declared table in an
in-memory DuckDB (no file, no external access). Every backend uses it.
"""

from __future__ import annotations

from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from lorchestra_dagster.storacle import tables
from lorchestra_dagster.storacle.query import QueryParams
from lorchestra_dagster.storacle.sql import EXPRESSION_DIALECT, build_select, ident


def _table_ref(dataset: str, table: str) -> exp.Table:
    return exp.Table(this=ident(table, "table"), db=ident(dataset, "dataset"))


def aggregates(qp: QueryParams) -> bool:
    """True when a column is an aggregate: SQL then returns one row even for no input."""
    for text in qp.columns:
        if text.strip() == "*":
            continue
        if sqlglot.parse_one(text, read=EXPRESSION_DIALECT).find(exp.AggFunc) is not None:
            return True
    return False


def over_empty_table(qp: QueryParams) -> list[dict[str, Any]]:
    """Rows of ``qp`` over an empty ``qp.dataset.qp.table`` (a declared table)."""
    schema = tables.declared(qp.dataset, qp.table)
    if schema is None:
        raise ValueError(f"{qp.dataset}.{qp.table} is not a declared table")
    # Validates every identifier and expression, as a read of the real table would.
    built = build_select(
        qp.model_copy(update={"incremental": None, "keyset": None}),
        dialect="duckdb",
        table_ref=_table_ref,
        target_exists=False,
    )
    if not aggregates(qp):
        return []
    columns = ", ".join(f'"{name}" {kind}' for name, kind in schema.columns.items())
    con = duckdb.connect(":memory:", config={"enable_external_access": False})
    try:
        con.execute(f'CREATE SCHEMA "{schema.dataset}"')
        con.execute(f'CREATE TABLE "{schema.dataset}"."{schema.table}" ({columns})')
        cur = con.execute(built.sql, built.params)
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()

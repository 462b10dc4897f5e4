"""BigQuery SQL for the backend: MERGE/INSERT from staging, table names, typed parameters.

Only validated identifiers (``[A-Za-z_][A-Za-z0-9_]*``, backtick-quoted) are
ever written into SQL here; row values travel through load jobs into staging
tables, and filter values through typed query parameters. Generated statements
are plain BigQuery Standard SQL (tests parse them with sqlglot's BigQuery
dialect), so the production path does not depend on what the emulator accepts.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

import sqlglot
from google.cloud import bigquery
from sqlglot import exp

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.storacle import sql as core_sql
from lorchestra_dagster.storacle import upsert
from lorchestra_dagster.storacle.tables import (
    BIGINT,
    BOOLEAN,
    DATASETS,
    DOUBLE,
    JSON,
    TIMESTAMP,
    VARCHAR,
)
from lorchestra_dagster.storacle.values import canonical_dumps, json_text, text, timestamp_text
from lorchestra_dagster.timestamps import parse_iso

DIALECT = "bigquery"

# Storacle column types (DuckDB names) -> BigQuery, and back.
TO_BQ = {
    VARCHAR: "STRING",
    JSON: "JSON",
    TIMESTAMP: "TIMESTAMP",
    BIGINT: "INT64",
    DOUBLE: "FLOAT64",
    BOOLEAN: "BOOL",
}
FROM_BQ = {
    "STRING": VARCHAR,
    "JSON": JSON,
    "TIMESTAMP": TIMESTAMP,
    "DATETIME": TIMESTAMP,
    "INTEGER": BIGINT,
    "INT64": BIGINT,
    "FLOAT": DOUBLE,
    "FLOAT64": DOUBLE,
    "NUMERIC": DOUBLE,
    "BIGNUMERIC": DOUBLE,
    "BOOLEAN": BOOLEAN,
    "BOOL": BOOLEAN,
}
# raw_objects is read by source/connection/type in every canonize job.
CLUSTERING = {("raw", "raw_objects"): ["source_system", "connection_name", "object_type"]}


def q(name: str, what: str = "identifier") -> str:
    """A validated, backtick-quoted identifier."""
    return core_sql.ident(name, what).sql(dialect=DIALECT)


def table_path(project: str, dataset: str, table: str) -> str:
    """```project`.`dataset`.`table``` (project ids may hold dashes, so always quoted)."""
    return f"`{project}`.{q(dataset, 'dataset')}.{q(table, 'table')}"


def schema_fields(
    columns: Mapping[str, str], *, staging: bool = False
) -> list[bigquery.SchemaField]:
    """BigQuery schema for storacle column types.

    Staging tables hold JSON columns as STRING (canonical JSON text): a load job
    then never has to guess whether a string is a JSON document or a JSON
    string, and the MERGE parses it with ``PARSE_JSON`` in one place.
    """
    out = []
    for name, kind in columns.items():
        bq_type = TO_BQ.get(kind, "STRING")
        if staging and bq_type == "JSON":
            bq_type = "STRING"
        out.append(bigquery.SchemaField(name, bq_type, mode="NULLABLE"))
    return out


def columns_of(table: bigquery.Table) -> dict[str, str]:
    """Storacle column types of an existing BigQuery table."""
    return {f.name: FROM_BQ.get(f.field_type.upper(), VARCHAR) for f in table.schema}


def load_value(value: Any, kind: str) -> Any:
    """A row value as it goes into a staging load (NDJSON)."""
    if value is None:
        return None
    if kind == JSON:
        return json_text(value)
    if kind == TIMESTAMP:
        stamp = timestamp_text(value)
        parse_iso(stamp or "")  # ValueError here (counted per column), not a failed load job
        return stamp
    if kind == VARCHAR:
        return text(value)
    if kind == BOOLEAN:
        return _to_bool(value)
    if kind == BIGINT:
        return _to_int(value)
    if kind == DOUBLE:
        return _to_float(value)
    return value


# Strict numbers, same rules as the DuckDB backend: 2.5 never lands in an INT64 column
# as 2 (int() truncates); it is a type error naming the column, with a count.
_INT_TEXT = re.compile(r"^[+-]?\d+$")
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _to_int(v: Any) -> int:
    if type(v) is int:
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and _INT_TEXT.match(v.strip()):
        return int(v)
    raise ValueError("not an integer")


def _to_float(v: Any) -> float:
    if type(v) in (int, float):
        return float(v)
    if isinstance(v, str):
        return float(v)
    raise ValueError("not a number")


def _to_bool(v: Any) -> bool:
    if type(v) is bool:
        return v
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return v.strip().lower() in _TRUE
    raise ValueError("not a boolean")


def widened(rows: Sequence[Mapping[str, Any]], column: str) -> bool:
    """True when an inferred INT64 column meets a fraction and must become FLOAT64."""
    return any(isinstance(r.get(column), float) and not r[column].is_integer() for r in rows)


def _source_expr(name: str, kind: str) -> str:
    column = f"s.{q(name, 'column')}"
    if kind == JSON:
        return f"PARSE_JSON({column})"
    return column


def _json_as_text(columns: Mapping[str, str]) -> upsert.Compare:
    """BigQuery's JSON has no equality: JSON columns compare as canonical text."""

    def compare(target: exp.Expr, source: exp.Expr, column: str) -> exp.Expr:
        if columns.get(column) == JSON:
            target = exp.func("TO_JSON_STRING", target)
            source = exp.func("TO_JSON_STRING", source)
        return upsert.distinct(target, source, column)

    return compare


def _upsert(
    target: str,
    staging: str,
    columns: Mapping[str, str],
    key_columns: list[str],
    skip_update_columns: list[str],
    volatile_columns: list[str],
    missing_in_target: Sequence[str] = (),
) -> upsert.Upsert:
    """``storacle.upsert``'s definition over a load-job staging table (JSON kept as text
    there, parsed once in the source query)."""
    names = list(columns)
    for name in names:
        q(name, "column")
    staged = [
        exp.Column(this=exp.to_identifier(c, quoted=True), table=exp.to_identifier(upsert.SRC))
        for c in names
    ]
    source = exp.select(
        *[
            (exp.func("PARSE_JSON", col) if columns[c] == JSON else col).as_(c, quoted=True)
            for c, col in zip(names, staged, strict=True)
        ]
    ).from_(exp.to_table(staging, dialect=DIALECT).as_(upsert.SRC))
    return upsert.Upsert(
        target=exp.to_table(target, dialect=DIALECT),
        source=source,
        columns=names,
        key_columns=list(key_columns),
        skip_update_columns=list(skip_update_columns),
        volatile_columns=list(volatile_columns),
        compare=_json_as_text(columns),
        missing_in_target=tuple(missing_in_target),
    )


def merge_sql(
    target: str,
    staging: str,
    columns: Mapping[str, str],
    *,
    key_columns: list[str],
    skip_update_columns: list[str],
    volatile_columns: list[str],
) -> str:
    """One MERGE from staging into target, touching only changed rows (``storacle.upsert``)."""
    return (
        _upsert(target, staging, columns, key_columns, skip_update_columns, volatile_columns)
        .merge()
        .sql(dialect=DIALECT)
    )


def count_sql(
    target: str,
    staging: str,
    columns: Mapping[str, str],
    *,
    key_columns: list[str],
    skip_update_columns: list[str],
    volatile_columns: list[str],
    missing_in_target: Sequence[str] = (),
) -> str:
    """Read-only counts of what ``merge_sql`` would insert and update (dry runs).

    Columns the target does not have yet (a real run would add them) compare as
    NULL on the target side, exactly as after the column is added.
    """
    u = _upsert(
        target, staging, columns, key_columns, skip_update_columns, volatile_columns,
        missing_in_target,
    )  # fmt: skip
    return u.counts().sql(dialect=DIALECT)


def insert_sql(target: str, staging: str, columns: Mapping[str, str]) -> str:
    """Append every staging row to target (``bq.insert``, ``wal.append``)."""
    names = list(columns)
    column_list = ", ".join(q(c) for c in names)
    select = ", ".join(f"{_source_expr(c, columns[c])}" for c in names)
    return f"INSERT INTO {target} ({column_list})\nSELECT {select} FROM {staging} AS s"


def create_table_sql(
    target: str, columns: Mapping[str, str], clustering: list[str] | None = None
) -> str:
    """``CREATE TABLE IF NOT EXISTS`` with the declared types (and clustering)."""
    body = ", ".join(f"{q(c)} {TO_BQ.get(k, 'STRING')}" for c, k in columns.items())
    sql = f"CREATE TABLE IF NOT EXISTS {target} ({body})"
    if clustering:
        sql += " CLUSTER BY " + ", ".join(q(c) for c in clustering)
    return sql


def qualify_tables(tree: exp.Expr, *, project: str, prefix: str) -> exp.Expr:
    """Point ``raw.x``-style references at ``project.<prefix>raw.x``.

    Only the five lorchestra datasets are rewritten; a reference already naming
    a project is left alone, so hand-written SQL may reach other datasets.
    """
    for table in tree.find_all(exp.Table):
        db = table.args.get("db")
        if db is None or table.args.get("catalog") is not None:
            continue
        name = db.name
        if name in DATASETS:
            table.set("db", exp.to_identifier(prefix + name, quoted=True))
            table.set("catalog", exp.to_identifier(project, quoted=True))
    return tree


# ---------------------------------------------------------------- query parameters


def query_parameter(name: str, value: Any, column_type: str | None = None) -> Any:
    """A typed BigQuery parameter (STRING, INT64, FLOAT64, BOOL, TIMESTAMP, JSON).

    ``column_type`` (a storacle type) is the column the value is compared with:
    BigQuery does not coerce parameters the way it coerces literals, so an ISO
    string compared with a TIMESTAMP column must be sent as a TIMESTAMP and a
    number compared with a STRING column as a STRING (DuckDB casts both).
    """
    P = bigquery.ScalarQueryParameter
    if value is None:
        return P(name, TO_BQ.get(column_type or VARCHAR, "STRING"), None)
    if isinstance(value, dict | list):
        # The client serialises JSON parameters itself: pass the object, not its text (its
        # annotations list scalars only, its JSON converter takes any JSON value).
        return P(name, "JSON", cast(Any, value))
    if isinstance(value, dt.datetime):
        return P(name, "TIMESTAMP", value if value.tzinfo else value.replace(tzinfo=dt.UTC))
    if column_type == TIMESTAMP and isinstance(value, str):
        try:
            return P(name, "TIMESTAMP", parse_iso(value))
        except ValueError as err:  # its message names the text's length, never the text
            raise PermanentError(f"filter value: {err}", code="invalid_filter") from None
    if column_type == VARCHAR and not isinstance(value, str):
        return P(name, "STRING", text(value))
    if column_type == JSON:
        return P(name, "JSON", value)
    if isinstance(value, bool):
        return P(name, "BOOL", value)
    if isinstance(value, int):
        return P(name, "FLOAT64" if column_type == DOUBLE else "INT64", value)
    if isinstance(value, float):
        return P(name, "FLOAT64", value)
    if column_type == BIGINT and isinstance(value, str) and value.lstrip("-").isdigit():
        return P(name, "INT64", int(value))
    if column_type == DOUBLE and isinstance(value, str) and _is_number(value):
        return P(name, "FLOAT64", float(value))
    # Anything else goes as STRING; BigQuery then names the type mismatch.
    return P(name, "STRING", str(value))


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def placeholder_columns(sql: str) -> dict[str, tuple[str | None, str]]:
    """For each ``@name`` in ``sql``: the (table alias, column) it is compared with.

    Lets the backend type each parameter from the table schema without the
    shared SQL builder knowing about BigQuery's parameter types.
    """
    out: dict[str, tuple[str | None, str]] = {}
    tree = sqlglot.parse_one(sql, read=DIALECT)
    for ph in tree.find_all(exp.Parameter, exp.Placeholder):
        node: exp.Expr | None = ph.parent
        while isinstance(node, exp.Paren):
            node = node.parent
        partner: exp.Expr | None = None
        if isinstance(node, exp.In):
            partner = node.this
        elif isinstance(node, exp.Binary) and not isinstance(node, exp.DPipe):
            partner = node.expression if node.this is ph else node.this
        if isinstance(partner, exp.Column) and ph.name:
            out[ph.name] = (partner.table or None, partner.name)
    return out


def json_text_out(value: Any) -> str | None:
    """A JSON column value as canonical text (what DuckDB stores and returns)."""
    if value is None:
        return None
    return canonical_dumps(value)

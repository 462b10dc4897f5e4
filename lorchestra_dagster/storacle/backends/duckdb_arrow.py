"""Rows to Arrow columns of a DuckDB table's types, strictly.

Values that already have the right Python type go to Arrow in C; anything else
is converted per value, and a value that cannot be converted without loss is a
permanent error naming the column and a count (never the value: no PHI).
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import pyarrow as pa

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.storacle import tables, values


def q(name: str) -> str:
    """Quoted identifier text (names are validated before they get here)."""
    return '"' + name.replace('"', '""') + '"'


_TEXT_KINDS = (tables.VARCHAR, tables.TIMESTAMP, "TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "DATE")
_INT_TEXT = re.compile(r"^[+-]?\d+$")
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _to_int(v: Any) -> int:
    if type(v) is int:
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and _INT_TEXT.match(v.strip()):
        return int(v)
    raise ValueError


def _to_float(v: Any) -> float:
    if type(v) in (int, float):
        return float(v)
    if isinstance(v, str):
        return float(v)
    raise ValueError


def _to_bool(v: Any) -> bool:
    if type(v) is bool:
        return v
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return v.strip().lower() in _TRUE
    raise ValueError


_NUMERIC: dict[str, tuple[pa.DataType, tuple[type, ...], Any]] = {
    tables.BIGINT: (pa.int64(), (int,), _to_int),
    "INTEGER": (pa.int64(), (int,), _to_int),
    tables.DOUBLE: (pa.float64(), (int, float), _to_float),
    tables.BOOLEAN: (pa.bool_(), (bool,), _to_bool),
}


def arrow_column(vals: list[Any], kind: str, column: str, label: str) -> pa.Array:
    """Arrow array for one column of the target type.

    The common case (values already of the right Python type) goes straight to
    Arrow in C. Numbers are converted strictly: 2.5 never lands in an int64
    column as 2 or 3 (pyarrow truncates, DuckDB rounds), it is an error naming
    the column with a count, never the value.
    """
    if kind == tables.JSON:
        return pa.array([values.json_text(v) for v in vals], type=pa.string())
    numeric = _NUMERIC.get(kind)
    if numeric is not None:
        arrow_type, exact, convert = numeric
        if not all(v is None or type(v) in exact for v in vals):
            converted, bad = [], 0
            for v in vals:
                try:
                    converted.append(None if v is None else convert(v))
                except (ValueError, TypeError, OverflowError):
                    converted.append(None)
                    bad += 1
            if bad:
                raise PermanentError(
                    f"rows for {label} do not fit the table's types: column {column} ({kind}): "
                    f"{bad} value(s) cannot be converted",
                    code="type_mismatch",
                )
            vals = converted
        return pa.array(vals, type=arrow_type)
    if kind in _TEXT_KINDS:
        try:
            return pa.array(vals, type=pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            convert_text = values.text if kind == tables.VARCHAR else values.timestamp_text
            return pa.array([convert_text(v) for v in vals], type=pa.string())
    # Other existing column types (created outside storacle): text, cast by DuckDB.
    return pa.array([values.text(v) for v in vals], type=pa.string())


def bad_columns(src: pa.Table, cols: list[str], types: dict[str, str]) -> str:
    """Which columns fail their cast and how often (counts only: no values, no PHI).

    Runs on a scratch in-memory connection: the failed cast has aborted the
    warehouse transaction.
    """
    scratch = duckdb.connect(":memory:")
    try:
        scratch.register("src", src)
        parts = []
        for c in cols:
            bad = scratch.execute(
                f"SELECT count(*) FROM src WHERE {q(c)} IS NOT NULL "
                f"AND TRY_CAST({q(c)} AS {types[c]}) IS NULL"
            ).fetchall()[0][0]
            if bad:
                parts.append(f"column {c} ({types[c]}): {bad} value(s) cannot be converted")
    finally:
        scratch.close()
    return "; ".join(parts) or "a value cannot be converted"

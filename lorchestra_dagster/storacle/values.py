"""Value conversions at the storage boundary (rows in, JSON-safe rows out)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import uuid
from typing import Any

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.storacle import jsonio

canonical_dumps = jsonio.canonical


def json_text(value: Any) -> str | None:
    """Text stored in a JSON column: canonical JSON of dicts/lists/scalars.

    A string that already holds a JSON object or array (starts with ``{`` or ``[``)
    is stored as given; any other string becomes a JSON string.
    """
    if value is None:
        return None
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped[:1] in ("{", "["):
            return value
        return json.dumps(value)
    return canonical_dumps(value)


def text(value: Any) -> str | None:
    """Text stored in a VARCHAR column (non-strings as JSON, so True -> 'true')."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return canonical_dumps(value)


def timestamp_text(value: Any) -> str | None:
    """ISO-8601 text for a timestamp column; naive datetimes are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return moment.isoformat()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).isoformat()
    return str(value)


def json_safe(value: Any) -> Any:
    """A value as it crosses the JSON boundary: timestamps as UTC ISO-8601 strings."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v) for v in value]
    return str(value)


_SCALAR = (str, int, float, bool, dt.datetime, dt.date)


def dedupe(rows: list[dict[str, Any]], key_columns: list[str], label: str) -> list[dict[str, Any]]:
    """Last row per key wins; a row without a value for a key column is a permanent error.

    Keys must be non-empty scalars. Rows keep the position of their key's first
    occurrence (with the last occurrence's values).
    """
    by_key: dict[Any, dict[str, Any]] = {}
    single = key_columns[0] if len(key_columns) == 1 else None
    for n, row in enumerate(rows):
        if single is not None:
            key: Any = row.get(single)
            ok = key is not None and key != "" and isinstance(key, _SCALAR)
        else:
            key = tuple(row.get(k) for k in key_columns)
            ok = all(v is not None and v != "" and isinstance(v, _SCALAR) for v in key)
        if not ok:
            raise _key_error(row, n, key_columns, label)
        by_key[key] = row
    return list(by_key.values())


def _key_error(row: dict[str, Any], n: int, key_columns: list[str], label: str) -> PermanentError:
    missing = [k for k in key_columns if k not in row]
    if missing:
        what = f"is missing key column {missing[0]!r}"
    elif any(row[k] is None or row[k] == "" for k in key_columns):
        what = "has an empty key column"
    else:
        what = "has a key value that is not a scalar"
    return PermanentError(
        f"row {n} of {label} {what} (key {list(key_columns)}); nothing of the plan was written",
        code="missing_key",
    )

"""Value conversions at the storage boundary (rows in, JSON-safe rows out)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import uuid
from typing import Any

from lorchestra_dagster.errors import PermanentError

# One encoder instance: json.dumps with non-default options builds a new encoder per call,
# which dominates when every row carries a payload.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
canonical_dumps = _CANONICAL.encode


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
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
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


def dedupe(rows: list[dict[str, Any]], key_columns: list[str], label: str) -> list[dict[str, Any]]:
    """Last row per key wins; a row without a value for a key column is a permanent error."""
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for n, row in enumerate(rows):
        try:
            key = tuple(row[k] for k in key_columns)
        except KeyError as err:
            raise PermanentError(
                f"row {n} of {label} is missing key column {err.args[0]!r} "
                f"(key {list(key_columns)}); nothing of the plan was written",
                code="missing_key",
            ) from None
        if any(v is None or v == "" for v in key):
            raise PermanentError(
                f"row {n} of {label} has an empty key column (key {list(key_columns)}); "
                "nothing of the plan was written",
                code="missing_key",
            )
        if any(isinstance(v, dict | list) for v in key):
            raise PermanentError(f"row {n} of {label}: key values must be scalars")
        by_key.pop(key, None)  # re-insert so the order follows the last occurrence
        by_key[key] = row
    return list(by_key.values())

"""JSON on the wire and in JSON columns, via orjson (several times faster than the stdlib
on 5,000-row plans), with the stdlib as the fallback for what orjson refuses
(integers beyond 64 bits). ``canonical_bytes`` is also what plan ids hash (see plan.py).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import orjson

_WIRE = orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS
_CANON = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_NAIVE_UTC


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _std_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return _default(value)


def dumps(obj: Any) -> bytes:
    """Wire bytes (datetimes as ISO-8601, naive ones taken as UTC)."""
    try:
        return orjson.dumps(obj, default=_default, option=_WIRE)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(obj, default=_std_default, separators=(",", ":")).encode("utf-8")


def _std_canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_std_default)


def canonical_bytes(obj: Any) -> bytes:
    """Compact UTF-8 JSON with sorted keys, datetimes as RFC 3339 (naive ones as UTC).

    Deterministic for a given value: orjson's form, or, for what orjson refuses
    (integers beyond 64 bits), the stdlib's with the same sorting and spacing.
    """
    try:
        return orjson.dumps(obj, default=_default, option=_CANON)
    except (orjson.JSONEncodeError, TypeError):
        return _std_canonical(obj).encode("utf-8")


def canonical(obj: Any) -> str:
    """``canonical_bytes`` as text, as stored in JSON columns (called once per value of a
    column, so it does not go through ``canonical_bytes``)."""
    try:
        return orjson.dumps(obj, default=_default, option=_CANON).decode("utf-8")
    except (orjson.JSONEncodeError, TypeError):
        return _std_canonical(obj)


def loads(data: bytes | bytearray | str) -> Any:
    """Parse JSON; raises ``ValueError`` (orjson.JSONDecodeError) on bad input."""
    return orjson.loads(data)

"""The one timestamp parser: ISO-8601 text, datetimes and epoch numbers to aware UTC.

Python 3.11's ``datetime.fromisoformat`` reads ``Z``, any number of fraction
digits and a space separator, so no pre-processing is needed beyond a lower-case
``z``. Errors name the length of the text, never the text: a bad timestamp may
be part of a clinical record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

#: Epoch numbers above this are milliseconds (1e11 seconds is the year 5138).
_MILLIS_ABOVE = 1e11


def parse_iso(text: str) -> datetime:
    """An aware UTC datetime from ISO-8601 text; naive text is taken as UTC.

    Raises:
        ValueError: not ISO-8601 (the message holds the length only).
    """
    stripped = text.strip()
    if stripped[-1:] == "z":
        stripped = stripped[:-1] + "Z"
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(f"a timestamp ({len(stripped)} chars) is not ISO-8601") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def parse_utc(value: Any) -> datetime | None:
    """An aware UTC datetime from a datetime (naive = UTC), epoch seconds or milliseconds
    (a number or a string of digits) or ISO-8601 text; ``None`` and ``""`` give None.

    Raises:
        ValueError: anything else (booleans included; the message never holds the value).
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        num = float(value)
        return datetime.fromtimestamp(num / 1000 if num > _MILLIS_ABOVE else num, UTC)
    if isinstance(value, str):
        return parse_iso(value)
    raise ValueError(f"a {type(value).__name__} is not a timestamp")

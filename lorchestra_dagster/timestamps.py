"""The one timestamp parser and formatter: ISO-8601 text, datetimes and epoch numbers.

``parse_utc`` reads every form the sources and the warehouse give; ``iso_utc``
and ``epoch_seconds`` are the two ways out (ISO-8601 UTC text for the vault and
the rows, epoch seconds for the sandbox's clocks).

Python 3.11's ``datetime.fromisoformat`` reads ``Z``, any number of fraction
digits and a space separator, so no pre-processing is needed beyond a lower-case
``z``. Errors name the length of the text, never the text: a bad timestamp may
be part of a clinical record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lorchestra_dagster.errors import PermanentError

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


def iso_utc(value: Any) -> str | None:
    """``parse_utc``'s result as ISO-8601 UTC text (``+00:00``); ``None`` and ``""`` stay None.

    Raises:
        PermanentError: ``bad_timestamp``, naming the text's length, never the text.
    """
    try:
        parsed = parse_utc(value)
    except ValueError as err:
        raise PermanentError(str(err), code="bad_timestamp") from None
    return parsed.isoformat() if parsed is not None else None


def epoch_seconds(value: Any) -> float:
    """``parse_utc``'s result as epoch seconds.

    Raises:
        ValueError: no value, or not a timestamp (the message never holds the value).
    """
    parsed = parse_utc(value)
    if parsed is None:
        raise ValueError("no timestamp")
    return parsed.timestamp()

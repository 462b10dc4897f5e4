"""Shared pieces of the vault renderers: folder names, front matter, stable timestamps.

The vault is rewritten file by file only when bytes change (``file.write``), so
everything here is a pure function of the view rows: no clock, no randomness,
no dict-order accidents. A second run over the same rows must produce the same
bytes, which is what makes "a rerun rewrites nothing" true.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from slugify import slugify

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.timestamps import iso_utc

#: ``projected_at`` when a file has no timestamped input at all (still stable).
EPOCH = "1970-01-01T00:00:00+00:00"


def short_id(client_id: str) -> str:
    """Eight hex characters of sha256: stable, safe in a path, no source id exposed."""
    return hashlib.sha256(client_id.encode("utf-8")).hexdigest()[:8]


def client_folder(row: Mapping[str, Any]) -> str:
    """``<lastname>-<firstname>-<short id>``, transliterated to ASCII and slugified.

    The short id keeps two clients with the same name apart and keeps the folder
    of a client stable as long as the name is; a client with no name on record
    gets ``client-<short id>``.
    """
    client_id = row.get("client_id")
    if not client_id:
        raise PermanentError("a client row has no client_id (view proj_clients)")
    parts = [slugify(str(row.get(k) or ""), max_length=40) for k in ("last_name", "first_name")]
    parts = [p for p in parts if p] or ["client"]
    return "-".join([*parts, short_id(str(client_id))])


def day(value: Any) -> str | None:
    """The UTC calendar date (``YYYY-MM-DD``) of a timestamp value."""
    iso = iso_utc(value)
    return iso[:10] if iso else None


def latest(values: Iterable[Any]) -> str:
    """The newest of some timestamps as ISO-8601 UTC, :data:`EPOCH` when there are none.

    This is ``projected_at``: derived from the inputs (their ``updated_at``), never
    from the clock, so it only moves when an input moved.
    """
    found = [iso for iso in (iso_utc(v) for v in values) if iso]
    return max(found) if found else EPOCH


def as_json(value: Any) -> Any:
    """JSON columns arrive as text unless the query parsed them; accept both."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


#: ``proj_sessions.attendance`` as the vault shows it (the source's status reason, normalised
#: by the canonizer; a session whose source says nothing shows nothing).
ATTENDANCE = {
    "attended": "attended",
    "cancelled": "cancelled",
    "no_show": "no-show",
    "scheduled": "scheduled",
}


def attendance(session: Mapping[str, Any]) -> str:
    """One session's attendance label, or "" when the source does not say."""
    return ATTENDANCE.get(str(session.get("attendance") or ""), "")


def front_matter(fields: Mapping[str, Any]) -> str:
    """A YAML front matter block (keys in the given order, safe dump, trailing newline)."""
    body = yaml.safe_dump(dict(fields), sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{body}---\n"


def md_cell(value: Any) -> str:
    """A value safe inside a markdown table cell (pipes escaped, one line)."""
    if value is None:
        return ""
    text = str(value).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return text.strip()


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def text_item(path: str, content: str) -> dict[str, Any]:
    """A ``file.write`` item for a UTF-8 text file."""
    return {"path": path, "content": content, "encoding": "utf-8"}


def index_clients(clients: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Client rows by ``client_id`` with their folder name added (``_folder``).

    Two rows for one client id mean the view is wrong (it must dedupe), so that is
    an error rather than a silent pick.
    """
    out: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(clients):
        if not isinstance(row, dict):
            raise PermanentError(f"clients item {n} is a {type(row).__name__}, not an object")
        cid = row.get("client_id")
        if not cid:
            raise PermanentError(f"clients item {n} has no client_id")
        if cid in out:
            raise PermanentError(f"clients item {n} repeats a client_id (view proj_clients)")
        out[str(cid)] = {**row, "_folder": client_folder(row)}
    return out


def require_list(
    params: Mapping[str, Any], key: str, *, id_col: str | None = None, times: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """A list-of-rows param (``[]`` when absent), checked up front with errors naming it.

    ``times`` are the timestamp columns the renderer will read: a bad one fails here,
    naming the param, the row's ``id_col`` and the column (never the value), instead of
    somewhere deep in a renderer.
    """
    value = params.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise PermanentError(f"param {key!r} must be a list of rows, got {type(value).__name__}")
    for n, row in enumerate(value):
        if not isinstance(row, dict):
            raise PermanentError(f"param {key!r} item {n} is a {type(row).__name__}, not a row")
        for col in times:
            try:
                iso_utc(row.get(col))
            except PermanentError:
                who = f"{id_col}={row.get(id_col)!r}" if id_col else f"item {n}"
                raise PermanentError(
                    f"param {key!r} row {who}: column {col!r} is not an ISO-8601 timestamp",
                    code="bad_timestamp",
                ) from None
    return value

"""The original's ``file_renderer``: one markdown file per row, from templates (pure).

The original queried the vault's SQLite with free SQL itself. Here the rows come
in as ``items`` (a ``storacle.query`` step over the projection the SQLite table
mirrors), and each becomes a ``file.write`` item ``{path, content}`` that
``plan.build`` / ``storacle.submit`` write through the vault's file backend
(atomic, 0600, only when changed, confined to the vault).

Templates are Python format strings as the original wrote them
(``'{client_folder}/contact.md'``), restricted to plain field names: no
attribute or index access (``{x.__class__}``), so a template cannot reach past
the row. A field the row lacks fails the step naming the field, never a value.
"""

from __future__ import annotations

import re
import string
from pathlib import PurePosixPath
from typing import Any

import yaml

from lorchestra_dagster.callables.base import CallContext, register, result
from lorchestra_dagster.errors import PermanentError

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: The original stamped every file with the render time; here an unchanged row must give
#: an unchanged file (so a rerun writes nothing), so this field is refused with a hint.
_CLOCK_FIELD = "_projected_at"


def _fields(template: str, what: str) -> list[str]:
    """Field names of a format string; refuses anything but plain names."""
    names = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise PermanentError(f"file_renderer: {what} is not a format string: {exc}") from None
    for _literal, name, _spec, _conv in parsed:
        if name is None:
            continue
        if not _FIELD.match(name):
            raise PermanentError(
                f"file_renderer: {what} field {{{name}}} must be a plain column name "
                "(no attribute, index or positional fields)",
                code="E_PARAMS",
            )
        if name == _CLOCK_FIELD:
            raise PermanentError(
                f"file_renderer: {what} uses {{{_CLOCK_FIELD}}}; a render time would rewrite "
                "every file on every run. Use a column of the rows (e.g. the projection's "
                "updated_at) instead",
                code="E_PARAMS",
            )
        names.append(name)
    return names


def _render(template: str, row: dict[str, Any], what: str, n: int) -> str:
    missing = sorted({f for f in _fields(template, what) if f not in row})
    if missing:
        raise PermanentError(
            f"file_renderer: row {n} has no column {missing} that {what} uses "
            f"(its columns: {sorted(row)})",
            code="E_PARAMS",
        )
    values = {k: "" if v is None else v for k, v in row.items()}
    return template.format(**values)


def base_folder(base_path: str) -> PurePosixPath:
    """The vault folder files go under.

    A relative ``base_path`` is a folder of the vault. The original wrote absolute
    ones (``~/clinical-vault/views``); as with ``sqlite_path``, every file lives in
    the vault here, so only the last folder name (``views``) is kept.
    """
    path = PurePosixPath(base_path.replace("\\", "/"))
    if path.is_absolute() or base_path.startswith("~"):
        path = PurePosixPath(path.name)
    if any(part == ".." for part in path.parts):
        raise PermanentError("file_renderer: base_path must stay inside the vault (no '..')")
    return path


@register("file_renderer")
def file_renderer(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """One ``file.write`` item per row of ``items``.

    Params:
        items: the rows (dicts) to render.
        path_template: file path relative to ``base_path`` (``'{client_folder}/contact.md'``).
        content_template: the file's markdown body.
        front_matter: optional mapping; string values are templates too, rendered into a
            YAML block above the body.
        base_path: folder of the vault the paths are under (default: the vault root).
    """
    missing = [n for n in ("path_template", "content_template") if not params.get(n)]
    if missing:
        raise PermanentError(f"file_renderer: missing required params {missing}", code="E_PARAMS")
    if "query" in params or "sqlite_path" in params:
        raise PermanentError(
            "file_renderer: 'query'/'sqlite_path' (free SQL over the vault's SQLite) is not "
            "supported; read the rows with a storacle.query step over the projection the "
            "table mirrors and pass them as items: '@run.<step>.items'",
            code="E_PARAMS",
        )
    front = params.get("front_matter") or {}
    if not isinstance(front, dict):
        raise PermanentError("file_renderer: front_matter must be a mapping")
    base = base_folder(str(params.get("base_path") or ""))
    rows = params.get("items") or []
    out = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            raise PermanentError(f"file_renderer: item {n} is not a row (a mapping)")
        rel = _render(str(params["path_template"]), row, "path_template", n)
        body = _render(str(params["content_template"]), row, "content_template", n)
        if front:
            resolved = {
                key: _render(value, row, f"front_matter.{key}", n)
                if isinstance(value, str)
                else value
                for key, value in front.items()
            }
            head = yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True)
            body = f"---\n{head}---\n\n{body}"
        out.append({"path": str(base / rel), "content": body})
    return result(out, input=len(rows))

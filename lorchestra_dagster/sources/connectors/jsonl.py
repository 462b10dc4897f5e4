"""Drop folder: ``*.jsonl`` files, one JSON object per line, each file consumed once.

A file is identified by the sha256 of its bytes, so a renamed copy is not
ingested twice and an edited file is a new file. The consumed hashes come in
with the request (read from ``raw.ingest_files`` by the job) and the files
read go out as the ``files`` output, which the job writes to
``raw.ingest_files`` after the data: a dry run writes neither, so it
consumes nothing.
"""

from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.sources.connectors.base import FetchRequest, FetchResult, StreamSettings


class JsonlSettings(StreamSettings):
    """A glob of JSONL files, relative to the catalog directory or absolute."""

    connector: Literal["jsonl"] = Field(description="jsonl")
    path: str = Field(description="glob of *.jsonl files (relative to the catalog or absolute)")


def _display(path: Path, catalog_dir: Path) -> str:
    try:
        return str(path.resolve().relative_to(catalog_dir.resolve()))
    except ValueError:
        return str(path.resolve())


def _parse(path: Path, data: bytes, stream: str, shown: str) -> list[dict[str, Any]]:
    rows = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PermanentError(
            f"stream {stream!r}: {shown} is not UTF-8 text",
            stream=stream,
            file=shown,
            code="malformed_file",
        ) from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PermanentError(
                f"stream {stream!r}: invalid JSON ({exc.msg})",
                stream=stream,
                file=shown,
                line=lineno,
                code="malformed_line",
            ) from None
        if not isinstance(obj, dict):
            raise PermanentError(
                f"stream {stream!r}: line is not a JSON object",
                stream=stream,
                file=shown,
                line=lineno,
                code="malformed_line",
            )
        rows.append(obj)
    return rows


def fetch(req: FetchRequest) -> FetchResult:
    s: JsonlSettings = req.settings
    pattern = s.path if Path(s.path).is_absolute() else str(req.catalog_dir / s.path)
    seen = set(req.consumed)
    items: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    skipped = 0
    for name in sorted(glob.glob(pattern, recursive=True)):
        path = Path(name)
        if not path.is_file():
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            skipped += 1
            continue
        if req.window.limit and items and len(items) >= req.window.limit:
            break  # whole files only, so the consumed record stays truthful
        shown = _display(path, req.catalog_dir)
        rows = _parse(path, data, req.stream, shown)
        seen.add(digest)
        items.extend(rows)
        files.append(
            {
                "file_sha256": digest,
                "stream": req.stream,
                "path": shown,
                "rows": len(rows),
                "consumed_at": req.now.isoformat(),
            }
        )
    # One page: local files, read at once; the consumed record must match what was written.
    return FetchResult([items], {"files": files, "files_skipped": skipped})

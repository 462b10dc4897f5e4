"""``<catalog>/sources.yaml``: the stream settings, validated per connector.

```yaml
streams:
  gmail_acct1:
    connector: gmail
    token_env: GMAIL_ACCT1_TOKEN
```
Credentials are never in this file, only the names of the environment
variables that hold them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.sources.connectors import CONNECTORS, StreamSettings

SOURCES_FILE = "sources.yaml"


def _stream_lines(text: str) -> dict[str, int]:
    """1-based line of each stream id under ``streams:`` (for error messages)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "streams" and isinstance(value, yaml.MappingNode):
                for skey, _ in value.value:
                    lines[str(skey.value)] = skey.start_mark.line + 1
    return lines


def _read(catalog_dir: Path) -> tuple[dict[str, Any], dict[str, int], str]:
    path = catalog_dir / SOURCES_FILE
    shown = str(path)
    if not path.is_file():
        raise PermanentError(
            f"no {SOURCES_FILE} in catalog {catalog_dir}", file=shown, code="missing_sources"
        )
    text = path.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise PermanentError(
            f"invalid YAML: {exc}", file=shown, line=mark.line + 1 if mark else None, code="yaml"
        ) from None
    streams = doc.get("streams") if isinstance(doc, dict) else None
    if not isinstance(streams, dict):
        raise PermanentError("expected a top-level 'streams:' mapping", file=shown, code="schema")
    return streams, _stream_lines(text), shown


def stream_ids(catalog_dir: Path) -> set[str]:
    """The stream ids a catalog defines (used by validation)."""
    return set(_read(Path(catalog_dir))[0])


def load_stream(catalog_dir: Path, stream: str) -> StreamSettings:
    """Validated settings of ``stream``; errors name the file, line, stream and field."""
    streams, lines, shown = _read(Path(catalog_dir))
    if stream not in streams:
        known = ", ".join(sorted(streams)) or "none"
        raise PermanentError(
            f"unknown stream {stream!r} (defined: {known})",
            file=shown,
            stream=stream,
            code="unknown_stream",
        )
    raw = streams[stream]
    line = lines.get(stream)
    if not isinstance(raw, dict) or "connector" not in raw:
        raise PermanentError(
            f"stream {stream!r} needs a mapping with 'connector:'",
            file=shown,
            line=line,
            stream=stream,
            code="schema",
        )
    connector = CONNECTORS.get(str(raw["connector"]))
    if connector is None:
        raise PermanentError(
            f"stream {stream!r}: unknown connector {raw['connector']!r} "
            f"(known: {', '.join(sorted(CONNECTORS))})",
            file=shown,
            line=line,
            stream=stream,
            code="unknown_connector",
        )
    try:
        return connector.settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(stream)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise PermanentError(
            f"stream {stream!r}: invalid settings: {problems}",
            file=shown,
            line=line,
            stream=stream,
            code="schema",
        ) from None


def check_sources(catalog_dir: Path) -> list[PermanentError]:
    """Every problem of ``sources.yaml`` in one pass (for ``lorchestra validate``).

    A catalog without the file has no streams and no problems.
    """
    catalog_dir = Path(catalog_dir)
    if not (catalog_dir / SOURCES_FILE).is_file():
        return []
    try:
        ids = stream_ids(catalog_dir)
    except PermanentError as exc:
        return [exc]
    problems = []
    for stream in sorted(ids):
        try:
            load_stream(catalog_dir, stream)
        except PermanentError as exc:
            problems.append(exc)
    return problems

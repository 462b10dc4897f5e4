"""``<catalog>/sources.yaml``: the stream settings, validated per connector.

```yaml
sources:                      # optional: how hard one run may use each source
  stripe: {max_concurrent_jobs: 1}
streams:
  gmail_acct1:
    connector: gmail
    token_env: GMAIL_ACCT1_TOKEN
```
Credentials are never in this file, only the names of the environment
variables that hold them. A source is a connector (its vendor): the streams
of one connector share the vendor's rate limits, so their jobs share one limit.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.sources.connectors import CONNECTORS, StreamSettings

SOURCES_FILE = "sources.yaml"
#: Jobs of one source running at once in a run when ``sources:`` does not say: the
#: engine's default worker count, so a run with more workers adds no load on one vendor.
DEFAULT_MAX_CONCURRENT_JOBS = 2


class SourceLimits(BaseModel):
    """How hard one run may use one source (``sources.<connector>`` in sources.yaml)."""

    model_config = ConfigDict(extra="forbid")

    max_concurrent_jobs: int = Field(
        default=DEFAULT_MAX_CONCURRENT_JOBS,
        ge=1,
        description="jobs fetching this source that run at once in one run (the engine's "
        "stage scheduler holds the others back)",
    )


@functools.lru_cache(maxsize=8)
def _key_lines(text: str, section: str = "streams") -> dict[str, int]:
    """1-based line of each key under the top-level ``section`` (for error messages).

    Cached by the file's text, as ``_parse``: read-only to callers."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == section and isinstance(value, yaml.MappingNode):
                for skey, _ in value.value:
                    lines[str(skey.value)] = skey.start_mark.line + 1
    return lines


def _read_doc(catalog_dir: Path) -> tuple[dict[str, Any], str, str]:
    """The parsed file, its text and its path as shown in errors."""
    path = catalog_dir / SOURCES_FILE
    shown = str(path)
    if not path.is_file():
        raise PermanentError(
            f"no {SOURCES_FILE} in catalog {catalog_dir}", file=shown, code="missing_sources"
        )
    text = path.read_text(encoding="utf-8")
    try:
        doc = _parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise PermanentError(
            f"invalid YAML: {exc}", file=shown, line=mark.line + 1 if mark else None, code="yaml"
        ) from None
    return doc, text, shown


@functools.lru_cache(maxsize=8)
def _parse(text: str) -> dict[str, Any]:
    """The file's mapping, parsed once per text: every ingest job of a run reads the same
    file, and parsing it (twice, with the key lines) was a tenth of a second of one core
    per job. Callers only read it (pydantic validates copies of its values)."""
    doc = yaml.safe_load(text) or {}
    return doc if isinstance(doc, dict) else {}


def _read(catalog_dir: Path) -> tuple[dict[str, Any], dict[str, int], str]:
    doc, text, shown = _read_doc(catalog_dir)
    streams = doc.get("streams")
    if not isinstance(streams, dict):
        raise PermanentError("expected a top-level 'streams:' mapping", file=shown, code="schema")
    return streams, _key_lines(text), shown


def _problems(exc: ValidationError) -> str:
    """pydantic's errors as ``field: why; ...`` (field names only, never a value)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(stream)'}: {err['msg']}"
        for err in exc.errors()
    )


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
        raise PermanentError(
            f"stream {stream!r}: invalid settings: {_problems(exc)}",
            file=shown,
            line=line,
            stream=stream,
            code="schema",
        ) from None


def _limits(catalog_dir: Path) -> tuple[dict[str, int], list[PermanentError]]:
    """Every connector's ``max_concurrent_jobs`` and the problems of ``sources:``."""
    doc, text, shown = _read_doc(catalog_dir)
    limits = dict.fromkeys(CONNECTORS, DEFAULT_MAX_CONCURRENT_JOBS)
    raw = doc.get("sources") or {}
    if not isinstance(raw, dict):
        msg = "'sources:' must map source (connector) names to their limits"
        return limits, [PermanentError(msg, file=shown, code="schema")]
    lines = _key_lines(text, "sources")
    problems = []
    for name, value in raw.items():
        line = lines.get(str(name))
        if name not in CONNECTORS:
            problems.append(
                PermanentError(
                    f"sources: unknown source {name!r} (a source is a connector: "
                    f"{', '.join(sorted(CONNECTORS))})",
                    file=shown,
                    line=line,
                    code="unknown_connector",
                )
            )
            continue
        try:
            limits[name] = SourceLimits.model_validate(value or {}).max_concurrent_jobs
        except ValidationError as exc:
            problems.append(
                PermanentError(
                    f"sources.{name}: invalid settings: {_problems(exc)}",
                    file=shown,
                    line=line,
                    code="schema",
                )
            )
    return limits, problems


def source_limits(catalog_dir: Path) -> dict[str, int]:
    """Jobs of each source (connector) that may run at once in one run.

    Every connector is present: what ``sources:`` says, else
    ``DEFAULT_MAX_CONCURRENT_JOBS``. Raises the first problem of ``sources:``.
    """
    limits, problems = _limits(Path(catalog_dir))
    if problems:
        raise problems[0]
    return limits


def source_concurrency(
    catalog_dir: Path, streams_by_job: Mapping[str, Sequence[str]]
) -> tuple[dict[str, tuple[str, ...]], dict[str, int]]:
    """The stage scheduler's groups and limits: each job's sources, each source's limit.

    A job's sources are the connectors of the streams it fetches. Nothing is read
    when no job fetches; a catalog without sources.yaml, or a stream it does not
    define, adds no source (that job's fetch fails on its own and says why). A
    broken ``sources:`` section raises, naming the file and line.
    """
    catalog_dir = Path(catalog_dir)
    wanted = {job: ids for job, ids in streams_by_job.items() if ids}
    if not wanted or not (catalog_dir / SOURCES_FILE).is_file():
        return {}, {}
    streams, _, _ = _read(catalog_dir)
    groups: dict[str, tuple[str, ...]] = {}
    for job_id, ids in wanted.items():
        found = [
            str(raw["connector"])
            for sid in ids
            if isinstance(raw := streams.get(sid), dict) and raw.get("connector") in CONNECTORS
        ]
        if found:
            groups[job_id] = tuple(dict.fromkeys(found))
    return groups, source_limits(catalog_dir)


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
    problems = _limits(catalog_dir)[1]
    for stream in sorted(ids):
        try:
            load_stream(catalog_dir, stream)
        except PermanentError as exc:
            problems.append(exc)
    return problems

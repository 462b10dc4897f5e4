"""``injest``: fetch one stream's native objects from its vendor (or drop folder).

The result is paged (``callables.paged``): one vendor page at a time, so the
job's build and write steps run, and commit, once per page as it arrives and a
source is never whole in memory. The job's cursor must therefore only move
once the whole window was read: the ingest jobs read it from
``raw.ingest_cursors`` and write it in their last steps (see the jobs' YAML).

Params::

    source: gmail_acct1                 # stream id in <catalog>/sources.yaml
    config:
      since: '@run.cursor.items[0].since'   # MAX(source_ts) of the stream's raw rows
      window_since: '@payload.since?'       # backfill: overrides the cursor, no overlap
      until: '@payload.until?'              # backfill upper bound (exclusive)
      limit: 100                            # optional cap on objects
      consumed: [...]                       # jsonl only: rows of raw.ingest_files

The cursor is the source's own clock, minus the stream's overlap window so an
object on the boundary is never missed; re-reading the overlap is harmless
because raw writes are idempotent on ``idem_key``. Credentials and
``LORCHESTRA_SANDBOX_URL`` are read from ``ctx.env`` only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lorchestra_dagster.callables.base import CallContext, paged, register, result
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.sources.catalog import load_stream
from lorchestra_dagster.sources.connectors import CONNECTORS, FetchRequest, Window
from lorchestra_dagster.sources.connectors.base import overlap
from lorchestra_dagster.timestamps import parse_utc

_PARAMS = {"source", "config", "callable"}
_CONFIG = {"since", "until", "limit", "window_since", "window_until", "consumed"}


def _consumed(value: Any, stream: str) -> frozenset[str]:
    """File hashes from ``raw.ingest_files`` rows (dicts) or plain hash strings."""
    out = set()
    for row in value or []:
        if isinstance(row, dict):
            if row.get("stream") not in (None, stream):
                continue
            digest = row.get("file_sha256")
        else:
            digest = row
        if digest:
            out.add(str(digest))
    return frozenset(out)


def _time(value: Any, stream: str, key: str) -> Any:
    try:
        return parse_utc(value)
    except (TypeError, ValueError):
        raise PermanentError(
            f"stream {stream!r}: config.{key} is not a timestamp", stream=stream, code="bad_param"
        ) from None


@register("injest", external=True, stream_param="source")
def injest(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """Fetch the objects of ``params.source`` changed inside the cursor window."""
    unknown = set(params) - _PARAMS
    if unknown:
        raise PermanentError(f"injest: unknown params {sorted(unknown)}", code="bad_param")
    stream = params.get("source")
    if not isinstance(stream, str) or not stream:
        raise PermanentError("injest: params.source (a stream id) is required", code="bad_param")
    config = params.get("config") or {}
    if not isinstance(config, dict) or set(config) - _CONFIG:
        raise PermanentError(
            f"stream {stream!r}: config accepts only {sorted(_CONFIG)}",
            stream=stream,
            code="bad_param",
        )
    settings = load_stream(ctx.catalog_dir, stream)

    window_since = _time(config.get("window_since"), stream, "window_since")
    since = window_since or overlap(
        _time(config.get("since"), stream, "since"), settings.overlap_minutes
    )
    until = _time(config.get("window_until") or config.get("until"), stream, "until")
    limit = config.get("limit")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise PermanentError(
            f"stream {stream!r}: config.limit must be a positive integer",
            stream=stream,
            code="bad_param",
        )

    request = FetchRequest(
        stream=stream,
        settings=settings,
        env=ctx.env,
        window=Window(since=since, until=until, limit=limit),
        catalog_dir=ctx.catalog_dir,
        consumed=_consumed(config.get("consumed"), stream),
    )
    fetched = CONNECTORS[settings.connector].fetch(request)
    window = {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
    }
    extra = dict(fetched.extra)
    skipped = int(extra.pop("files_skipped", 0))

    def pages() -> Iterator[dict[str, Any]]:
        for n, page in enumerate(fetched.pages):
            yield result(page, input=len(page), skipped=skipped if n == 0 else 0)

    # Page by page: the job's build and write steps run once per vendor page.
    return paged(pages(), stream=stream, window=window, **extra)

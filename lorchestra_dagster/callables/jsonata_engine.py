"""JSONata behind one small interface, with the extension functions transforms use.

Two engines implement the same interface: ``jsonatapy`` (Rust, the default:
every golden test passes on both and it is several times faster, see
docs/canonical.md) and ``jsonata-python`` (pure Python reference). A transform
never knows which one runs it. Each expression is compiled once per process
and engine (per thread for jsonatapy, whose objects must stay on their thread),
keyed by the sha256 of its source; the pipeline runner runs jobs concurrently.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, Protocol

from markdownify import markdownify

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.timestamps import parse_iso

ENGINES = ("jsonatapy", "jsonata-python")
EVAL_TIMEOUT_MS = 10_000  # a runaway expression on one record fails that record, not the run
DEFAULT_ENGINE = "jsonatapy"


# ---------------------------------------------------------------- extensions


def html_to_markdown(html: Any = None) -> str | None:
    """HTML to markdown via markdownify (ATX headings, ``-`` bullets), trimmed."""
    if html is None:
        return None
    text = markdownify(str(html), heading_style="ATX", bullets="-", strip=["script", "style"])
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:  # collapse runs of blank lines markdownify leaves between blocks
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out)


def base64url_decode(data: Any = None) -> str | None:
    """Decode base64url (RFC 4648 section 5, padding optional) to UTF-8 text."""
    if data is None:
        return None
    raw = str(data).strip()
    raw += "=" * (-len(raw) % 4)
    try:
        return base64.urlsafe_b64decode(raw.encode("ascii")).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"base64urlDecode: invalid input ({exc})") from None


def parse_addresses(header: Any = None) -> list[dict[str, Any]]:
    """An RFC 5322 address-list header to ``[{name, email}]`` (name null when absent)."""
    if header is None:
        return []
    values = header if isinstance(header, list) else [header]
    out = []
    for name, email in getaddresses([str(v) for v in values]):
        if email:
            out.append({"name": name or None, "email": email})
    return out


def iso_utc(value: Any = None) -> str | None:
    """Normalise a timestamp to ``YYYY-MM-DDTHH:MM:SS.sssZ``.

    Accepts ISO-8601 with any offset or fraction (Graph, Dataverse, Forms) and
    RFC 5322 dates (mail ``Date`` headers); a naive time is taken as UTC.
    """
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text[:1].isalpha():  # "Tue, 17 Feb 2026 08:43:11 +0000"
        try:
            dt = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise ValueError("isoUtc: unparseable date") from None
        return _fmt(dt)
    try:
        return _fmt(parse_iso(text))
    except ValueError:
        raise ValueError("isoUtc: unparseable timestamp") from None


def _fmt(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def unescape_html(text: Any = None) -> str | None:
    """Resolve HTML character references (Gmail snippets arrive as ``It&#39;s``)."""
    return None if text is None else html.unescape(str(text))


EXTENSIONS: dict[str, Callable[..., Any]] = {
    "htmlToMarkdown": html_to_markdown,
    "unescapeHtml": unescape_html,
    "base64urlDecode": base64url_decode,
    "parseAddresses": parse_addresses,
    "isoUtc": iso_utc,
}


# ---------------------------------------------------------------- engines


class Expression(Protocol):
    """A compiled JSONata expression."""

    def evaluate(self, data: Any) -> Any:
        """Evaluate against ``data``; JSONata *undefined* and ``null`` both give ``None``."""
        ...


class _JsonataPy:
    """jsonatapy (Rust). JSON text in and out avoids per-object conversion costs."""

    def __init__(self, source: str) -> None:
        import jsonatapy

        self._expr = jsonatapy.compile(source)
        for name, fn in EXTENSIONS.items():
            self._expr.register(name, fn)

    def evaluate(self, data: Any) -> Any:
        text = self._expr.evaluate_json_or_none(json.dumps(data), timeout=EVAL_TIMEOUT_MS)
        return None if text is None else json.loads(text)


class _JsonataPython:
    """jsonata-python (pure Python reference implementation)."""

    def __init__(self, source: str) -> None:
        from jsonata import Jsonata

        self._expr = Jsonata(source)
        for name, fn in EXTENSIONS.items():
            self._expr.register_lambda(name, _null_bridge(fn))

    def evaluate(self, data: Any) -> Any:
        # Passing bindings gives each call its own frame: the default evaluates in
        # the shared environment, which is not thread-safe.
        out = self._expr.evaluate(data, {})
        # Round-trip through JSON: strips the engine's sequence types and its null sentinel.
        return json.loads(json.dumps(out, default=_jsonable)) if out is not None else None


def _null_bridge(fn: Callable[..., Any]) -> Callable[..., Any]:
    """jsonata-python passes JSON null as a sentinel and reads ``None`` as *undefined*;
    make host functions see ``None`` and return JSON null, as with jsonatapy."""
    from jsonata import utils

    def unwrap(v: Any) -> Any:
        if v is utils.Utils.NULL_VALUE:
            return None
        if isinstance(v, list):
            return [unwrap(x) for x in v]
        if isinstance(v, dict):
            return {k: unwrap(x) for k, x in v.items()}
        return v

    def wrap(v: Any) -> Any:
        if v is None:
            return utils.Utils.NULL_VALUE
        if isinstance(v, list):
            return [wrap(x) for x in v]
        if isinstance(v, dict):
            return {k: wrap(x) for k, x in v.items()}
        return v

    def bridged(*args: Any) -> Any:
        return wrap(fn(*[unwrap(a) for a in args]))

    return bridged


def _jsonable(obj: Any) -> Any:
    from jsonata import utils

    if obj is utils.Utils.NULL_VALUE:
        return None
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


_FACTORIES: dict[str, Callable[[str], Expression]] = {
    "jsonatapy": _JsonataPy,
    "jsonata-python": _JsonataPython,
}
_CACHE: dict[tuple[str, str], Expression] = {}
_LOCAL = threading.local()
_LOCK = threading.Lock()
# jsonatapy's compiled expressions are pyo3 "unsendable" objects: using one from another
# thread panics. They are cached per thread; jsonata-python ones are shared.
_PER_THREAD = {"jsonatapy"}


def compile_expression(source: str, engine: str = DEFAULT_ENGINE) -> Expression:
    """Compile ``source`` once per process and engine (per thread for jsonatapy).

    The cache key is the sha256 of the text, so the same transform loaded from
    two catalogs compiles once.

    Raises:
        PermanentError: unknown engine or a syntax error in the expression.
    """
    if engine not in _FACTORIES:
        raise PermanentError(f"unknown JSONata engine {engine!r} (known: {', '.join(ENGINES)})")
    key = (engine, hashlib.sha256(source.encode("utf-8")).hexdigest())
    if engine in _PER_THREAD:
        cache = getattr(_LOCAL, "cache", None)
        if cache is None:
            cache = _LOCAL.cache = {}
    else:
        cache = _CACHE
    expr = cache.get(key)
    if expr is None:
        with _LOCK:
            expr = cache.get(key)
            if expr is None:
                try:
                    expr = _FACTORIES[engine](source)
                except Exception as exc:  # both engines raise their own types
                    raise PermanentError(
                        f"JSONata compile error ({engine}): {exc}", code="E_JSONATA_COMPILE"
                    ) from exc
                cache[key] = expr
    return expr


def cache_size() -> int:
    """Compiled expressions visible from this thread (for tests of compile-once)."""
    return len(_CACHE) + len(getattr(_LOCAL, "cache", {}))

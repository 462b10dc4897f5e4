"""The one small interface every connector implements, and the settings they share.

A connector is a settings model plus ``fetch(request) -> FetchResult``. It
yields the vendor's native JSON objects unchanged, one vendor page at a time
(``FetchResult.pages`` is lazy: the next request goes out when the previous
page has been consumed), so memory holds one page, not a source; it never
writes storage.
Errors follow one policy: 429 (honouring ``Retry-After``) and 5xx are
retried with bounded backoff and then raised as ``TransientError``; 401/403
and malformed pages are ``PermanentError`` naming the stream, the page and the
environment variable to fix.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from lorchestra_dagster.errors import PermanentError, TransientError
from lorchestra_dagster.settings import Settings

SANDBOX_ENV_VAR = "LORCHESTRA_SANDBOX_URL"
MAX_RETRY_WAIT_S = 60.0


class StreamSettings(BaseModel):
    """Settings every stream has; each connector subclasses this with its own fields."""

    model_config = ConfigDict(extra="forbid")

    connector: str = Field(description="connector name (gmail, exchange, dataverse, ...)")
    overlap_minutes: float = Field(
        default=10, ge=0, description="cursor overlap subtracted from `since` (minutes)"
    )
    timeout_s: float = Field(default=30, gt=0, description="timeout of every HTTP request")
    max_attempts: int = Field(
        default=5, ge=1, le=20, description="attempts per page on 429/5xx before giving up"
    )

    def credential_vars(self) -> list[str]:
        """Names of the environment variables this stream reads its credentials from.

        Every settings field ending in ``_env`` names one (unset optional ones
        are alternatives the stream does not use), so ``lorchestra doctor`` and
        the run preflight need no list per connector.
        """
        return [
            str(value)
            for name, value in self
            if name.endswith("_env") and isinstance(value, str) and value
        ]

    def endpoint(self, env: Mapping[str, str]) -> str | None:
        """The URL this stream talks to (None for local files)."""
        return None


class HttpStreamSettings(StreamSettings):
    """A stream served over a vendor's REST API at ``base_url``."""

    base_url: str = Field(description="vendor API root; LORCHESTRA_SANDBOX_URL overrides it")

    def effective_base(self, env: Mapping[str, str]) -> str:
        return (Settings.from_env(env).sandbox_url or self.base_url).rstrip("/")

    def endpoint(self, env: Mapping[str, str]) -> str | None:
        return self.effective_base(env)


@dataclass(frozen=True)
class Window:
    """The slice of source time to fetch: ``since < t < until`` (either may be open)."""

    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None


@dataclass
class FetchRequest:
    """Everything a connector may know for one fetch."""

    stream: str
    settings: Any
    env: Mapping[str, str]
    window: Window
    catalog_dir: Path
    consumed: frozenset[str] = frozenset()
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class FetchResult:
    """Native objects, page by page, plus any extra callable outputs (e.g. consumed ``files``).

    ``pages`` is consumed once; ``extra`` must be known before the first page.
    """

    pages: Iterable[list[dict[str, Any]]]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def items(self) -> list[dict[str, Any]]:
        """Every object at once (consumes ``pages``): for tools and tests, never a run."""
        return [item for page in self.pages for item in page]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The verifying TLS context the HTTP connectors share (httpx's default one).

    Building one reads and parses the whole CA bundle, about 15 ms of one core, and every
    fetch built its own, under the interpreter lock of the other jobs; a context is safe
    to share between threads."""
    return httpx.create_ssl_context()


def limited(pages: Iterable[list[dict[str, Any]]], limit: int | None) -> Iterator[list[Any]]:
    """At most ``limit`` objects in all; stops asking for pages once it is reached.

    The one place a window's ``limit`` is applied, so no connector counts by itself.
    """
    left = limit
    for page in pages:
        if left is None:
            yield page
            continue
        yield page[:left]
        left -= min(left, len(page))
        if left <= 0:
            return


class RateLimited(TransientError):
    """HTTP 429: retry after ``retry_after`` seconds (from the vendor's header)."""

    def __init__(self, message: str, *, retry_after: float | None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Unreachable(TransientError):
    """The base URL did not answer (refused, DNS); reported as permanent once retries end."""


def require_env(env: Mapping[str, str], var: str | None, stream: str, what: str) -> str:
    """The value of credential variable ``var``, or a PermanentError naming it."""
    if not var:
        raise PermanentError(
            f"stream {stream!r}: no environment variable configured for the {what}",
            stream=stream,
            code="missing_credential",
        )
    value = env.get(var)
    if not value:
        raise PermanentError(
            f"stream {stream!r}: environment variable {var} ({what}) is not set",
            stream=stream,
            code="missing_credential",
        )
    return value


def auth_error(stream: str, status: int, var: str) -> PermanentError:
    return PermanentError(
        f"stream {stream!r}: the vendor rejected the credential (HTTP {status}); fix the "
        f"value of environment variable {var}",
        stream=stream,
        code="auth",
    )


def malformed_page(stream: str, page: int, why: str) -> PermanentError:
    return PermanentError(
        f"stream {stream!r}: page {page} is malformed ({why})", stream=stream, code="malformed_page"
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; dates fall back to backoff)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        return min(float(retry_after), MAX_RETRY_WAIT_S)
    return min(0.2 * 2 ** (state.attempt_number - 1), 8.0)


T = TypeVar("T")


def connect_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words every connector shares (no payload, no URL)."""
    text = f"{exc} {exc.__cause__ or ''}".lower()
    if "refused" in text:
        return "connection refused"
    if any(k in text for k in ("name or service", "nodename", "getaddrinfo", "not found")):
        return "host not found"
    if "timed out" in text or "timeout" in text:
        return "connection timed out"
    return "connection failed"


def unreachable_error(
    stream: str, url: str, reason: str, env: Mapping[str, str] | None = None
) -> PermanentError:
    """The one wording of "cannot reach" for every connector: stream, URL, variable, check.

    When ``LORCHESTRA_SANDBOX_URL`` sent the stream there, the fix is the
    sandbox; otherwise it is the vendor's address (or the sandbox instead).
    """
    sandbox = (Settings.from_env(env or {}).sandbox_url or "").rstrip("/")
    if sandbox and url.startswith(sandbox):
        fix = (
            f"{SANDBOX_ENV_VAR} points there: start the sandbox (`lorchestra sandbox up`, then "
            f'`eval "$(lorchestra sandbox env)"`) or unset {SANDBOX_ENV_VAR} to use the vendor'
        )
    else:
        fix = (
            f"check base_url in sources.yaml and the network, or set {SANDBOX_ENV_VAR} to "
            "use the sandbox"
        )
    return PermanentError(
        f"stream {stream!r}: cannot reach {url} ({reason}); {fix}; `lorchestra doctor` "
        "checks every source",
        stream=stream,
        code="unreachable",
    )


def with_retries(
    fn: Callable[[], T],
    *,
    stream: str,
    attempts: int,
    base_url: str,
    env: Mapping[str, str] | None = None,
) -> T:
    """Run ``fn`` retrying transient errors with backoff (Retry-After first).

    After the last attempt a transient error is re-raised as is (the engine's
    step retry may still help), except an unreachable base URL, which becomes a
    PermanentError naming the stream, the URL and the variable to fix
    (``unreachable_error``): retrying later will not fix a wrong address.
    """
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=_wait,
        reraise=True,
        retry=retry_if_exception_type(TransientError),
    )
    try:
        return retrying(fn)
    except Unreachable as exc:
        raise unreachable_error(stream, base_url, exc.message, env) from exc


def overlap(since: datetime | None, minutes: float) -> datetime | None:
    return None if since is None else since - timedelta(minutes=minutes)


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

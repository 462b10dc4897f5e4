"""BigQuery errors mapped to lorchestra's transient/permanent classification.

BigQuery reports *why* in ``errors[].reason`` more reliably than in the HTTP
status (``rateLimitExceeded`` comes back as 403, like a permission error), so
reasons are read first and the status is the fallback. Messages name the
dataset/table the op targeted so a failed step says where to look.

Server messages can quote values from the rows (``Could not parse 'x' as
TIMESTAMP``), so quoted literals are redacted before a message leaves here:
error text is logged and stored in run records, and payloads must never be.
"""

from __future__ import annotations

import re
from typing import Any

from google.api_core import exceptions as gexc

from lorchestra_dagster.errors import LorchestraError, PermanentError, TransientError

TRANSIENT_REASONS = frozenset(
    {
        "backendError",
        "internalError",
        "rateLimitExceeded",
        "quotaExceeded",
        "jobBackendError",
        "jobInternalError",
        "tableUnavailable",
        "resourcesExceeded_transient",
    }
)
PERMANENT_REASONS = frozenset(
    {
        "invalidQuery",
        "invalid",
        "notFound",
        "accessDenied",
        "duplicate",
        "billingNotEnabled",
        "billingTierLimitExceeded",
        "resourceInUse",
        "responseTooLarge",
        "stopped",
        "notImplemented",
    }
)
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Concurrent transactions on one table: BigQuery aborts one; running it again succeeds.
_TRANSIENT_MESSAGES = re.compile(
    r"concurrent update|could not serialize access|retrying may solve", re.IGNORECASE
)
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_URL = re.compile(r"^(\d{3} )?(GET|POST|PUT|PATCH|DELETE) \S+: ")


def redact(message: str, limit: int = 400) -> str:
    """Drop quoted literals (possible row values) and the request URL; cap the length."""
    text = _URL.sub("", message.strip())
    text = _QUOTED.sub("'…'", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reasons(exc: BaseException) -> list[str]:
    """``errors[].reason`` of a Google API error (empty for other exceptions)."""
    out: list[str] = []
    for err in getattr(exc, "errors", None) or []:
        if isinstance(err, dict) and err.get("reason"):
            out.append(str(err["reason"]))
    return out


def classify(exc: BaseException) -> str:
    """``"transient"`` or ``"permanent"`` for any exception from the client."""
    found = reasons(exc)
    if any(r in TRANSIENT_REASONS for r in found):
        return "transient"
    if any(r in PERMANENT_REASONS for r in found):
        if _TRANSIENT_MESSAGES.search(str(getattr(exc, "message", exc))):
            return "transient"
        return "permanent"
    if isinstance(exc, gexc.GoogleAPICallError):
        code = getattr(exc, "code", None)
        if isinstance(code, int) and code in TRANSIENT_STATUS:
            return "transient"
        if _TRANSIENT_MESSAGES.search(str(exc.message)):
            return "transient"
        return "permanent"
    if isinstance(exc, gexc.RetryError | TimeoutError | ConnectionError):
        return "transient"
    # requests/urllib3 connection failures (emulator down, network blip) are transient.
    module = type(exc).__module__
    if module.startswith(("requests", "urllib3")) or "Timeout" in type(exc).__name__:
        return "transient"
    return "permanent"


def map_error(
    exc: BaseException,
    *,
    where: str,
    action: str,
    extra: dict[str, Any] | None = None,
) -> LorchestraError:
    """A classified lorchestra error for ``exc`` raised while ``action`` on ``where``.

    Args:
        where: ``dataset.table`` (or ``query``) the failing call targeted.
        action: what was being done (``merge``, ``load``, ``query``...).
    """
    if isinstance(exc, LorchestraError):
        return exc
    kind = classify(exc)
    found = reasons(exc)
    raw = getattr(exc, "message", None) or str(exc)
    hint = "retry later" if kind == "transient" else "fix the table, SQL or permissions"
    message = f"BigQuery {action} on {where} failed ({', '.join(found) or type(exc).__name__}): "
    message += f"{redact(str(raw))}; {hint}"
    cls = TransientError if kind == "transient" else PermanentError
    return cls(
        message,
        code=found[0] if found else type(exc).__name__,
        data={"where": where, "action": action, "reasons": found, **(extra or {})},
    )

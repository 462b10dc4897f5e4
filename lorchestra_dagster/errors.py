"""One exception family for the whole package.

Errors are data: each carries where it happened (file, line, job, step, plan,
stream) and whether retrying can help (``classification``), so retry policies,
the CLI and Dagster metadata read fields instead of parsing messages.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Literal

Classification = Literal["transient", "permanent"]


class LorchestraError(Exception):
    """Base of every error lorchestra raises on purpose."""

    classification: Classification = "permanent"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        job_id: str | None = None,
        step_id: str | None = None,
        plan_id: str | None = None,
        stream: str | None = None,
        classification: Classification | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.file = file
        self.line = line
        self.column = column
        self.job_id = job_id
        self.step_id = step_id
        self.plan_id = plan_id
        self.stream = stream
        if classification is not None:
            self.classification = classification
        # Structured context (counts, keys, reasons; never a value) for callers that branch on it.
        self.data: dict[str, Any] = dict(data or {})

    @property
    def location(self) -> str:
        """``file:line:col`` or ``job/step`` prefix for human output, empty when unknown."""
        if self.file:
            parts = [self.file]
            if self.line is not None:
                parts.append(str(self.line))
                if self.column is not None:
                    parts.append(str(self.column))
            return ":".join(parts)
        if self.job_id:
            return f"{self.job_id}/{self.step_id}" if self.step_id else self.job_id
        return ""

    def __str__(self) -> str:
        loc = self.location
        return f"{loc}: {self.message}" if loc else self.message

    def to_dict(self) -> dict[str, Any]:
        """Structured form for JSON output and run records (never includes payloads)."""
        out: dict[str, Any] = {
            "type": type(self).__name__,
            "message": self.message,
            "classification": self.classification,
        }
        for key in ("code", "file", "line", "column", "job_id", "step_id", "plan_id", "stream"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def fingerprint(value: object) -> str:
    """``<type>, <n> chars, sha256 <8 hex>``: enough to find a bad value, never the value.

    Error messages go to stderr, Dagster's event log and run metadata; a bad value
    may be a client's name in a timestamp field, so messages name the field and
    this fingerprint instead.
    """
    text = value if isinstance(value, str) else repr(value)
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:8]
    return f"{type(value).__name__}, {len(text)} chars, sha256 {digest}"


_SINGLE_QUOTED = re.compile(r"'(?:[^']|'')*'")
_DOUBLE_QUOTED = re.compile(r'"(?:[^"]|"")*"')


def redact_quoted(text: str, *, double: bool = True) -> str:
    """``text`` with quoted substrings replaced by ``<value>``.

    Libraries quote the offending value in their messages (``Invalid isoformat
    string: '<a name>'``, DuckDB's ``format: "<a name>"``). ``double=False`` keeps
    double-quoted text, where DuckDB names columns and tables.
    """
    text = _SINGLE_QUOTED.sub("'<value>'", text)
    return _DOUBLE_QUOTED.sub('"<value>"', text) if double else text


def safe_message(exc: BaseException) -> str:
    """A message fit for logs and run records: ours as written, anyone else's redacted."""
    if isinstance(exc, LorchestraError):
        return str(exc)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {redact_quoted(first)}" if first else type(exc).__name__


def error_dict(exc: BaseException) -> dict[str, Any]:
    """The JSON form of any exception for run records: ours via ``to_dict``, anyone else's
    as its type and redacted first line (permanent: nobody classified it)."""
    if isinstance(exc, LorchestraError):
        return exc.to_dict()
    return {"type": type(exc).__name__, "message": safe_message(exc), "classification": "permanent"}


class TransientError(LorchestraError):
    """Retrying later may succeed (rate limits, 5xx, a locked database)."""

    classification: Classification = "transient"


class PermanentError(LorchestraError):
    """Retrying cannot help until someone fixes the input, credential or code."""

    classification: Classification = "permanent"


class SpecError(PermanentError):
    """A catalog failed validation; ``issues`` holds every problem found in one pass."""

    def __init__(self, message: str, issues: list[Any] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.issues = list(issues or [])


class CompileError(PermanentError):
    """A JobDef could not be compiled against an envelope (missing @ctx key, bad ref)."""


class StoracleError(LorchestraError):
    """The data plane refused or failed a request; mirrors a JSON-RPC error object."""

    def __init__(
        self,
        message: str,
        *,
        rpc_code: int = -32603,
        data: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        data = dict(data or {})
        kw.setdefault("classification", data.get("classification"))
        super().__init__(message, data=data, **kw)
        self.rpc_code = rpc_code
        self.data.setdefault("classification", self.classification)


class StepFailed(LorchestraError):
    """A step failed; ``root_cause`` is the original exception so it is never lost."""

    def __init__(self, message: str, *, root_cause: BaseException | None = None, **kw: Any):
        if root_cause is not None and isinstance(root_cause, LorchestraError):
            kw.setdefault("classification", root_cause.classification)
        super().__init__(message, **kw)
        self.root_cause = root_cause


def root_cause(exc: BaseException) -> BaseException:
    """Follow ``root_cause``/``__cause__`` links down to the error that started it all."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = getattr(exc, "root_cause", None) or exc.__cause__
        if nxt is None:
            break
        exc = nxt
    return exc

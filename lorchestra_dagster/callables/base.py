"""The callable contract and registry.

Callables are pure functions of their params: they get a ``CallContext`` (paths,
run ids, an env mapping) and return items; they never write storage. The engine
dispatches ``call`` steps here by name, and validation rejects unknown names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lorchestra_dagster.errors import PermanentError


@dataclass(frozen=True)
class CallContext:
    """What a callable may know about the run it is part of."""

    catalog_dir: Path
    home: Path
    dry_run: bool = False
    run_id: str = ""
    job_id: str = ""
    step_id: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    limit: int | None = None
    #: When the step runs (UTC): only callables registered ``clock=True`` may read it.
    now: datetime | None = None


CallableFn = Callable[[dict[str, Any], CallContext], dict[str, Any]]
_REGISTRY: dict[str, CallableFn] = {}


_CLOCK: set[str] = set()


def register(name: str, *, clock: bool = False) -> Callable[[CallableFn], CallableFn]:
    """Register ``fn`` under ``name``; a second registration of a name is a bug.

    ``clock=True`` declares that the output depends on ``CallContext.now`` (a
    "today" page): a job calling it is never skipped as unchanged, since a new
    day is new input even when no row changed.
    """

    def deco(fn: CallableFn) -> CallableFn:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise RuntimeError(f"callable {name!r} registered twice")
        _REGISTRY[name] = fn
        if clock:
            _CLOCK.add(name)
        return fn

    return deco


def reads_clock(name: str) -> bool:
    """Does callable ``name`` depend on the time it runs (``register(..., clock=True)``)?"""
    return name in _CLOCK


def get_callable(name: str) -> CallableFn:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise PermanentError(f"unknown callable {name!r} (registered: {known})") from None


def callable_names() -> set[str]:
    return set(_REGISTRY)


def result(
    items: list[dict[str, Any]], *, input: int, skipped: int = 0, errors: int = 0, **extra: Any
) -> dict[str, Any]:
    """Build a contract-shaped callable result."""
    return {
        "schema_version": "1.0",
        "items": items,
        "stats": {"input": input, "output": len(items), "skipped": skipped, "errors": errors},
        **extra,
    }


def enforce_error_budget(
    what: str,
    errors: int,
    total: int,
    budget: int,
    failures: list[dict[str, Any]],
    code: str,
    unit: str = "records",
) -> None:
    """Fail the step when more records failed than the step tolerates.

    ``failures`` is a sample of ``{idem_key, error[, stage]}``: keys and error
    texts only, so the message can be logged without client data.
    """
    if errors <= budget:
        return
    sample = "; ".join(
        f"{f['idem_key']} ({f['stage'] + ': ' if f.get('stage') else ''}{f['error']})"
        for f in failures
    )
    raise PermanentError(
        f"{what}: {errors} of {total} {unit} failed (error_budget {budget}); "
        f"first failures: {sample}",
        code=code,
    )

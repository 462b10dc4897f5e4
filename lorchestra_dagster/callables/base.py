"""The callable contract and registry.

Callables are pure functions of their params: they get a ``CallContext`` (paths,
run ids, an env mapping) and return items; they never write storage. The engine
dispatches ``call`` steps here by name, and validation rejects unknown names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.spec.models import callable_of
from lorchestra_dagster.spec.traits import CallableTraits


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
_TRAITS: dict[str, CallableTraits] = {}


def register(name: str, **traits: Any) -> Callable[[CallableFn], CallableFn]:
    """Register ``fn`` under ``name`` with its traits; a second registration of a name is a bug.

    The keywords are the fields of the callable's ``CallableTraits`` (``spec/traits.py``
    says what each means; an unknown one fails at import): validation, lineage's skip
    rules and the source checks read them, so a callable's special case is declared
    here, next to it, and nowhere else.
    """
    flags = CallableTraits(**traits)

    def deco(fn: CallableFn) -> CallableFn:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise RuntimeError(f"callable {name!r} registered twice")
        _REGISTRY[name] = fn
        _TRAITS[name] = flags
        return fn

    return deco


def paged(
    pages: Iterator[dict[str, Any]], *, stats: dict[str, int] | None = None, **extra: Any
) -> dict[str, Any]:
    """A callable result that arrives page by page (``pages``: contract results, lazily).

    The engine runs the steps that depend on a paged ``call`` once per page (as it
    does for keyset batches), so a source is never whole in memory and each page is
    submitted as it arrives. Where a step needs the whole result, ``collect`` joins
    the pages. Validation belongs before the first page: errors in the params are
    raised by the callable itself, errors of the source while its pages are read.
    """
    return {"schema_version": "1.0", "pages": pages, "stats": stats or {}, **extra}


def is_paged(out: Any) -> bool:
    return isinstance(out, dict) and "pages" in out and "items" not in out


def collect(out: dict[str, Any]) -> dict[str, Any]:
    """A paged result as one contract result: items and list extras joined, stats and
    integer extras summed, other extras of the last page (a non-paged result is
    returned as is)."""
    if not is_paged(out):
        return out
    items: list[Any] = []
    stats: dict[str, int] = dict(out.get("stats") or {})
    extra = {k: v for k, v in out.items() if k not in ("pages", "stats", "schema_version")}
    for page in out["pages"]:
        items.extend(page.get("items") or [])
        for key, value in (page.get("stats") or {}).items():
            stats[key] = stats.get(key, 0) + int(value or 0)
        for key, value in page.items():
            if key in ("items", "stats", "schema_version"):
                continue
            if isinstance(value, list) and isinstance(extra.get(key), list):
                extra[key] = [*extra[key], *value]
            elif _count(value) and _count(extra.get(key)):  # per-page counts add up
                extra[key] += value
            else:
                extra[key] = list(value) if isinstance(value, list) else value
    stats["output"] = len(items)
    return {"schema_version": "1.0", "items": items, "stats": stats, **extra}


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def traits_of(name: Any) -> CallableTraits | None:
    """The registered traits of callable ``name`` (None for an unknown name)."""
    return _TRAITS.get(name) if isinstance(name, str) else None


def get_callable(name: str) -> CallableFn:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise PermanentError(f"unknown callable {name!r} (registered: {known})") from None


def callable_names() -> set[str]:
    return set(_REGISTRY)


def callable_traits() -> dict[str, CallableTraits]:
    """Every registered callable's traits, by name (what validation is handed)."""
    return dict(_TRAITS)


def stream_steps(jobdef: Any) -> Iterator[tuple[int, str, Any]]:
    """``(step index, param, value)`` of each step whose callable fetches a stream (its
    ``stream_param``): the one walk behind ``streams_of`` and the L071 source check."""
    for n, step in enumerate(jobdef.steps):
        params = step.params_dict()
        traits = traits_of(callable_of(step.op, params))
        if traits is not None and traits.stream_param is not None:
            yield n, traits.stream_param, params.get(traits.stream_param)


def streams_of(jobdef: Any) -> list[str]:
    """The stream ids a job's steps fetch (callables with a ``stream_param``), in step order."""
    streams = [value for _n, _param, value in stream_steps(jobdef) if isinstance(value, str)]
    return list(dict.fromkeys(streams))


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

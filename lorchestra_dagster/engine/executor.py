"""Compile and dispatch: run one JobDef end to end (the one implementation of job semantics).

Only the Dagster op of the catalog calls this (``defs/catalog_assets.py``):
the CLI, the UI, the schedule and the sensors all start Dagster runs, so
every run has one history (Dagster's) and one set of rules (this module).

Steps run in order with their ``@run`` references resolved against earlier
outputs. A ``storacle.query`` with ``incremental`` or ``batch_key`` makes the
run batched: that query pages through its rows by key (keyset paging), and the
steps that depend on it run once per page, so memory stays bounded and each
page commits as its own atomic plans. A failed page leaves earlier pages
committed; the incremental read makes a rerun resume where it stopped.

A ``call`` whose callable answers page by page (``callables.paged``, e.g.
``injest``: one vendor page at a time) is run the same way: the steps that
depend on it run once per page, as the page arrives, so a source is never whole
in memory. Inside a keyset batch such a result is joined (``collect``) instead.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from lorchestra_dagster.callables import collect, is_paged
from lorchestra_dagster.engine.handlers import run_step, step_params
from lorchestra_dagster.engine.results import ExecutionResult, StepResult
from lorchestra_dagster.engine.services import Services
from lorchestra_dagster.engine.state import RunState
from lorchestra_dagster.errors import (
    LorchestraError,
    PermanentError,
    StepFailed,
    error_dict,
    root_cause,
    safe_message,
)
from lorchestra_dagster.spec.models import STEP_BY_OP
from lorchestra_dagster.storacle import jsonio


def new_run_id() -> str:
    return uuid.uuid4().hex


def execute_with(envelope: dict[str, Any], services: Services) -> ExecutionResult:
    """Run one job with the given services and return what happened, step by step.

    Envelope keys: ``job_id``, ``ctx``, ``payload``, ``dry_run``, ``limit``,
    ``batch_size``, ``run_id`` (the Dagster run id), ``parent_run_id``. Nothing
    process-global is changed. The result is the run record: Dagster stores it
    as counts-only metadata of the job's asset.
    """
    from lorchestra_dagster.spec import Envelope, compile_job

    job_id = envelope["job_id"]
    run_id = envelope.get("run_id") or new_run_id()
    dry_run = bool(envelope.get("dry_run"))
    started = time.monotonic()
    started_at = datetime.now(tz=UTC)
    result = ExecutionResult(
        run_id=run_id,
        job_id=job_id,
        status="running",
        dry_run=dry_run,
        parent_run_id=envelope.get("parent_run_id"),
    )
    try:
        loaded = services.catalog.jobs.get(job_id)
        if loaded is None:
            raise _missing_job(services.catalog, job_id)
        env_model = Envelope.model_validate(
            {k: v for k, v in {**envelope, "run_id": run_id}.items() if v is not None}
        )
        instance = compile_job(loaded, env_model, services.catalog_dir)
    except LorchestraError as exc:
        result.status = "failed"
        result.error = exc.to_dict()
        result.duration_s = round(time.monotonic() - started, 4)
        result.started_at = started_at.isoformat()
        return result

    result.job_def_sha256 = instance.job_def_sha256
    state = RunState(
        run_id=run_id,
        job_id=job_id,
        envelope=env_model.model_dump(),
        dry_run=dry_run,
        run_child=partial(execute_with, services=services),
    )
    step_results = {
        s.step_id: StepResult(step_id=s.step_id, op=s.op, status="skipped") for s in instance.steps
    }
    try:
        _run_steps(instance, state, services, step_results)
        result.status = "succeeded"
        ran = [s.step_id for s in instance.steps if s.step_id in state.outputs]
        result.output = state.outputs[ran[-1]] if ran else None
    except StepFailed as exc:
        result.status = "failed"
        cause = root_cause(exc)
        err = error_dict(cause)
        err.setdefault("step_id", exc.step_id)
        err.setdefault("job_id", job_id)
        result.error = err
    result.steps = list(step_results.values())
    result.rows_read = state.rows_read
    result.rows_written = state.rows_written
    result.plans = state.plans
    result.submitted = dict(state.submitted)
    result.plan_ids = list(state.plan_ids)
    result.duration_s = round(time.monotonic() - started, 4)
    result.started_at = started_at.isoformat()
    return result


def _missing_job(catalog: Any, job_id: str) -> LorchestraError:
    """Say why a job is missing: a file named after it that failed validation, or a typo."""
    broken = [i for i in catalog.issues if i.severity == "error" and Path(i.path).stem == job_id]
    if broken:
        first = broken[0]
        more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
        return PermanentError(
            f"job {job_id!r} failed validation: {first.code} {first.message}{more}; "
            "run `lorchestra validate` for every error",
            file=first.path,
            line=first.line,
            column=first.col,
            job_id=job_id,
        )
    try:
        catalog.job(job_id)
    except LorchestraError as exc:
        exc.job_id = job_id
        return exc
    return PermanentError(f"unknown job {job_id!r}", job_id=job_id)


def _batch_anchor(instance: Any) -> tuple[Any, str] | None:
    """The query that drives batching and its keyset column, if any."""
    for step in instance.steps:
        model = STEP_BY_OP.get(step.op)
        if model is None or not model.keyset_batches:
            continue
        params = step.params
        key = params.get("batch_key") or (params.get("incremental") or {}).get("source_key")
        if key:
            return step, key
    return None


def _reads_page_range(instance: Any, anchor_id: str, segment: set[str]) -> bool:
    """Whether a step of the batch reads the anchor's page range (``@run.<anchor>.keyset``)."""
    ref = f"@run.{anchor_id}.keyset"

    def mentions(value: Any) -> bool:
        if isinstance(value, str):
            return value.startswith(ref)
        if isinstance(value, dict):
            return any(mentions(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(mentions(v) for v in value)
        return False

    return any(mentions(s.params) for s in instance.steps if s.step_id in segment)


def _downstream(instance: Any, anchor_id: str) -> list[str]:
    """Steps that depend, directly or transitively, on the anchor (in step order)."""
    dependents = {anchor_id}
    for step in instance.steps:
        if set(step.depends_on) & dependents:
            dependents.add(step.step_id)
    return [s.step_id for s in instance.steps if s.step_id in dependents]


def _run_steps(
    instance: Any, state: RunState, services: Services, step_results: dict[str, StepResult]
) -> None:
    anchor = _batch_anchor(instance)
    if anchor is None:
        _run_sequence(instance, [s.step_id for s in instance.steps], state, services, step_results)
        return
    anchor_step, key = anchor
    segment = set(_downstream(instance, anchor_step.step_id))
    by_id = {s.step_id: s for s in instance.steps}
    ordered = [s.step_id for s in instance.steps]
    before = [sid for sid in ordered[: ordered.index(anchor_step.step_id)] if sid not in segment]
    after = [sid for sid in ordered if sid not in segment and sid not in before]
    for sid in before:
        _run_one(by_id[sid], by_id[sid].params, state, services, step_results[sid])

    batch_size = state.batch_size
    fixed_rows = anchor_step.params.get("batch_rows")
    ranged = _reads_page_range(instance, anchor_step.step_id, segment)
    remaining = state.envelope.get("limit")
    after_key: Any = None
    first = True
    last_full = False
    rows = int(fixed_rows) if fixed_rows else min(batch_size, FIRST_PAGE_ROWS)
    while True:
        page = rows if remaining is None else min(rows, int(remaining))
        if page <= 0 and not first:
            break
        params = dict(anchor_step.params)
        params["keyset"] = {"column": key, "after": after_key}
        params["limit"] = max(page, 0)
        params.pop("order_by", None)  # a page is read in key order
        output = _run_one(anchor_step, params, state, services, step_results[anchor_step.step_id])
        items = output["items"]
        full = bool(items) and len(items) >= page
        if full and key not in items[-1]:
            raise StepFailed(
                f"batched query must select its key column {key!r}",
                step_id=anchor_step.step_id,
                job_id=state.job_id,
                root_cause=PermanentError(f"column {key!r} missing from query output"),
            )
        # The page's key range, for the reads that take ``keyset: '@run.<anchor>.keyset'``:
        # open at both ends where no page lies beyond, so a row whose key falls between
        # or after the anchor's rows (an orphan) is still read once and counted.
        output["keyset"] = {
            "column": key,
            "after": after_key,
            "until": items[-1][key] if full else None,
        }
        # A full last page is followed by an empty one; ranged reads still run on it
        # to read the rows past the anchor's last key.
        widest = 0  # the most rows any step of this page took in or gave out
        if items or first or (ranged and last_full):
            for sid in ordered:
                if sid in segment and sid != anchor_step.step_id:
                    rec = step_results[sid]
                    rows_in, rows_out = rec.rows_in, rec.rows_out
                    _run_one(by_id[sid], by_id[sid].params, state, services, rec)
                    widest = max(widest, rec.rows_in - rows_in, rec.rows_out - rows_out)
        first = False
        if not full:
            break
        last_full = True
        if not fixed_rows:
            rows = _next_page_rows(items, batch_size, widest)
        after_key = items[-1][key]
        if remaining is not None:
            remaining -= len(items)
    for sid in after:
        _run_one(by_id[sid], by_id[sid].params, state, services, step_results[sid])


#: Rows of a keyset batch's first page; later pages are sized from it (``_next_page_rows``).
FIRST_PAGE_ROWS = 500
#: Target JSON size of one keyset page: ``batch_size`` rows of small rows, fewer of big ones.
PAGE_BYTES = 4 * 1024 * 1024


def _next_page_rows(items: list[Any], batch_size: int, widest: int = 0) -> int:
    """Rows for the next page, so a page holds about ``PAGE_BYTES`` of JSON and no step of
    it handles more than ``batch_size`` rows.

    A row count alone does not bound memory: 5,000 form responses or transcripts are
    ten times the bytes of 5,000 invoices, and a practice ten times larger filled
    every page to the cap where a small one fitted in one page. Sizing pages by
    bytes keeps a batch's memory the same whatever the practice's size.

    Bytes read do not bound what a page makes of them either: one form response
    scores into five or more observations (``widest``: the most rows a step of the
    last page took in or gave out), and a page of short responses, sized by its bytes
    alone, made 30,000 observations in one plan (+280 MB at 3,000 clients). So the
    next page is cut in the ratio of the widest step's rows to ``batch_size``.
    """
    size = len(jsonio.dumps(items))
    per_row = max(1, size // len(items))
    rows = min(batch_size, PAGE_BYTES // per_row)
    if widest > 0:  # the ratio holds for the next page too, not only past the cap
        rows = min(rows, len(items) * batch_size // widest)
    return max(1, rows)


def _run_sequence(
    instance: Any,
    ids: list[str],
    state: RunState,
    services: Services,
    step_results: dict[str, StepResult],
) -> None:
    """Run ``ids`` in order; a paged output runs its dependents once per page."""
    by_id = {s.step_id: s for s in instance.steps}
    done: set[str] = set()
    for sid in ids:
        if sid in done:
            continue
        step = by_id[sid]
        out = _run_one(step, step.params, state, services, step_results[sid], pages=True)
        if not is_paged(out):
            continue
        segment = [d for d in _downstream(instance, sid) if d != sid and d in ids]
        done.update(segment)
        _run_pages(step, out, segment, by_id, state, services, step_results)


def _run_pages(
    step: Any,
    out: dict[str, Any],
    segment: list[str],
    by_id: dict[str, Any],
    state: RunState,
    services: Services,
    step_results: dict[str, StepResult],
) -> None:
    """Feed each page of a paged ``call`` to the steps that depend on it, as it arrives.

    The dependents run at least once (on an empty page when the source had none),
    so a job's submit steps behave the same whether or not anything was new. An
    error while a page is read fails the paged step itself (its root cause kept);
    pages already submitted stay committed, like keyset batches.
    """
    rec = step_results[step.step_id]
    pages = iter(out["pages"])
    first = True
    while True:
        started = time.monotonic()
        try:
            page = next(pages, None)
        except Exception as exc:  # noqa: BLE001 - classified and recorded like any step error
            rec.duration_s += time.monotonic() - started
            page = _failed(step, rec, exc, rec.attempts, state)
        rec.duration_s = round(rec.duration_s + time.monotonic() - started, 4)
        if page is None:
            if not first:
                return
            page = {"schema_version": "1.0", "items": [], "stats": dict(out.get("stats") or {})}
        first = False
        extra = {k: v for k, v in out.items() if k not in ("pages", "schema_version")}
        page = {**extra, **page}
        rec.rows_out += len(page.get("items") or [])
        state.outputs[step.step_id] = page
        for sid in segment:
            _run_one(by_id[sid], by_id[sid].params, state, services, step_results[sid])
        if "error" in page:  # continue_on_error: the failed page was the last one
            return


def _failed(
    step: Any, rec: StepResult, exc: Exception, attempt: int, state: RunState
) -> dict[str, Any]:
    """Record a step's failure; its ``continue_on_error`` output, or raise ``StepFailed``."""
    rec.status = "failed"
    rec.error = {
        **error_dict(exc),
        "step_id": step.step_id,
        "attempts": attempt,
    }
    if step.continue_on_error:
        output: dict[str, Any] = {"items": [], "error": rec.error}
        state.outputs[step.step_id] = output
        return output
    raise StepFailed(
        f"step {step.step_id!r} ({step.op}) failed after {attempt} attempt(s): {safe_message(exc)}",
        step_id=step.step_id,
        job_id=state.job_id,
        root_cause=exc,
    ) from exc


def _run_one(
    step: Any,
    raw_params: dict[str, Any],
    state: RunState,
    services: Services,
    rec: StepResult,
    *,
    pages: bool = False,
) -> dict[str, Any]:
    """Resolve refs, validate the params into the op's model, run with retries and
    timeout, record, and store the output.

    A paged output is returned as is when ``pages`` (the caller feeds its pages on),
    else joined into one result inside the retry loop.
    """
    from lorchestra_dagster.spec import resolve_run_refs

    started = time.monotonic()
    written_before = state.rows_written
    policy = step.retry
    attempts_allowed = max(1, int(_get(policy, "attempts", 3)))
    backoff = float(_get(policy, "backoff_s", 1.0))
    max_backoff = float(_get(policy, "max_backoff_s", 30.0))
    try:
        params = step_params(
            step, resolve_run_refs(raw_params, state.outputs, state.envelope), state.job_id
        )
    except LorchestraError as exc:
        rec.status, rec.error = "failed", {**exc.to_dict(), "step_id": step.step_id}
        if step.continue_on_error:
            return {"items": []}
        raise StepFailed(
            str(exc), step_id=step.step_id, job_id=state.job_id, root_cause=exc
        ) from exc
    attempt = 0
    while True:
        attempt += 1
        rec.attempts += 1
        try:
            output = run_step_with_timeout(step, params, state, services)
            if not pages and is_paged(output):
                output = collect(output)
            break
        except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
            transient = getattr(exc, "classification", "permanent") == "transient"
            if transient and attempt < attempts_allowed:
                time.sleep(min(backoff * (2 ** (attempt - 1)), max_backoff))
                continue
            rec.duration_s += time.monotonic() - started
            return _failed(step, rec, exc, attempt, state)
    rec.status = "succeeded"
    rec.duration_s = round(rec.duration_s + time.monotonic() - started, 4)
    rec.rows_in += _count_in(params)
    rec.rows_out += len(output.get("items") or []) if isinstance(output, dict) else 0
    rec.rows_written += state.rows_written - written_before
    model = STEP_BY_OP.get(step.op)  # the compiled step is not the Step model itself
    recorded = model.recorded_output if model is not None else None
    if recorded and isinstance(output, dict):
        rec.shape = output[recorded]
    if not is_paged(output):
        state.outputs[step.step_id] = output
    return output


def run_step_with_timeout(
    step: Any, params: BaseModel, state: RunState, services: Services
) -> dict[str, Any]:
    """``run_step`` bounded by the step's ``timeout_s`` (the executor and Dagster ops share it).

    Python cannot kill a thread, so a step that overruns is reported as failed and
    left to finish in the background; its output is discarded.
    """
    if not step.timeout_s:
        return run_step(step, params, state, services)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"step-{step.step_id}")
    future = pool.submit(run_step, step, params, state, services)
    try:
        return future.result(timeout=float(step.timeout_s))
    except FutureTimeout:
        raise PermanentError(
            f"step {step.step_id!r} exceeded timeout_s={step.timeout_s}",
            step_id=step.step_id,
            job_id=state.job_id,
        ) from None
    finally:
        pool.shutdown(wait=False)


def _count_in(params: BaseModel) -> int:
    items = getattr(params, "items", None)
    return len(items) if isinstance(items, list) else 0


def _get(obj: Any, name: str, default: Any) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)

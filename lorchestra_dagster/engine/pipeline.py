"""Pipeline runner: stages in order, the jobs of a stage concurrently.

A stage's jobs are independent by construction (the lineage test checks that
no job depends on another of its own or a later stage), so they run in a
bounded thread pool. ``stop_on_failure`` stops before the next stage; the
failure's root cause is kept in ``failures``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal

from lorchestra_dagster.engine import records
from lorchestra_dagster.engine.executor import execute_with
from lorchestra_dagster.engine.results import JobSummary, PipelineResult
from lorchestra_dagster.engine.services import Services
from lorchestra_dagster.errors import LorchestraError, PermanentError
from lorchestra_dagster.settings import Settings

ProgressFn = Callable[[str, JobSummary | None], None]

#: Stack for the threads that run jobs. jsonatapy's Rust parser recursed past the
#: default 8 MiB thread stack (a segfault) when a process ran daily_all twice on
#: BigQuery; the main thread never showed it. Only address space is reserved.
WORKER_STACK_BYTES = 256 * 1024 * 1024


def _ensure_worker_stack() -> None:
    """Threads created from now on get ``WORKER_STACK_BYTES`` of stack (idempotent)."""
    if threading.stack_size() < WORKER_STACK_BYTES:
        threading.stack_size(WORKER_STACK_BYTES)


def run_pipeline(
    pipeline_id: str,
    *,
    services: Services | None = None,
    jobs_dir: str | None = None,
    max_workers: int = 2,
    dry_run: bool = False,
    ctx: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    batch_size: int = 5000,
    progress: ProgressFn | None = None,
    parent_run_id: str | None = None,
) -> PipelineResult:
    """Run a PipelineDef and return a result listing every job's outcome."""
    _ensure_worker_stack()
    if services is None:
        services = Services.from_settings(Settings.from_env(jobs_dir=jobs_dir))
    catalog = services.catalog
    pdef = catalog.pipelines.get(pipeline_id)
    if pdef is None:
        raise PermanentError(f"unknown pipeline {pipeline_id!r} in catalog {services.catalog_dir}")
    pdef = getattr(pdef, "pipeline", None) or getattr(pdef, "pipelinedef", None) or pdef
    run_id = uuid.uuid4().hex
    started = time.monotonic()
    started_at = datetime.now(tz=UTC)
    result = PipelineResult(
        run_id=run_id, pipeline_id=pipeline_id, status="running", dry_run=dry_run
    )
    if not dry_run:
        records.write_pipeline_run(services, result, started_at, None, parent_run_id)
    stop = False
    for stage in pdef.stages:
        ids = list(stage.jobs)
        if stop:
            for jid in ids:
                result.jobs.append(
                    JobSummary(
                        job_id=jid, stage=stage.name, status="skipped", kind=_kind(catalog, jid)
                    )
                )
                result.skipped.append(jid)
            continue
        if progress:
            progress(f"stage:{stage.name}", None)

        def run_one(jid: str, stage_name: str = stage.name) -> JobSummary:
            return _run_member(
                jid,
                stage_name,
                services,
                max_workers=max_workers,
                dry_run=dry_run,
                ctx=ctx,
                payload=payload,
                batch_size=batch_size,
                progress=progress,
                parent=run_id,
            )

        with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
            summaries = list(pool.map(run_one, ids))
        for summary in summaries:
            result.jobs.append(summary)
            result.rows_read += summary.rows_read
            result.rows_written += summary.rows_written
            if summary.status == "succeeded":
                result.succeeded.append(summary.job_id)
            else:
                result.failed.append(summary.job_id)
                result.failures.append(
                    {
                        "job_id": summary.job_id,
                        "stage": stage.name,
                        "run_id": summary.run_id,
                        "error": summary.error,
                    }
                )
        if result.failed and pdef.stop_on_failure:
            stop = True
    result.status = "failed" if result.failed else "succeeded"
    result.duration_s = round(time.monotonic() - started, 4)
    if not dry_run:
        try:
            records.write_pipeline_run(
                services, result, started_at, datetime.now(tz=UTC), parent_run_id
            )
        except LorchestraError as exc:
            result.status = "failed"
            result.failures.append(
                {
                    "job_id": None,
                    "error": {**exc.to_dict(), "message": f"pipeline record not written: {exc}"},
                }
            )
    return result


def _kind(catalog: Any, member_id: str) -> Literal["job", "pipeline"]:
    return "pipeline" if member_id in catalog.pipelines else "job"


def _run_member(
    member_id: str,
    stage: str,
    services: Services,
    *,
    max_workers: int,
    dry_run: bool,
    ctx: dict[str, Any] | None,
    payload: dict[str, Any] | None,
    batch_size: int,
    progress: ProgressFn | None,
    parent: str,
) -> JobSummary:
    catalog = services.catalog
    started = time.monotonic()
    if member_id in catalog.pipelines:
        sub = run_pipeline(
            member_id,
            services=services,
            max_workers=max_workers,
            dry_run=dry_run,
            ctx=ctx,
            payload=payload,
            batch_size=batch_size,
            progress=progress,
            parent_run_id=parent,
        )
        error = {"failures": sub.failures} if sub.failures else None
        summary = JobSummary(
            job_id=member_id,
            kind="pipeline",
            stage=stage,
            status=sub.status,
            run_id=sub.run_id,
            rows_read=sub.rows_read,
            rows_written=sub.rows_written,
            duration_s=sub.duration_s,
            error=error,
        )
    else:
        res = execute_with(
            {
                "job_id": member_id,
                "ctx": ctx or {},
                "payload": payload or {},
                "dry_run": dry_run,
                "batch_size": batch_size,
                "parent_run_id": parent,
            },
            services,
        )
        summary = JobSummary(
            job_id=member_id,
            stage=stage,
            status=res.status,
            run_id=res.run_id,
            rows_read=res.rows_read,
            rows_written=res.rows_written,
            duration_s=round(time.monotonic() - started, 4),
            error=res.error,
        )
    if progress:
        progress(f"done:{member_id}", summary)
    return summary

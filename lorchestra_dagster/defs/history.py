"""The one run history: what Dagster's instance knows of every run, read back as lorchestra results.

Every face starts Dagster runs, and the catalog op records each job as the
metadata of its asset's materialization or observation (``RECORD_KEY``:
counts, timings, step records, root cause; never rows). This module turns a
run's events back into a ``PipelineResult`` for ``lorchestra runs show``, the
CLI's summary and the run-failure sensor.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from lorchestra_dagster.defs.catalog_assets import LAUNCHED_BY_TAG, RECORD_KEY, launched_by
from lorchestra_dagster.defs.pipelines import PIPELINE_TAG
from lorchestra_dagster.engine.results import JobSummary, PipelineResult
from lorchestra_dagster.errors import PermanentError

_STATUS = {
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "CANCELED": "failed",
    "STARTED": "running",
    "STARTING": "running",
    "QUEUED": "running",
    "NOT_STARTED": "running",
    "MANAGED": "running",
    "CANCELING": "running",
}


def _summaries(instance: dg.DagsterInstance, run_id: str) -> tuple[list[JobSummary], list[str]]:
    """Per-job records of a run (from its asset events) and run-level error messages."""
    wanted = {
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.ASSET_OBSERVATION,
        dg.DagsterEventType.STEP_FAILURE,
    }
    jobs: dict[str, JobSummary] = {}
    errors: list[str] = []
    for record in instance.get_records_for_run(run_id, of_type=wanted, limit=100_000).records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        data = event.event_specific_data
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            failure = getattr(data, "user_failure_data", None)
            error = getattr(data, "error", None)
            if failure is None and error is not None:  # a crash, not a job's own failure
                errors.append(f"{error.cls_name}: {error.message.strip()[:500]}")
            continue
        holder = getattr(data, "materialization", None) or getattr(data, "asset_observation", None)
        rec = holder.metadata.get(RECORD_KEY) if holder is not None else None
        if rec is not None:
            summary = JobSummary.model_validate({**rec.value, "run_id": run_id})
            jobs[summary.job_id] = summary
    return list(jobs.values()), errors


def result_of_run(
    instance: dg.DagsterInstance, run_id: str, *, target: str | None = None
) -> PipelineResult:
    """One run of the history as a ``PipelineResult`` (jobs, counts, failures)."""
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        raise PermanentError(f"no run {run_id!r} in the instance")
    run = record.dagster_run
    jobs, errors = _summaries(instance, run_id)
    started = record.start_time
    ended = record.end_time
    result = PipelineResult(
        run_id=run_id,
        pipeline_id=target or run.tags.get(PIPELINE_TAG) or _job_target(jobs, run.job_name),
        status=_STATUS.get(run.status.value, "running"),  # type: ignore[arg-type]
        dry_run=_dry(run.run_config),
        launched_by=run.tags.get(LAUNCHED_BY_TAG) or launched_by(run),
        dagster_job=run.job_name,
        started_at=datetime.fromtimestamp(started, tz=UTC).isoformat() if started else None,
        duration_s=round((ended or started or 0) - (started or 0), 3) if started else 0.0,
        jobs=jobs,
    )
    for job in jobs:
        result.rows_read += job.rows_read
        result.rows_written += job.rows_written
        if job.status == "succeeded":
            result.succeeded.append(job.job_id)
        elif job.status == "failed":
            result.failed.append(job.job_id)
            result.failures.append(
                {"job_id": job.job_id, "stage": job.stage, "run_id": run_id, "error": job.error}
            )
        else:
            result.skipped.append(job.job_id)
    if result.status == "failed" and not result.failures:
        for message in errors or ["the run failed before any job started"]:
            result.failures.append(
                {"job_id": None, "error": {"message": message, "classification": "permanent"}}
            )
    return result


def _dry(config: Mapping[str, Any]) -> bool:
    envelope = ((config or {}).get("resources") or {}).get("envelope") or {}
    return bool((envelope.get("config") or {}).get("dry_run"))


def _job_target(jobs: list[JobSummary], job_name: str) -> str:
    return jobs[0].job_id if len(jobs) == 1 else job_name


def list_runs(instance: dg.DagsterInstance, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent runs of the instance, newest first (every face's runs)."""
    rows = []
    for record in instance.get_run_records(limit=limit):
        run = record.dagster_run
        started, ended = record.start_time, record.end_time
        rows.append(
            {
                "run_id": run.run_id,
                "dagster_job": run.job_name,
                "pipeline_id": run.tags.get(PIPELINE_TAG),
                "status": _STATUS.get(run.status.value, "running"),
                "launched_by": run.tags.get(LAUNCHED_BY_TAG) or launched_by(run),
                "dry_run": _dry(run.run_config),
                "started_at": datetime.fromtimestamp(started, tz=UTC).isoformat()
                if started
                else None,
                "duration_s": round(ended - started, 3) if started and ended else None,
            }
        )
    return rows


def resolve_run_id(instance: dg.DagsterInstance, run_id: str) -> str:
    """A full run id from an id or a unique prefix of one."""
    if instance.get_run_record_by_id(run_id) is not None:
        return run_id
    matches = [
        r.dagster_run.run_id
        for r in instance.get_run_records(limit=5000)
        if r.dagster_run.run_id.startswith(run_id)
    ]
    if len(matches) != 1:
        raise PermanentError(f"{len(matches)} runs match {run_id!r}")
    return matches[0]


def slowest_step(result: PipelineResult) -> tuple[str, str, str, float] | None:
    """``(job_id, step_id, op, seconds)`` of the run's slowest step, if any step ran."""
    best: tuple[str, str, str, float] | None = None
    for job in result.jobs:
        for step in job.steps:
            if best is None or step.duration_s > best[3]:
                best = (job.job_id, step.step_id, step.op, step.duration_s)
    return best

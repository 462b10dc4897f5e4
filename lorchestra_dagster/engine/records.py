"""Run records: every run, its steps and its pipeline parent land in the ``ops`` dataset.

Records go through storacle plans like any other write, so they share the
warehouse's atomicity and the same failure handling. Manifests come from the
spec's ``StepManifest``: params with every payload replaced by a count and a
hash, so no client data is recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lorchestra_dagster.engine.results import ExecutionResult, PipelineResult
from lorchestra_dagster.spec import StepManifest


def _submit(
    services: Any, table: str, key: list[str], rows: list[dict[str, Any]], run_id: str
) -> None:
    from lorchestra_dagster.storacle.plan import make_plan

    plan = make_plan(
        [
            (
                "bq.upsert",
                {
                    "dataset": "ops",
                    "table": table,
                    "key_columns": key,
                    "rows": rows,
                    "skip_update_columns": [],
                    "volatile_columns": [],
                },
            )
        ],
        {"correlation_id": run_id, "run_id": run_id, "step_id": "_record", "job_id": "_ops"},
    )
    services.client.execute_plan(plan.model_dump(mode="json"), dry_run=False)


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def _run_row(
    result: ExecutionResult | PipelineResult,
    started_at: datetime,
    finished_at: datetime | None,
    **fields: Any,
) -> dict[str, Any]:
    """The ``ops.runs`` columns a job run and a pipeline run share, plus ``fields``."""
    return {
        "run_id": result.run_id,
        "status": result.status,
        "dry_run": result.dry_run,
        "started_at": _iso(started_at),
        "finished_at": _iso(finished_at),
        "duration_s": float(result.duration_s),
        "rows_read": result.rows_read,
        "rows_written": result.rows_written,
        **fields,
    }


def _manifest(step_id: str, op: str, params: dict[str, Any] | None) -> dict[str, Any]:
    return StepManifest.from_params(step_id, op, params or {}).model_dump(mode="json")


def write_run(
    services: Any,
    result: ExecutionResult,
    started_at: datetime,
    finished_at: datetime | None,
    instance: Any = None,
) -> None:
    """Upsert the run row (and, once finished, its step rows)."""
    manifest = None
    if instance is not None:
        manifest = {
            "job_def_sha256": instance.job_def_sha256,
            "steps": [_manifest(s.step_id, s.op, s.params) for s in instance.steps],
        }
    row = _run_row(
        result,
        started_at,
        finished_at,
        kind="job",
        job_id=result.job_id,
        pipeline_id=None,
        parent_run_id=result.parent_run_id,
        job_def_sha256=result.job_def_sha256,
        error=result.error,
        manifest=manifest,
    )
    _submit(services, "runs", ["run_id"], [row], result.run_id)
    if finished_at is None or not result.steps:
        return
    params = {s.step_id: s.params for s in instance.steps} if instance is not None else {}
    steps = [
        {
            "run_id": result.run_id,
            "step_id": s.step_id,
            "op": s.op,
            "status": s.status,
            "attempts": s.attempts,
            "started_at": None,
            "finished_at": _iso(finished_at),
            "duration_s": float(s.duration_s),
            "rows_in": s.rows_in,
            "rows_out": s.rows_out,
            "rows_written": s.rows_written,
            "manifest": _manifest(s.step_id, s.op, params.get(s.step_id)),
            "error": s.error,
        }
        for s in result.steps
    ]
    _submit(services, "step_runs", ["run_id", "step_id"], steps, result.run_id)


def write_pipeline_run(
    services: Any,
    result: PipelineResult,
    started_at: datetime,
    finished_at: datetime | None,
    parent_run_id: str | None,
) -> None:
    """The pipeline-level record links every child run id in its manifest."""
    children = [
        {"job_id": j.job_id, "kind": j.kind, "run_id": j.run_id, "status": j.status}
        for j in result.jobs
    ]
    row = _run_row(
        result,
        started_at,
        finished_at,
        kind="pipeline",
        job_id=None,
        pipeline_id=result.pipeline_id,
        parent_run_id=parent_run_id,
        job_def_sha256=None,
        error={"failures": result.failures} if result.failures else None,
        manifest={"children": children},
    )
    _submit(services, "runs", ["run_id"], [row], result.run_id)

"""Run records: every run, its steps and its pipeline parent land in the ``ops`` dataset.

Records go through storacle plans like any other write, so they share the
warehouse's atomicity and the same failure handling. Manifests keep params
but replace every list of items by a count and a hash: no payload is recorded.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from lorchestra_dagster.engine.results import ExecutionResult, PipelineResult


def redact(value: Any) -> Any:
    """Params with item lists and plans replaced by ``{count, sha256}``."""
    if isinstance(value, dict):
        if "ops" in value and "plan_id" in value:
            return {"plan_id": value["plan_id"], "ops": len(value.get("ops") or [])}
        return {
            k: (
                _digest(v)
                if k in ("items", "rows", "content") and isinstance(v, list | str)
                else redact(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return _digest(value)
        return [redact(v) for v in value]
    return value


def _digest(value: Any) -> dict[str, Any]:
    text = json.dumps(value, sort_keys=True, default=str).encode()
    count = len(value) if isinstance(value, list) else 1
    return {"count": count, "sha256": hashlib.sha256(text).hexdigest()}


def _submit(
    services: Any, dataset: str, table: str, key: list[str], rows: list[dict[str, Any]], run_id: str
) -> None:
    from lorchestra_dagster.storacle.plan import make_plan

    plan = make_plan(
        [
            (
                "bq.upsert",
                {
                    "dataset": dataset,
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
            "steps": [
                {"step_id": s.step_id, "op": s.op, "params": redact(s.params)}
                for s in instance.steps
            ],
        }
    _submit(
        services,
        "ops",
        "runs",
        ["run_id"],
        [
            {
                "run_id": result.run_id,
                "kind": "job",
                "job_id": result.job_id,
                "pipeline_id": None,
                "parent_run_id": result.parent_run_id,
                "status": result.status,
                "dry_run": result.dry_run,
                "started_at": _iso(started_at),
                "finished_at": _iso(finished_at),
                "duration_s": float(result.duration_s),
                "rows_read": result.rows_read,
                "rows_written": result.rows_written,
                "job_def_sha256": result.job_def_sha256,
                "error": result.error,
                "manifest": manifest,
            }
        ],
        result.run_id,
    )
    if finished_at is None or not result.steps:
        return
    params = {s.step_id: s.params for s in instance.steps} if instance is not None else {}
    _submit(
        services,
        "ops",
        "step_runs",
        ["run_id", "step_id"],
        [
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
                "manifest": {
                    "step_id": s.step_id,
                    "op": s.op,
                    "params": redact(params.get(s.step_id)),
                },
                "error": s.error,
            }
            for s in result.steps
        ],
        result.run_id,
    )


def write_pipeline_run(
    services: Any,
    result: PipelineResult,
    started_at: datetime,
    finished_at: datetime | None,
    parent_run_id: str | None,
) -> None:
    """The pipeline-level record links every child run id in its manifest."""
    _submit(
        services,
        "ops",
        "runs",
        ["run_id"],
        [
            {
                "run_id": result.run_id,
                "kind": "pipeline",
                "job_id": None,
                "pipeline_id": result.pipeline_id,
                "parent_run_id": parent_run_id,
                "status": result.status,
                "dry_run": result.dry_run,
                "started_at": _iso(started_at),
                "finished_at": _iso(finished_at),
                "duration_s": float(result.duration_s),
                "rows_read": result.rows_read,
                "rows_written": result.rows_written,
                "job_def_sha256": None,
                "error": {"failures": result.failures} if result.failures else None,
                "manifest": {
                    "children": [
                        {"job_id": j.job_id, "kind": j.kind, "run_id": j.run_id, "status": j.status}
                        for j in result.jobs
                    ]
                },
            }
        ],
        result.run_id,
    )

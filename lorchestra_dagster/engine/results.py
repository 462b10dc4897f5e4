"""Result models returned by ``execute`` and ``run_pipeline`` (the public API)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["succeeded", "failed", "skipped", "running"]


class StepResult(BaseModel):
    """Outcome of one step, aggregated over batches and attempts."""

    model_config = ConfigDict(extra="forbid")

    step_id: str
    op: str
    status: Status
    attempts: int = 0
    duration_s: float = 0.0
    rows_in: int = 0
    rows_out: int = 0
    rows_written: int = 0
    error: dict[str, Any] | None = None
    shape: dict[str, Any] | None = Field(
        default=None,
        description="log.dump: the items' shape (counts, field names, keys, hashes; no value)",
    )


class ExecutionResult(BaseModel):
    """Outcome of one job run: what ``lorchestra run --json`` prints."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    job_id: str
    status: Status
    dry_run: bool = False
    rows_read: int = 0
    rows_written: int = 0
    duration_s: float = 0.0
    started_at: str | None = None
    job_def_sha256: str | None = None
    parent_run_id: str | None = None
    steps: list[StepResult] = Field(default_factory=list)
    plans: list[dict[str, Any]] = Field(default_factory=list, description="dry-run plan summaries")
    submitted: dict[str, int] = Field(
        default_factory=dict, description="rows, inserted, updated, unchanged, deleted"
    )
    plan_ids: list[str] = Field(default_factory=list)
    error: dict[str, Any] | None = None
    #: the last step's output, for a pipeline loop that iterates it (``@run.<job>.items``);
    #: client data, so it lives in memory only and is never part of a dump
    output: Any = Field(default=None, exclude=True, repr=False)
    iterations: int | None = Field(default=None, description="Loop stage: items run")

    def error_message(self) -> str:
        if not self.error:
            return ""
        where = self.error.get("step_id")
        msg = self.error.get("message", "")
        return f"step {where}: {msg}" if where else msg


class JobSummary(BaseModel):
    """One job (or sub-pipeline) inside a pipeline run."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    kind: Literal["job", "pipeline"] = "job"
    stage: str
    status: Status
    run_id: str | None = None
    rows_read: int = 0
    rows_written: int = 0
    duration_s: float = 0.0
    error: dict[str, Any] | None = None
    reason: str | None = Field(default=None, description="why a job did not run (skipped)")
    started_at: str | None = None
    job_def_sha256: str | None = None
    steps: list[StepResult] = Field(default_factory=list)
    plans: list[dict[str, Any]] = Field(default_factory=list, description="dry-run plan summaries")
    submitted: dict[str, int] = Field(default_factory=dict)
    plan_ids: list[str] = Field(default_factory=list)


class PipelineResult(BaseModel):
    """Outcome of one Dagster run of a pipeline or job, read back from Dagster's history.

    What ``lorchestra pipeline run --json`` prints and ``lorchestra runs show`` reads.
    """

    model_config = ConfigDict(extra="forbid")

    run_id: str
    pipeline_id: str
    status: Status
    dry_run: bool = False
    launched_by: str | None = None
    dagster_job: str | None = None
    started_at: str | None = None
    duration_s: float = 0.0
    rows_read: int = 0
    rows_written: int = 0
    jobs: list[JobSummary] = Field(default_factory=list)
    succeeded: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    failures: list[dict[str, Any]] = Field(default_factory=list)
    alerts: dict[str, Any] | None = Field(
        default=None,
        description="The alert sync after a pipeline run (counts only; docs/clinical-safety.md)",
    )


def merge_iterations(job_id: str, run_id: str, results: list[ExecutionResult]) -> ExecutionResult:
    """One result for a job a loop stage ran once per item: counts summed, first error kept.

    The error names the item's index only (an item is client data).
    """
    merged = ExecutionResult(run_id=run_id, job_id=job_id, status="succeeded")
    merged.iterations = len(results)
    for n, res in enumerate(results):
        merged.rows_read += res.rows_read
        merged.rows_written += res.rows_written
        merged.duration_s += res.duration_s
        merged.plans.extend(res.plans)
        merged.plan_ids.extend(res.plan_ids)
        merged.dry_run = merged.dry_run or res.dry_run
        merged.started_at = merged.started_at or res.started_at
        merged.job_def_sha256 = merged.job_def_sha256 or res.job_def_sha256
        for key, value in res.submitted.items():
            merged.submitted[key] = merged.submitted.get(key, 0) + value
        merged.steps = res.steps
        if res.status == "failed" and merged.error is None:
            merged.status = "failed"
            err = dict(res.error or {})
            err["message"] = f"loop item {n}: {err.get('message', 'failed')}"
            merged.error = err
    merged.duration_s = round(merged.duration_s, 4)
    return merged

"""``lorchestra run``, ``pipeline run`` and ``runs``: executing jobs and reading their records."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lorchestra_dagster.cli.app import (
    app,
    console,
    err_console,
    parse_ctx,
    parse_payload,
    print_json,
)
from lorchestra_dagster.errors import LorchestraError

pipeline_app = typer.Typer(help="Run pipelines (stages of jobs).", no_args_is_help=True)
runs_app = typer.Typer(help="Inspect run records in ops.runs.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(runs_app, name="runs")

JobsDir = typer.Option(None, "--jobs-dir", help="Catalog directory (env LORCHESTRA_JOBS_DIR).")


def _services(jobs_dir: str | None) -> Any:
    from lorchestra_dagster.engine import Services
    from lorchestra_dagster.settings import Settings

    return Services.from_settings(Settings.from_env(jobs_dir=jobs_dir))


@app.command("run")
def run_cmd(
    job_id: str = typer.Argument(..., help="The job_id to run."),
    jobs_dir: str | None = JobsDir,
    ctx: list[str] = typer.Option([], "--ctx", help="Context values key=value (repeatable)."),
    payload: str | None = typer.Option(None, "--payload", help="Payload as a JSON object."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Build and show plans; write nothing."),
    limit: int | None = typer.Option(None, "--limit", help="Read at most N rows per query."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run one job."""
    from lorchestra_dagster.engine import execute_with

    envelope = {
        "job_id": job_id,
        "ctx": parse_ctx(ctx),
        "payload": parse_payload(payload),
        "dry_run": dry_run,
        "limit": limit,
    }
    try:
        services = _services(jobs_dir)
        with console.status(f"running {job_id}", spinner="dots") if not as_json else _null():
            result = execute_with(envelope, services)
    except LorchestraError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        _print_job(result)
    raise typer.Exit(0 if result.status == "succeeded" else 1)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _print_job(result: Any) -> None:
    colour = "green" if result.status == "succeeded" else "red"
    console.print(
        f"[{colour}]{result.status}[/{colour}] {result.job_id} run {result.run_id} "
        f"read {result.rows_read} wrote {result.rows_written} in {result.duration_s:.2f}s"
        + (" (dry run: nothing written)" if result.dry_run else "")
    )
    table = Table("step", "op", "status", "attempts", "rows in", "rows out", "written", "s")
    for s in result.steps:
        table.add_row(
            s.step_id,
            s.op,
            s.status,
            str(s.attempts),
            str(s.rows_in),
            str(s.rows_out),
            str(s.rows_written),
            f"{s.duration_s:.2f}",
        )
    console.print(table)
    for plan in result.plans:
        for op in plan["ops"]:
            console.print(
                f"  plan {plan['plan_id'][:12]} {op['method']} {op['target']} rows={op['rows']}"
            )
    if result.error:
        err_console.print(f"[red]error:[/red] {result.error_message()}")


@pipeline_app.command("run")
def pipeline_run_cmd(
    pipeline_id: str = typer.Argument(..., help="The pipeline_id, e.g. pipeline.daily_all."),
    jobs_dir: str | None = JobsDir,
    max_workers: int = typer.Option(2, "--max-workers", min=1, help="Jobs run at once."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Build plans; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run a pipeline: stages in order, jobs of a stage in parallel."""
    from lorchestra_dagster.engine import run_pipeline

    try:
        services = _services(jobs_dir)
        if as_json:
            result = run_pipeline(
                pipeline_id, services=services, max_workers=max_workers, dry_run=dry_run
            )
        else:
            total = _count_jobs(services.catalog, pipeline_id)
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task(pipeline_id, total=total)

                def progress(event: str, summary: Any) -> None:
                    if event.startswith("stage:"):
                        bar.update(task, description=f"{pipeline_id} [{event[6:]}]")
                    elif summary is not None and summary.kind == "job":
                        bar.advance(task)
                        mark = "ok" if summary.status == "succeeded" else summary.status
                        bar.console.print(
                            f"  {mark:9} {summary.job_id} read "
                            f"{summary.rows_read} wrote {summary.rows_written}"
                        )

                result = run_pipeline(
                    pipeline_id,
                    services=services,
                    max_workers=max_workers,
                    dry_run=dry_run,
                    progress=progress,
                )
    except LorchestraError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        print_json(
            {
                "pipeline_id": result.pipeline_id,
                "run_id": result.run_id,
                "status": result.status,
                "dry_run": result.dry_run,
                "duration_s": result.duration_s,
                "rows_read": result.rows_read,
                "rows_written": result.rows_written,
                "jobs": [j.model_dump(mode="json") for j in _flatten(result, services)],
                "failures": result.failures,
            }
        )
    else:
        colour = "green" if result.status == "succeeded" else "red"
        console.print(
            f"[{colour}]{result.status}[/{colour}] {pipeline_id} run {result.run_id}: "
            f"{len(result.succeeded)} ok, {len(result.failed)} failed, "
            f"{len(result.skipped)} skipped; read {result.rows_read} wrote "
            f"{result.rows_written} in {result.duration_s:.1f}s"
        )
        for failure in result.failures:
            err_console.print(
                f"[red]failed[/red] {failure.get('job_id')}: {_failure_text(failure.get('error'))}"
            )
    raise typer.Exit(0 if result.status == "succeeded" else 1)


def _failure_text(error: Any) -> str:
    if not error:
        return ""
    if "failures" in error:
        return "; ".join(
            f"{f.get('job_id')}: {_failure_text(f.get('error'))}" for f in error["failures"]
        )
    return f"{error.get('step_id', '')} {error.get('message', '')}".strip()


def _count_jobs(catalog: Any, pipeline_id: str) -> int:
    pdef = catalog.pipelines.get(pipeline_id)
    if pdef is None:
        return 0
    pdef = getattr(pdef, "pipeline", None) or getattr(pdef, "pipelinedef", None) or pdef
    total = 0
    for stage in pdef.stages:
        for jid in stage.jobs:
            total += _count_jobs(catalog, jid) if jid in catalog.pipelines else 1
    return total


def _flatten(result: Any, services: Any) -> list[Any]:
    """Job-level summaries, with sub-pipelines expanded from their run records."""
    out = []
    for job in result.jobs:
        if job.kind == "pipeline" and job.run_id:
            rows = (
                services.client.query(
                    {
                        "dataset": "ops",
                        "table": "runs",
                        "columns": [
                            "run_id",
                            "job_id",
                            "status",
                            "rows_read",
                            "rows_written",
                            "duration_s",
                        ],
                        "filters": {"parent_run_id": job.run_id},
                    }
                )
                if not result.dry_run
                else []
            )
            if rows:
                from lorchestra_dagster.engine.results import JobSummary

                out.extend(
                    JobSummary(
                        job_id=r["job_id"],
                        stage=job.stage,
                        status=r["status"],
                        run_id=r["run_id"],
                        rows_read=r["rows_read"] or 0,
                        rows_written=r["rows_written"] or 0,
                        duration_s=r["duration_s"] or 0.0,
                    )
                    for r in rows
                    if r.get("job_id")
                )
                continue
        out.append(job)
    return out


@runs_app.command("list")
def runs_list(
    limit: int = typer.Option(20, "--limit", help="Most recent N runs."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List recent runs (jobs and pipelines)."""
    services = _services(None)
    rows = services.client.query(
        {
            "dataset": "ops",
            "table": "runs",
            "columns": [
                "run_id",
                "kind",
                "job_id",
                "pipeline_id",
                "status",
                "started_at",
                "duration_s",
                "rows_read",
                "rows_written",
                "parent_run_id",
            ],
            "order_by": ["started_at DESC"],
            "limit": limit,
        }
    )
    if as_json:
        print_json(rows)
        return
    table = Table("run_id", "kind", "job/pipeline", "status", "started", "read", "wrote")
    for r in rows:
        table.add_row(
            r["run_id"][:12],
            r["kind"],
            r.get("job_id") or r.get("pipeline_id"),
            r["status"],
            str(r["started_at"])[:19],
            str(r["rows_read"]),
            str(r["rows_written"]),
        )
    console.print(table)


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")):
    """Show one run with its steps (accepts a unique run id prefix)."""
    services = _services(None)
    runs = services.client.query(
        {
            "dataset": "ops",
            "table": "runs",
            "columns": ["*"],
            "parse_json_columns": ["error", "manifest"],
        }
    )
    match = [r for r in runs if r["run_id"].startswith(run_id)]
    if len(match) != 1:
        err_console.print(f"[red]error:[/red] {len(match)} runs match {run_id!r}")
        raise typer.Exit(1)
    run = match[0]
    steps = services.client.query(
        {
            "dataset": "ops",
            "table": "step_runs",
            "columns": ["*"],
            "filters": {"run_id": run["run_id"]},
            "parse_json_columns": ["error", "manifest"],
        }
    )
    if as_json:
        print_json({**run, "steps": steps})
        return
    console.print(
        f"{run['kind']} {run.get('job_id') or run.get('pipeline_id')} "
        f"{run['status']} run {run['run_id']}"
    )
    table = Table("step", "op", "status", "attempts", "in", "out", "written")
    for s in steps:
        table.add_row(
            s["step_id"],
            s["op"],
            s["status"],
            str(s["attempts"]),
            str(s["rows_in"]),
            str(s["rows_out"]),
            str(s["rows_written"]),
        )
    console.print(table)
    if run.get("error"):
        err_console.print(f"[red]error:[/red] {json.dumps(run['error'], default=str)}")

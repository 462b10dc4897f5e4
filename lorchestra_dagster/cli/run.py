"""``lorchestra run``, ``pipeline run`` and ``runs``: Dagster runs from the shell, and history.

Both run commands start a Dagster run in this process against the instance
in ``$LORCHESTRA_HOME/dagster`` (``lorchestra_dagster.launch``): the same
code location, op and engine as the UI, the schedule and the sensors, and the
same run history, which ``runs list|show`` read.
"""

from __future__ import annotations

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
runs_app = typer.Typer(
    help="Inspect the run history (Dagster's, every face).", no_args_is_help=True
)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(runs_app, name="runs")

JobsDir = typer.Option(None, "--jobs-dir", help="Catalog directory (env LORCHESTRA_JOBS_DIR).")
Force = typer.Option(False, "--force", help="Run jobs even when their inputs did not change.")


def _settings(jobs_dir: str | None) -> Any:
    from lorchestra_dagster.settings import Settings

    return Settings.from_env(jobs_dir=jobs_dir)


@app.command("run")
def run_cmd(
    job_id: str = typer.Argument(..., help="The job_id to run."),
    jobs_dir: str | None = JobsDir,
    ctx: list[str] = typer.Option([], "--ctx", help="Context values key=value (repeatable)."),
    payload: str | None = typer.Option(None, "--payload", help="Payload as a JSON object."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Build and show plans; write nothing."),
    limit: int | None = typer.Option(None, "--limit", help="Read at most N rows per query."),
    force: bool = Force,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run one job (a Dagster run of its asset)."""
    from lorchestra_dagster.launch import launch

    try:
        with console.status(f"running {job_id}", spinner="dots") if not as_json else _null():
            result = launch(
                job_id,
                kind="job",
                settings=_settings(jobs_dir),
                ctx=parse_ctx(ctx),
                payload=parse_payload(payload),
                dry_run=dry_run,
                limit=limit,
                force=force,
            )
    except LorchestraError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    job = result.jobs[0] if result.jobs else None
    if as_json:
        print_json(_job_json(result, job))
    else:
        _print_job(result, job)
    raise typer.Exit(0 if result.status == "succeeded" else 1)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _job_json(result: Any, job: Any) -> dict[str, Any]:
    out = job.model_dump(mode="json") if job is not None else {"job_id": result.pipeline_id}
    out.update(
        run_id=result.run_id,
        status=result.status if job is None or job.status != "skipped" else "succeeded",
        job_status=job.status if job is not None else None,
        dry_run=result.dry_run,
        launched_by=result.launched_by,
    )
    if result.failures and not out.get("error"):
        out["error"] = result.failures[0].get("error")
    return out


def _print_job(result: Any, job: Any) -> None:
    colour = "green" if result.status == "succeeded" else "red"
    if job is None:
        console.print(
            f"[{colour}]{result.status}[/{colour}] {result.pipeline_id} run {result.run_id}"
        )
        for failure in result.failures:
            err_console.print(f"[red]error:[/red] {_failure_text(failure.get('error'))}")
        return
    what = job.status if job.status != "skipped" else f"skipped ({job.reason})"
    console.print(
        f"[{colour}]{what}[/{colour}] {job.job_id} run {result.run_id} "
        f"read {job.rows_read} wrote {job.rows_written} in {job.duration_s:.2f}s"
        + (" (dry run: nothing written)" if result.dry_run else ""),
        highlight=False,
    )
    if job.steps:
        table = Table("step", "op", "status", "attempts", "rows in", "rows out", "written", "s")
        for s in job.steps:
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
    for plan in job.plans:
        for op in plan.get("ops", []):
            console.print(
                f"  plan {str(plan.get('plan_id'))[:12]} {op['method']} {op['target']} "
                f"rows={op['rows']}",
                highlight=False,
            )
    if job.error:
        err_console.print(f"[red]error:[/red] {_failure_text(job.error)}", highlight=False)


@pipeline_app.command("run")
def pipeline_run_cmd(
    pipeline_id: str = typer.Argument(..., help="The pipeline_id, e.g. pipeline.daily_all."),
    jobs_dir: str | None = JobsDir,
    max_workers: int = typer.Option(2, "--max-workers", min=1, help="Jobs run at once."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Build plans; write nothing."),
    force: bool = Force,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run a pipeline: stages in order, jobs of a stage in parallel (one Dagster run)."""
    from lorchestra_dagster.launch import code_location, launch

    settings = _settings(jobs_dir)
    options = {"max_workers": max_workers, "dry_run": dry_run, "force": force}
    try:
        if as_json:
            result = launch(pipeline_id, kind="pipeline", settings=settings, **options)
        else:
            _defs, report = code_location(settings)
            report.catalog.pipeline(pipeline_id)
            total = _count_jobs(report.catalog, pipeline_id)
            for jid, broken in sorted(report.broken.items()):
                if jid in _members(report.catalog, pipeline_id):
                    err_console.print(
                        f"[red]invalid[/red] {jid} will not run: {broken.message()}",
                        highlight=False,
                        soft_wrap=True,
                    )
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task(pipeline_id, total=total)

                def progress(summary: Any) -> None:
                    bar.advance(task)
                    bar.update(task, description=f"{pipeline_id} [{summary.stage}]")
                    mark = "ok" if summary.status == "succeeded" else summary.status
                    why = f" ({summary.reason})" if summary.reason else ""
                    bar.console.print(
                        f"  {mark:9} {summary.job_id} read "
                        f"{summary.rows_read} wrote {summary.rows_written}{why}",
                        highlight=False,
                    )

                result = launch(
                    pipeline_id, kind="pipeline", settings=settings, progress=progress, **options
                )
    except LorchestraError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        colour = "green" if result.status == "succeeded" else "red"
        unchanged = sum(1 for j in result.jobs if j.reason and j.reason.startswith("inputs"))
        console.print(
            f"[{colour}]{result.status}[/{colour}] {pipeline_id} run {result.run_id}: "
            f"{len(result.succeeded)} job(s) ok, {len(result.failed)} failed, "
            f"{len(result.skipped)} skipped ({unchanged} unchanged); read {result.rows_read} "
            f"wrote {result.rows_written} in {result.duration_s:.1f}s",
            highlight=False,
        )
        for failure in result.failures:
            err_console.print(
                f"[red]failed[/red] {failure.get('job_id') or 'run'}: "
                f"{_failure_text(failure.get('error'))}",
                highlight=False,
            )
        _print_alerts(result.alerts)
    notify_failed = bool(result.alerts and result.alerts.get("errors"))
    raise typer.Exit(0 if result.status == "succeeded" and not notify_failed else 1)


def _print_alerts(alerts: dict[str, Any] | None) -> None:
    """The alert sync's outcome: open alerts are said, a failed notification is an error."""
    if not alerts:
        return
    if alerts.get("open"):
        console.print(
            f"[red]{alerts['open']} open safety alert(s)[/red] ({alerts['open_critical']} "
            f"critical, {alerts['opened']} new): `lorchestra alerts list`",
            highlight=False,
        )
    for error in alerts.get("errors") or []:
        err_console.print(f"[red]alert notification failed[/red] {error}", highlight=False)


def _failure_text(error: Any) -> str:
    if not error:
        return ""
    where = f"step {error['step_id']}: " if error.get("step_id") else ""
    return f"{where}{error.get('message', '')}".strip()


def _members(catalog: Any, pipeline_id: str) -> set[str]:
    from lorchestra_dagster.defs.pipelines import flatten

    return set(flatten(catalog, pipeline_id).job_ids)


def _count_jobs(catalog: Any, pipeline_id: str) -> int:
    return len(_members(catalog, pipeline_id))


@runs_app.command("list")
def runs_list(
    limit: int = typer.Option(20, "--limit", help="Most recent N runs."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List recent runs of every face (CLI, UI, schedule, sensors), newest first."""
    from lorchestra_dagster.launch import list_runs

    rows = list_runs(limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table("run_id", "dagster job", "pipeline", "by", "status", "started", "s")
    for r in rows:
        table.add_row(
            r["run_id"][:8],
            r["dagster_job"],
            r.get("pipeline_id") or "",
            r["launched_by"],
            r["status"],
            str(r["started_at"] or "")[:19],
            f"{r['duration_s']:.1f}" if r["duration_s"] is not None else "",
        )
    console.print(table)


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")):
    """Show one run with its jobs and the slowest step (accepts a unique run id prefix)."""
    from lorchestra_dagster.launch import show_run, slowest_step

    try:
        result = show_run(run_id)
    except LorchestraError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    slow = slowest_step(result)
    if as_json:
        out = result.model_dump(mode="json")
        out["slowest_step"] = (
            {"job_id": slow[0], "step_id": slow[1], "op": slow[2], "duration_s": slow[3]}
            if slow
            else None
        )
        print_json(out)
        return
    console.print(
        f"{result.dagster_job} {result.pipeline_id} {result.status} run {result.run_id} "
        f"(launched by {result.launched_by}) in {result.duration_s:.1f}s",
        highlight=False,
    )
    table = Table("job", "stage", "status", "read", "wrote", "s", "note")
    for j in result.jobs:
        table.add_row(
            j.job_id,
            j.stage,
            j.status,
            str(j.rows_read),
            str(j.rows_written),
            f"{j.duration_s:.2f}",
            j.reason or "",
        )
    console.print(table)
    if slow:
        console.print(
            f"slowest step: {slow[0]}/{slow[1]} ({slow[2]}) {slow[3]:.2f}s", highlight=False
        )
    for failure in result.failures:
        err_console.print(
            f"[red]failed[/red] {failure.get('job_id') or 'run'}: "
            f"{_failure_text(failure.get('error'))}",
            highlight=False,
        )
    raise typer.Exit(0)

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
CtxOpt = typer.Option(
    [], "--ctx", help="Context: key=value or a JSON object (repeatable, later ones win)."
)
PayloadOpt = typer.Option(None, "--payload", help="Payload as a JSON object.")


def _settings(jobs_dir: str | None) -> Any:
    from lorchestra_dagster.settings import Settings

    return Settings.from_env(jobs_dir=jobs_dir)


NoPreflight = typer.Option(
    False, "--no-preflight", help="Start even when credentials are missing (those jobs fail)."
)


@app.command("run")
def run_cmd(
    job_id: str | None = typer.Argument(None, help="The job_id to run (or use --select)."),
    jobs_dir: str | None = JobsDir,
    select: list[str] = typer.Option(
        [],
        "--select",
        "-s",
        help="Jobs of the whole catalog instead of one: ids or globs, stage:NAME, "
        "+job (upstream), job+ (downstream); with JOB_ID, one more token.",
    ),
    ctx: list[str] = CtxOpt,
    payload: str | None = PayloadOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Build and show plans; write nothing."),
    limit: int | None = typer.Option(None, "--limit", help="Read at most N rows per query."),
    force: bool = Force,
    no_preflight: bool = NoPreflight,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run one job (a Dagster run of its asset), or a selection of the catalog's jobs.

    Example: lorchestra run ingest_stripe_customers --dry-run

    Example: lorchestra run --select +canonize_stripe_invoice   (it and its upstream)
    """
    from lorchestra_dagster.launch import code_location, launch

    if select:
        tokens = ([job_id] if job_id else []) + list(select)
        _run_selection(tokens, jobs_dir, ctx, payload, dry_run, limit, force, no_preflight, as_json)
        return
    if not job_id:
        err_console.print(
            "[red]error:[/red] name a job (`lorchestra jobs list`) or a selection "
            "(`--select stage:ingest`)",
            highlight=False,
        )
        raise typer.Exit(2)
    settings = _settings(jobs_dir)
    try:
        _defs, report = code_location(settings)
        if job_id not in report.broken:
            report.catalog.job(job_id)  # unknown: did-you-mean, before any run exists
        if not no_preflight:
            _preflight(settings, report.catalog, [job_id], as_json)
        with console.status(f"running {job_id}", spinner="dots") if not as_json else _null():
            result = launch(
                job_id,
                kind="job",
                settings=settings,
                ctx=parse_ctx(ctx),
                payload=parse_payload(payload),
                dry_run=dry_run,
                limit=limit,
                force=force,
            )
    except LorchestraError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    job = result.jobs[0] if result.jobs else None
    if as_json:
        print_json(_job_json(result, job))
    else:
        _print_job(result, job)
    raise typer.Exit(0 if result.status == "succeeded" else 1)


def _run_selection(
    tokens: list[str],
    jobs_dir: str | None,
    ctx: list[str],
    payload: str | None,
    dry_run: bool,
    limit: int | None,
    force: bool,
    no_preflight: bool,
    as_json: bool,
) -> None:
    """``run --select``: the selected jobs of the whole catalog as one Dagster run.

    The catalog op runs them in stage order (a failure does not stop the others:
    no PipelineDef says so); the summary is a pipeline's, counting jobs.
    """
    from lorchestra_dagster.launch import code_location

    settings = _settings(jobs_dir)
    label = " ".join(tokens)
    options: dict[str, Any] = {
        "dry_run": dry_run,
        "limit": limit,
        "force": force,
        "ctx": parse_ctx(ctx),
        "payload": parse_payload(payload),
        "select": tokens,
    }
    try:
        _defs, report = code_location(settings)
        members = _selected(report, None, tokens, quiet=as_json)
    except LorchestraError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    _launch_members(label, "job", members, report, settings, options, no_preflight, as_json)


def _preflight(settings: Any, catalog: Any, job_ids: list[str], as_json: bool) -> None:
    """Stop before any job when a source it fetches cannot work (one line per variable)."""
    from lorchestra_dagster.doctor import preflight

    problems = preflight(settings, catalog, job_ids)
    if not problems:
        return
    if as_json:
        print_json(
            {
                "status": "not_started",
                "problems": [p.model_dump() for p in problems],
            }
        )
    else:
        for p in problems:
            err_console.print(
                f"[red]error:[/red] {p.subject} {p.detail}" + (f" -> {p.fix}" if p.fix else ""),
                highlight=False,
                soft_wrap=True,
                markup=True,
            )
        err_console.print(
            "nothing ran; fix the above (`lorchestra doctor` checks everything) "
            "or pass --no-preflight",
            highlight=False,
            soft_wrap=True,
        )
    raise typer.Exit(1)


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
        for column in table.columns:
            column.overflow = "fold"
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
    if result.dry_run:
        _print_plan([job])
    if job.error:
        err_console.print(f"[red]error:[/red] {_failure_text(job.error)}", highlight=False)


@app.command("plan")
def plan_cmd(
    target: str | None = typer.Argument(
        None, help="A pipeline (pipeline.daily_all, daily_all) or a job; or only --select."
    ),
    jobs_dir: str | None = JobsDir,
    select: list[str] = typer.Option(
        [],
        "--select",
        "-s",
        help="Only these jobs of the pipeline (of the whole catalog without one): as `--select` "
        "of `pipeline run` and `run`.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Show what a run would write, per job and table, without writing (a dry run).

    Like `terraform plan`: the data plane counts the rows each plan would insert,
    update, leave unchanged and delete inside a transaction it rolls back.

    Example: lorchestra plan daily_all --select stage:project

    Example: lorchestra plan --select ingest_stripe_invoices+
    """
    from lorchestra_dagster.spec import load_catalog

    catalog = load_catalog(_settings(jobs_dir).jobs_dir)
    is_pipeline = target is not None and (
        target in catalog.pipelines or f"pipeline.{target}" in catalog.pipelines
    )
    if is_pipeline:
        _pipeline(str(target), jobs_dir, dry_run=True, select=select, as_json=as_json)
    _job(target, jobs_dir, dry_run=True, as_json=as_json, select=select)


def _job(
    job_id: str | None,
    jobs_dir: str | None,
    *,
    dry_run: bool,
    as_json: bool,
    select: list[str] | None = None,
) -> None:
    """``lorchestra run`` from another command, every other option at its default.

    Typer commands called as functions get ``OptionInfo`` objects for the options not
    passed, so the commands that reuse a run (plan, runs retry) go through here.
    """
    run_cmd(
        job_id=job_id,
        jobs_dir=jobs_dir,
        select=list(select or []),
        ctx=[],
        payload=None,
        dry_run=dry_run,
        limit=None,
        force=False,
        no_preflight=False,
        as_json=as_json,
    )


def _pipeline(
    pipeline_id: str, jobs_dir: str | None, *, dry_run: bool, select: list[str], as_json: bool
) -> None:
    """``lorchestra pipeline run`` from another command (see ``_job``)."""
    pipeline_run_cmd(
        pipeline_id=pipeline_id,
        jobs_dir=jobs_dir,
        ctx=[],
        payload=None,
        max_workers=2,
        dry_run=dry_run,
        force=False,
        no_preflight=False,
        select=select,
        as_json=as_json,
    )


def _pipeline_id(catalog: Any, pipeline_id: str, *, quiet: bool = False) -> str:
    """``daily_all`` means ``pipeline.daily_all`` when only that exists; unknown ids raise.

    ``quiet``: say nothing (``--json`` output is the JSON document alone).
    """
    resolved = str(catalog.resolve_pipeline_id(pipeline_id))
    if resolved != pipeline_id and not quiet:
        err_console.print(f"note: running {resolved}", highlight=False)
    return resolved


@pipeline_app.command("run")
def pipeline_run_cmd(
    pipeline_id: str = typer.Argument(
        ..., help="The pipeline_id, e.g. pipeline.daily_all (or daily_all)."
    ),
    jobs_dir: str | None = JobsDir,
    ctx: list[str] = CtxOpt,
    payload: str | None = PayloadOpt,
    max_workers: int = typer.Option(2, "--max-workers", min=1, help="Jobs run at once."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Build plans; write nothing."),
    force: bool = Force,
    no_preflight: bool = NoPreflight,
    select: list[str] = typer.Option(
        [],
        "--select",
        "-s",
        help="Only these jobs: ids or globs, stage:NAME, +job (upstream), job+ (downstream).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run a pipeline: stages in order, jobs of a stage in parallel (one Dagster run).

    Example: lorchestra pipeline run pipeline.daily_all --select +canonize_stripe_invoice
    """
    from lorchestra_dagster.launch import code_location

    settings = _settings(jobs_dir)
    options: dict[str, Any] = {
        "max_workers": max_workers,
        "dry_run": dry_run,
        "force": force,
        "ctx": parse_ctx(ctx),
        "payload": parse_payload(payload),
    }
    try:
        _defs, report = code_location(settings)
        pipeline_id = _pipeline_id(report.catalog, pipeline_id, quiet=as_json)
        members = sorted(_members(report.catalog, pipeline_id))
        if select:
            members = _selected(report, pipeline_id, select, quiet=as_json)
            options["select"] = select
    except LorchestraError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    _launch_members(
        pipeline_id, "pipeline", members, report, settings, options, no_preflight, as_json
    )


def _selected(report: Any, pipeline_id: str | None, select: list[str], *, quiet: bool) -> list[str]:
    """The job ids a ``--select`` names (of the pipeline, or of the catalog), said on stderr."""
    from lorchestra_dagster.launch import selected_keys

    by_key = {v: k for k, v in _asset_keys(report).items()}
    members = [by_key[k] for k in selected_keys(report, pipeline_id, select)]
    if not quiet:
        err_console.print(
            f"selected {len(members)} job(s): {', '.join(members)}",
            highlight=False,
            soft_wrap=True,
        )
    return members


def _launch_members(
    target: str,
    kind: str,
    members: list[str],
    report: Any,
    settings: Any,
    options: dict[str, Any],
    no_preflight: bool,
    as_json: bool,
) -> None:
    """Preflight, then one Dagster run of ``members`` (a pipeline's or a selection's); exits.

    The summary counts jobs; an invalid member is named before the run (it fails in it).
    """
    from lorchestra_dagster.launch import launch

    try:
        if not no_preflight:
            _preflight(settings, report.catalog, members, as_json)
        if as_json:
            result = launch(target, kind=kind, settings=settings, **options)  # type: ignore[arg-type]
        else:
            for jid, broken in sorted(report.broken.items()):
                if jid in members:
                    err_console.print(
                        f"[red]invalid[/red] {jid} will not run: {broken.message()}",
                        highlight=False,
                        soft_wrap=True,
                    )
            result = _run_with_progress(target, len(members), settings, options, kind=kind)
    except LorchestraError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        _print_pipeline(result)
    # A notification that did not go out is as loud as a failed job (clinical-safety.md).
    notify_failed = bool(result.alerts and result.alerts.get("errors"))
    raise typer.Exit(0 if result.status == "succeeded" and not notify_failed else 1)


def _run_with_progress(
    pipeline_id: str, total: int, settings: Any, options: Any, kind: str = "pipeline"
) -> Any:
    """The run with a bar naming the jobs in flight and the rows written so far."""
    import threading

    from lorchestra_dagster.launch import launch

    lock = threading.Lock()
    inflight: list[str] = []
    written = [0]
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        TextColumn("{task.completed}/{task.total} jobs"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(pipeline_id, total=total)

        def describe() -> str:
            now = ", ".join(inflight[:2]) + (f" +{len(inflight) - 2}" if len(inflight) > 2 else "")
            return f"{now or pipeline_id} · {written[0]} rows written"

        def started(job_id: str) -> None:
            with lock:
                inflight.append(job_id)
                bar.update(task, description=describe())

        def progress(summary: Any) -> None:
            with lock:
                if summary.job_id in inflight:
                    inflight.remove(summary.job_id)
                written[0] += summary.rows_written
                bar.advance(task)
                bar.update(task, description=describe())
            mark = "ok" if summary.status == "succeeded" else summary.status
            why = f" ({summary.reason})" if summary.reason else ""
            bar.console.print(
                f"  {mark:9} {summary.job_id} read {summary.rows_read} "
                f"wrote {summary.rows_written}{why}",
                highlight=False,
                soft_wrap=True,
            )

        return launch(
            pipeline_id,
            kind=kind,  # type: ignore[arg-type]
            settings=settings,
            progress=progress,
            on_start=started,
            **options,
        )


COUNTS = ("inserted", "updated", "unchanged", "deleted")


def plan_rows(jobs: list[Any]) -> list[dict[str, Any]]:
    """A dry run's plans per job and target: rows and what the data plane would do with them."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for job in jobs:
        for plan in job.plans or []:
            for op in plan.get("ops", []):
                key = (job.job_id, str(op.get("target")), str(op.get("method")))
                row = rows.setdefault(
                    key,
                    {"job_id": key[0], "target": key[1], "method": key[2], "rows": 0}
                    | dict.fromkeys(COUNTS, 0),
                )
                row["rows"] += int(op.get("rows") or 0)
                for k in COUNTS:
                    row[k] += int(op.get(k) or 0)
    return list(rows.values())


def _print_plan(jobs: list[Any]) -> None:
    """The plan a dry run built, like `terraform plan`: per job and table, nothing written."""
    rows = plan_rows([j for j in jobs if j is not None])
    if not rows:
        console.print("plan: nothing to write", highlight=False)
        return
    table = Table(title="plan (dry run: computed by the data plane, nothing written)")
    table.add_column("job", overflow="fold")
    table.add_column("target", overflow="fold")
    table.add_column("method", no_wrap=True)
    for name in ("rows", "insert", "update", "unchanged", "delete"):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(
            r["job_id"],
            r["target"],
            r["method"],
            *(str(r[k]) for k in ("rows", *COUNTS)),
        )
    console.print(table)
    total = {k: sum(r[k] for r in rows) for k in COUNTS}
    console.print(
        f"would insert {total['inserted']}, update {total['updated']}, delete "
        f"{total['deleted']}; {total['unchanged']} unchanged",
        highlight=False,
    )


def _print_pipeline(result: Any) -> None:
    """One summary line counting jobs, then one line per failed job with its root cause."""
    colour = "green" if result.status == "succeeded" else "red"
    unchanged = sum(1 for j in result.jobs if j.reason and j.reason.startswith("inputs"))
    console.print(
        f"[{colour}]{result.status}[/{colour}] {result.pipeline_id} run {result.run_id}: "
        f"{len(result.jobs)} job(s): {len(result.succeeded)} ok, {len(result.failed)} failed, "
        f"{len(result.skipped)} skipped ({unchanged} unchanged); read {result.rows_read} "
        f"wrote {result.rows_written} in {result.duration_s:.1f}s"
        + (" (dry run: nothing written)" if result.dry_run else ""),
        highlight=False,
        soft_wrap=True,
    )
    if result.dry_run:
        _print_plan(result.jobs)
        console.print(
            "(a dry run writes nothing, so later stages plan against the data as it is now)",
            highlight=False,
        )
    for failure in result.failures:
        err_console.print(
            f"[red]failed[/red] {failure.get('job_id') or 'run'}: "
            f"{_failure_text(failure.get('error'))}",
            highlight=False,
            soft_wrap=True,
        )
    _print_alerts(result.alerts)


@pipeline_app.command("list")
def pipeline_list(
    jobs_dir: str | None = JobsDir,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """List the pipelines of the catalog with their stages and job counts.

    Example: lorchestra pipeline list
    """
    from lorchestra_dagster.spec import load_catalog

    settings = _settings(jobs_dir)
    catalog = load_catalog(settings.jobs_dir)
    rows: list[dict[str, Any]] = []
    for pid in sorted(catalog.pipelines):
        pdef = catalog.pipelines[pid]
        rows.append(
            {
                "pipeline_id": pid,
                "stages": [st.name for st in pdef.stages],
                "jobs": len(_members(catalog, pid)),
                "stop_on_failure": bool(pdef.stop_on_failure),
                "description": pdef.description,
            }
        )
    if as_json:
        print_json(rows)
        return
    err_console.print(f"catalog {settings.jobs_dir}", highlight=False, soft_wrap=True)
    if not rows:
        err_console.print("no pipelines in this catalog (pipelines/*.yaml)", highlight=False)
        raise typer.Exit(1)
    title = f"{len(rows)} pipeline(s)"
    table = Table("pipeline_id", "stages", "jobs", "stop on failure", title=title)
    for r in rows:
        table.add_row(
            r["pipeline_id"], " -> ".join(r["stages"]), str(r["jobs"]), str(r["stop_on_failure"])
        )
    table.columns[0].overflow = "fold"
    console.print(table)


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


def _asset_keys(report: Any) -> dict[str, Any]:
    from lorchestra_dagster.defs.catalog_assets import asset_keys

    return asset_keys(report)


def _members(catalog: Any, pipeline_id: str) -> set[str]:
    from lorchestra_dagster.defs.pipelines import flatten

    return set(flatten(catalog, pipeline_id).job_ids)


@runs_app.command("list")
def runs_list(
    limit: int = typer.Option(20, "--limit", help="Most recent N runs."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List recent runs of every face (CLI, UI, schedule, sensors), newest first.

    Example: lorchestra runs list --limit 5
    """
    from lorchestra_dagster.launch import list_runs
    from lorchestra_dagster.settings import Settings

    settings = Settings.from_env()
    rows = list_runs(settings, limit=limit)
    if as_json:
        print_json(rows)
        return
    err_console.print(
        f"home {settings.home}, instance {settings.dagster_home}", highlight=False, soft_wrap=True
    )
    table = Table("run_id", "dagster job", "pipeline", "by", "status", "started", "s")
    for column in table.columns:
        column.overflow = "fold"
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


@runs_app.command("retry")
def runs_retry(
    run_id: str = typer.Argument(..., help="A run id or unique prefix."),
    jobs_dir: str | None = JobsDir,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run again what a run did not finish: its failed jobs and everything downstream.

    A new Dagster run of the same pipeline with `--select <failed>+`; jobs whose
    inputs did not change since are skipped as usual, so this is "from failure".
    A single job is run again without the --payload/--ctx it had (run records keep
    no payloads).

    Example: lorchestra runs retry 1b18c689
    """
    from lorchestra_dagster.launch import show_run
    from lorchestra_dagster.spec import load_catalog

    try:
        previous = show_run(run_id)
    except LorchestraError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    failed = [j.job_id for j in previous.jobs if j.status == "failed"]
    if not failed:
        console.print(f"run {previous.run_id} has no failed job: nothing to retry", highlight=False)
        raise typer.Exit(0)
    catalog = load_catalog(_settings(jobs_dir).jobs_dir)
    err_console.print(
        f"retrying {', '.join(failed)} of run {previous.run_id[:8]} and what depends on them",
        highlight=False,
        soft_wrap=True,
    )
    if previous.pipeline_id in catalog.pipelines:
        _pipeline(
            previous.pipeline_id,
            jobs_dir,
            dry_run=False,
            select=[f"{jid}+" for jid in failed],
            as_json=as_json,
        )
    [job_id] = failed
    _job(job_id, jobs_dir, dry_run=False, as_json=as_json)


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")):
    """Show one run with its jobs and the slowest step (accepts a unique run id prefix).

    Example: lorchestra runs show 1b18c689
    """
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
    for column in table.columns:
        column.overflow = "fold"
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

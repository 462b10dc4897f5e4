"""``lorchestra validate``, ``schema``, ``jobs list|show`` and ``compile``: the catalog commands.

None of these touch storage: they read YAML and print. ``validate`` is the
CI gate (exit 1 on any error), so its text output is one ``path:line:col:
CODE message`` line per issue, the format editors and CI annotators parse.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
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
from lorchestra_dagster.settings import Settings

jobs_app = typer.Typer(help="List and show the jobs of a catalog.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")

JobsDirOpt = typer.Option(
    None, "--jobs-dir", help="Catalog directory (default: env LORCHESTRA_JOBS_DIR, then ./jobs)."
)


def _catalog_dir(jobs_dir: str | None) -> Path:
    """The catalog, shown relative to the working directory when it is below it."""
    path = Settings.from_env(jobs_dir=jobs_dir).jobs_dir
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


@app.command("validate")
def validate_cmd(
    jobs_dir: str | None = JobsDirOpt,
    fmt: str = typer.Option("text", "--format", help="Output format: text or json."),
) -> None:
    """Check every job, pipeline and registry YAML of the catalog; exit 1 on errors.

    Example: lorchestra validate --format json
    """
    from lorchestra_dagster.catalog_service import load_report

    if fmt not in ("text", "json"):
        raise typer.BadParameter("--format must be text or json")
    root = _catalog_dir(jobs_dir)
    report = load_report(root)
    catalog, issues, notes = report.catalog, report.issues, report.notes
    errors = sum(1 for i in issues if i.severity == "error")
    warnings = len(issues) - errors
    if fmt == "json":
        print_json(
            {
                "catalog": str(root),
                "ok": errors == 0,
                "errors": errors,
                "warnings": warnings,
                "jobs": len(catalog.jobs),
                "pipelines": len(catalog.pipelines),
                "notes": notes,
                "issues": [i.model_dump() for i in issues],
            }
        )
    else:
        for note in notes:
            err_console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
        # Plain writes: rich would wrap long lines and read "[...]" as markup.
        for issue in issues:
            sys.stdout.write(issue.render() + "\n")
        files = len({i.path for i in issues})
        if errors:
            sys.stdout.write(
                f"{errors} error(s), {warnings} warning(s) in {files} file(s) under {root}\n"
            )
        else:
            sys.stdout.write(
                f"catalog {root} OK: {len(catalog.jobs)} job(s), {len(catalog.pipelines)} "
                f"pipeline(s), {warnings} warning(s)\n"
            )
    raise typer.Exit(1 if errors else 0)


@app.command("schema")
def schema_cmd(
    kind: str = typer.Option("all", "--kind", help="job, pipeline or all (either document)."),
) -> None:
    """Print the JSON Schema of the YAML formats, generated from the models.

    Example: lorchestra schema --kind job > jobdef.schema.json
    """
    from lorchestra_dagster.spec import json_schema

    if kind not in ("job", "pipeline", "all"):
        raise typer.BadParameter("--kind must be job, pipeline or all")
    print_json(json_schema(kind))  # type: ignore[arg-type]


def _load(jobs_dir: str | None) -> Any:
    from lorchestra_dagster.spec import load_catalog

    root = _catalog_dir(jobs_dir)
    catalog = load_catalog(root)
    broken = sum(1 for i in catalog.issues if i.severity == "error")
    if broken:
        err_console.print(
            f"warning: {broken} catalog issue(s); run 'lorchestra validate' for details",
            markup=False,
            soft_wrap=True,
        )
    return catalog


@jobs_app.command("list")
def jobs_list(
    jobs_dir: str | None = JobsDirOpt,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """List the jobs of the catalog with their stage, step count and file.

    Example: lorchestra jobs list --jobs-dir jobs
    """
    settings = Settings.from_env(jobs_dir=jobs_dir)
    catalog = _load(jobs_dir)
    rows = [
        {
            "job_id": j.job_id,
            "stage": j.stage,
            "steps": len(j.jobdef.steps),
            "path": str(j.path),
            "description": j.jobdef.description,
        }
        for j in sorted(catalog.jobs.values(), key=lambda j: (j.stage, j.job_id))
    ]
    if not rows:
        err_console.print(
            f"error: no jobs in catalog {settings.jobs_dir} (home {settings.home}); run from "
            "the repository or set LORCHESTRA_JOBS_DIR / --jobs-dir to a folder of job YAML",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    if as_json:
        print_json(rows)
        return
    err_console.print(
        f"home {settings.home}, catalog {settings.jobs_dir}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    table = Table(title=f"{len(rows)} job(s)")
    # Ids are never cut: the id column is as wide as the longest id, the path folds.
    table.add_column("job_id", no_wrap=True, min_width=max(len(r["job_id"]) for r in rows))
    table.add_column("stage", no_wrap=True)
    table.add_column("steps")
    table.add_column("path", overflow="fold")
    for r in rows:
        table.add_row(r["job_id"], r["stage"], str(r["steps"]), r["path"])
    console.print(table)


@jobs_app.command("show")
def jobs_show(
    job_id: str = typer.Argument(..., help="Job id."),
    jobs_dir: str | None = JobsDirOpt,
) -> None:
    """Show one job as JSON: the JobDef, its file, stage and spec hash.

    Example: lorchestra jobs show ingest_stripe_customers
    """
    from lorchestra_dagster.spec import job_def_sha256

    catalog = _load(jobs_dir)
    try:
        loaded = catalog.job(job_id)
    except LorchestraError as exc:
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    print_json(
        {
            "job_id": loaded.job_id,
            "stage": loaded.stage,
            "path": str(loaded.path),
            "job_def_sha256": job_def_sha256(loaded.jobdef),
            "jobdef": loaded.jobdef.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
    )


@app.command("compile")
def compile_cmd(
    job_id: str = typer.Argument(..., help="Job id to compile."),
    jobs_dir: str | None = JobsDirOpt,
    ctx: list[str] = typer.Option([], "--ctx", help="Context value key=value (repeatable)."),
    payload: str | None = typer.Option(None, "--payload", help="Payload as a JSON object."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Compile a dry-run envelope."),
) -> None:
    """Compile a job against an envelope and print the JobInstance as JSON.

    Example: lorchestra compile ingest_stripe_customers --dry-run
    """
    from lorchestra_dagster.spec import Envelope, compile_job

    payload_obj = parse_payload(payload)
    catalog = _load(jobs_dir)
    envelope = Envelope(
        job_id=job_id,
        ctx=parse_ctx(ctx),
        payload=payload_obj,
        dry_run=dry_run,
        jobs_dir=str(catalog.root),
    )
    try:
        instance = compile_job(catalog.job(job_id), envelope, catalog.root)
    except LorchestraError as exc:
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    print_json(instance.model_dump(mode="json", by_alias=True))

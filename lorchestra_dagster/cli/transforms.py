"""``lorchestra transforms list|test|run``: the canonizer's transform registry from the shell.

``test`` runs every golden pair (``tests: [{input, expect}]`` of each
``spec.meta.yaml``) on each JSONata engine and exits 1 on a failure, with a
readable diff; ``run`` applies one transform to one input file, with the same
schema checks the canonizer makes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lorchestra_dagster.cli.app import app, console, err_console, print_json
from lorchestra_dagster.errors import LorchestraError
from lorchestra_dagster.settings import Settings

transforms_app = typer.Typer(help="List, test and run JSONata transforms.", no_args_is_help=True)
app.add_typer(transforms_app, name="transforms")

JobsDirOpt = typer.Option(
    None, "--jobs-dir", help="Catalog directory (default: env LORCHESTRA_JOBS_DIR, then ./jobs)."
)
EngineOpt = typer.Option(
    None, "--engine", help="JSONata engine (jsonatapy or jsonata-python); default: both."
)


def _root(jobs_dir: str | None) -> Path:
    return Settings.from_env(jobs_dir=jobs_dir).jobs_dir


def _fail(message: str) -> None:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


@transforms_app.command("list")
def list_cmd(
    jobs_dir: str | None = JobsDirOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Every transform of the catalog: id, status, schemas and golden pairs."""
    from lorchestra_dagster.callables.transforms import load_meta, transform_dirs

    rows: list[dict[str, Any]] = []
    for tid, folder in sorted(transform_dirs(_root(jobs_dir)).items()):
        try:
            meta = load_meta(folder)
        except LorchestraError as exc:
            rows.append({"id": tid, "error": exc.message})
            continue
        rows.append(
            {
                "id": tid,
                "status": meta.status,
                "from_schema": meta.from_schema,
                "to_schema": meta.to_schema,
                "tests": len(meta.tests),
                "pinned": bool(meta.checksum.jsonata_sha256),
            }
        )
    if as_json:
        print_json({"transforms": rows})
        return
    table = Table("id", "status", "from -> to", "tests")
    for r in rows:
        if "error" in r:
            table.add_row(r["id"], "[red]invalid[/red]", r["error"], "")
        else:
            pin = "" if r["pinned"] else " [yellow](not pinned)[/yellow]"
            table.add_row(
                r["id"],
                r["status"] + pin,
                f"{r['from_schema']} -> {r['to_schema']}",
                str(r["tests"]),
            )
    console.print(table)


@transforms_app.command("test")
def test_cmd(
    transform_id: str | None = typer.Argument(None, help="One transform id (default: all)."),
    jobs_dir: str | None = JobsDirOpt,
    engine: str | None = EngineOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON results."),
) -> None:
    """Run the golden pairs; exit 1 when any fails."""
    from lorchestra_dagster.callables.jsonata_engine import ENGINES
    from lorchestra_dagster.callables.transform_tests import run_goldens, summary

    if engine is not None and engine not in ENGINES:
        raise typer.BadParameter(f"--engine must be one of {', '.join(ENGINES)}")
    try:
        results = run_goldens(
            _root(jobs_dir), transform_id, (engine,) if engine else tuple(ENGINES)
        )
    except LorchestraError as exc:
        _fail(exc.message)
    out = summary(results)
    if as_json:
        print_json(out)
    else:
        for res in results:
            for t in res.tests:
                mark = "[green]pass[/green]" if t.passed else "[red]FAIL[/red]"
                console.print(
                    f"{mark} {res.id}@{res.version} {t.input} ({t.engine})", highlight=False
                )
                if not t.passed:
                    console.print(t.diff, markup=False, highlight=False)
        console.print(f"{out['passed']} passed, {out['failed']} failed", highlight=False)
    raise typer.Exit(1 if out["failed"] else 0)


@transforms_app.command("run")
def run_cmd(
    transform_id: str = typer.Argument(
        ..., help="Transform id, e.g. email/gmail_to_jmap_lite@1.0.0"
    ),
    input_file: Path = typer.Option(..., "--input", help="A JSON file: the input payload."),
    jobs_dir: str | None = JobsDirOpt,
    engine: str | None = typer.Option(
        None, "--engine", help="JSONata engine (default: jsonatapy)."
    ),
) -> None:
    """Apply one transform to one input (schemas checked) and print the output JSON."""
    from lorchestra_dagster.callables.jsonata_engine import DEFAULT_ENGINE
    from lorchestra_dagster.callables.transforms import RecordError, load_transform

    try:
        payload = json.loads(input_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        _fail(f"cannot read {input_file}: {exc}")
    try:
        transform = load_transform(_root(jobs_dir), transform_id, engine=engine or DEFAULT_ENGINE)
        print_json(transform.apply(payload))
    except RecordError as exc:
        _fail(f"{transform_id} refused the input: {exc}")
    except LorchestraError as exc:
        _fail(exc.message)

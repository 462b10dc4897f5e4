"""``lorchestra instruments list|score|import``: the clinical instruments of the catalog.

``score`` is the same scorer the ``finalform`` callable uses, so a clinician
can check a hand-scored sheet against what the pipeline will store.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from lorchestra_dagster.cli.app import app, console, err_console, print_json
from lorchestra_dagster.errors import LorchestraError
from lorchestra_dagster.settings import Settings

instruments_app = typer.Typer(help="List and score clinical instruments.", no_args_is_help=True)
app.add_typer(instruments_app, name="instruments")

JobsDirOpt = typer.Option(
    None, "--jobs-dir", help="Catalog directory (default: env LORCHESTRA_JOBS_DIR, then ./jobs)."
)


def _fail(message: str) -> None:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


@instruments_app.command("list")
def list_cmd(
    jobs_dir: str | None = JobsDirOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the instruments of the catalog with their items and scales.

    Example: lorchestra instruments list
    """
    from lorchestra_dagster.instruments import load_instruments

    try:
        instruments = load_instruments(Settings.from_env(jobs_dir=jobs_dir).jobs_dir)
    except LorchestraError as exc:
        _fail(str(exc))
    rows: list[dict[str, Any]] = [
        {
            "code": spec.code,
            "version": spec.version,
            "name": spec.name,
            "items": len(spec.items),
            "scales": [s.code for s in spec.scales],
        }
        for spec in instruments.values()
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("code", "version", "name", "items", "scales")
    for row in rows:
        table.add_row(
            row["code"], row["version"], row["name"], str(row["items"]), ", ".join(row["scales"])
        )
    console.print(table)


@instruments_app.command("score")
def score_cmd(
    code: str = typer.Argument(..., help="Instrument code, e.g. phq9"),
    answers: str = typer.Option(
        ...,
        "--answers",
        help='JSON object keyed by 1-based item position: {"1": 2, "2": "Several days"}',
    ),
    jobs_dir: str | None = JobsDirOpt,
) -> None:
    """Score one set of answers and print the scales and flags as JSON.

    Example: lorchestra instruments score gad7 --answers '{"1": 1, "2": 0}'
    """
    from lorchestra_dagster.instruments import get_instrument
    from lorchestra_dagster.instruments.safety import evaluate_rules
    from lorchestra_dagster.instruments.scorer import score

    try:
        parsed = json.loads(answers)
    except json.JSONDecodeError as exc:
        _fail(f"--answers is not valid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(parsed, dict):
        _fail('--answers must be a JSON object keyed by item position, e.g. {"1": 2}')
    try:
        spec = get_instrument(Settings.from_env(jobs_dir=jobs_dir).jobs_dir, code)
    except LorchestraError as exc:
        _fail(str(exc))
    hits = evaluate_rules(spec, parsed)  # first and apart: a bad answer hides no flag
    try:
        result = score(spec, parsed)
    except LorchestraError as exc:
        raised = ", ".join(h.code for h in hits)
        _fail(str(exc) + (f" (safety flags raised all the same: {raised})" if raised else ""))
    print_json({**result.to_dict(), "flags": [h.to_dict() for h in hits]})


@instruments_app.command("import")
def import_cmd(
    source: str = typer.Argument(
        ...,
        help="Folder holding the original finalform's measure-registry/ and/or "
        "form-binding-registry/",
    ),
    jobs_dir: str | None = JobsDirOpt,
    force: bool = typer.Option(False, "--force", help="Replace specs that already exist."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Write the original finalform's measure specs and form bindings as YAML specs.

    Each becomes <catalog>/instruments/<code>.yaml or <catalog>/bindings/<id>.yaml,
    checked by the same models as hand-written specs. Nothing is written when any
    file fails, or (without --force) when a target already exists.

    Example: lorchestra instruments import ../finalform
    """
    from pathlib import Path

    from lorchestra_dagster.instruments.finalform_import import plan_import, write_import

    catalog = Settings.from_env(jobs_dir=jobs_dir).jobs_dir
    planned, problems = plan_import(Path(source), catalog)
    if not force:
        problems += [
            {"file": str(p.target), "message": "exists (use --force to replace it)"}
            for p in planned
            if p.exists
        ]
    if problems:
        for problem in problems:
            line = f"{problem['file']}: {problem['message']}"
            err_console.print(line, highlight=False, soft_wrap=True)
        _fail(f"{len(problems)} problem(s); nothing written")
    write_import(planned)
    if as_json:
        print_json({"written": [p.to_dict() for p in planned]})
        return
    table = Table("kind", "id", "version", f"written to (under {catalog})", "replaced")
    for p in planned:
        where = str(p.target.relative_to(catalog))
        table.add_row(p.kind, p.ident, p.version, where, "yes" if p.exists else "")
    console.print(table)

"""``lorchestra storacle serve`` and ``lorchestra sql``: the data plane's commands."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from lorchestra_dagster.cli.app import app, console, err_console, print_json
from lorchestra_dagster.errors import LorchestraError
from lorchestra_dagster.settings import Settings

storacle_app = typer.Typer(help="The storacle data plane (JSON-RPC server).", no_args_is_help=True)
app.add_typer(storacle_app, name="storacle")


@storacle_app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (loopback default)."),
    port: int = typer.Option(8765, "--port", help="TCP port."),
    allow_remote: bool = typer.Option(
        False,
        "--allow-remote",
        help="Allow a non-loopback --host (needs LORCHESTRA_STORACLE_TOKEN); see docs/security.md.",
    ),
) -> None:
    """Serve the warehouse over JSON-RPC (POST /rpc, GET /health); clients set STORACLE_URL.

    Example: lorchestra storacle serve --port 8765, then STORACLE_URL=http://127.0.0.1:8765

    Every request needs the bearer token (LORCHESTRA_STORACLE_TOKEN, else the
    home's storacle.token file, which clients of the same home read by themselves).
    """
    from lorchestra_dagster.storacle.auth import check_bind
    from lorchestra_dagster.storacle.server import serve

    settings = Settings.from_env()
    try:
        check_bind(host, allow_remote=allow_remote)
    except LorchestraError as err:
        err_console.print(f"[red]error:[/red] {err.message}", markup=True, highlight=False)
        raise typer.Exit(2) from err
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"[yellow]warning:[/yellow] listening beyond loopback on {host}")
    err_console.print(
        f"storacle: serving {settings.home} on http://{host}:{port}/rpc (Ctrl-C stops it)",
        highlight=False,
    )
    try:
        serve(settings, host=host, port=port, allow_remote=allow_remote)
    except KeyboardInterrupt:
        # A second Ctrl-C during uvicorn's graceful shutdown lands here: still no traceback.
        err_console.print("storacle: stopped", highlight=False)
        raise typer.Exit(130) from None
    err_console.print("storacle: stopped", highlight=False)


@app.command("sql")
def sql_cmd(
    query: str = typer.Argument(
        ..., help="One read-only SELECT or WITH query, or SHOW TABLES / DESCRIBE [schema.]table."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of row objects."),
) -> None:
    """Run one read-only query against the warehouse (anything else is refused).

    On a terminal the rows are a table; in a pipe they are tab-separated with a
    header line and no colour.

    Example: lorchestra sql "SHOW TABLES"
    """
    from lorchestra_dagster.storacle.client import make_client
    from lorchestra_dagster.storacle.sql import check_read_only, introspection_select

    query = introspection_select(query) or query
    try:
        check_read_only(query, dialect="duckdb")
        client = make_client(Settings.from_env())
        rows = client.sql(query)
    except LorchestraError as err:
        err_console.print(f"error: {err.message}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from err
    if as_json:
        print_json(rows)
        return
    columns = list(rows[0]) if rows else []
    cells = [["" if row[c] is None else str(row[c]) for c in columns] for row in rows]
    if not sys.stdout.isatty():
        sys.stdout.write("\t".join(columns) + "\n" if columns else "")
        sys.stdout.writelines("\t".join(c.replace("\t", " ") for c in r) + "\n" for r in cells)
    else:
        table = Table(show_lines=False)
        for name in columns:
            table.add_column(name, overflow="fold")
        for r in cells:
            table.add_row(*r)
        console.print(table)
    err_console.print(f"{len(rows)} row(s)", highlight=False)

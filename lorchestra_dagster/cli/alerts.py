"""``lorchestra alerts list|ack|resolve|history``: act on clinical safety alerts.

Every command first brings the alerts up to date with the flags (the same
sync the sensor and ``pipeline run`` do), so what it shows or changes is what
the data says now. Output names no client: ids, codes, dates and the client id
(the vault's ``alerts.md`` links each alert to its client folder).
"""

from __future__ import annotations

import getpass
from typing import Any

import typer
from rich.table import Table

from lorchestra_dagster.cli.app import app, console, err_console, print_json
from lorchestra_dagster.errors import LorchestraError
from lorchestra_dagster.settings import Settings

alerts_app = typer.Typer(
    help="Clinical safety alerts: list, acknowledge, resolve (docs/clinical-safety.md).",
    no_args_is_help=True,
)
app.add_typer(alerts_app, name="alerts")

#: The fields ``alerts list --json`` prints, in order.
FIELDS = (
    "alert_id", "code", "severity", "client", "occurred_at", "status", "source_changed",
    "instrument_code", "item", "reason", "message", "acknowledged_by", "acknowledged_at",
    "acknowledge_note", "resolved_by", "resolved_at", "resolve_note", "notified_at",
)  # fmt: skip

Note = typer.Option(..., "--note", help="What was done (kept in the alert's history).")
By = typer.Option(None, "--by", help="Who acts (default: $LORCHESTRA_USER, then the login).")


def _client() -> Any:
    from lorchestra_dagster.storacle.client import make_client

    return make_client(Settings.from_env())


def _fail(exc: LorchestraError) -> None:
    err_console.print(f"[red]error:[/red] {exc.message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1) from exc


def _actor(by: str | None) -> str:
    return by or Settings.from_env().user or getpass.getuser()


def public(row: dict[str, Any]) -> dict[str, Any]:
    """One alert as ``alerts list --json`` prints it."""
    out = {k: row.get(k) for k in FIELDS}
    out["client"] = row.get("client_id")
    out["source_changed"] = bool(row.get("source_changed"))
    return out


@alerts_app.command("list")
def list_cmd(
    show_all: bool = typer.Option(False, "--all", help="Acknowledged and resolved ones too."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Open alerts, most severe first (``--all``: acknowledged and resolved ones too)."""
    from lorchestra_dagster.alerts import list_alerts, sync_alerts

    try:
        client = _client()
        report = sync_alerts(client)
        rows = [public(r) for r in list_alerts(client, show_all=show_all)]
    except LorchestraError as exc:
        _fail(exc)
    if as_json:
        print_json(rows)
        return
    table = Table()
    # the id and the code are what the next command needs: never wrapped or cut
    table.add_column("alert_id", no_wrap=True, min_width=12)
    table.add_column("severity")
    table.add_column("code", no_wrap=True)
    table.add_column("client", overflow="fold")  # an id: wrapped, never cut
    table.add_column("date", no_wrap=True, min_width=10)
    for name in ("status", "note"):
        table.add_column(name, overflow="fold")
    for r in rows:
        status = str(r["status"]) + (" (source changed)" if r["source_changed"] else "")
        note = r.get("resolve_note") or r.get("acknowledge_note") or ""
        table.add_row(
            str(r["alert_id"]), str(r["severity"]), str(r["code"]), str(r["client"] or "-"),
            str(r["occurred_at"] or "")[:10], status, str(note),
        )  # fmt: skip
    console.print(table)
    err_console.print(
        f"{sum(r['status'] == 'open' for r in rows)} open alert(s); acknowledge with "
        "`lorchestra alerts ack ALERT_ID --note TEXT`"
        + (f"; {len(report.notify_errors)} notification(s) failed" if report.notify_errors else ""),
        highlight=False,
    )


def _act(action: str, alert_id: str, note: str, by: str | None) -> None:
    from lorchestra_dagster.alerts import transition

    try:
        row = transition(_client(), alert_id, action, actor=_actor(by), note=note)
    except LorchestraError as exc:
        _fail(exc)
    console.print(f"alert {row['alert_id']} {row['status']} by {_actor(by)}", highlight=False)


@alerts_app.command("ack")
def ack_cmd(alert_id: str = typer.Argument(...), note: str = Note, by: str | None = By) -> None:
    """Acknowledge an open alert: someone has seen it and is acting on it."""
    _act("ack", alert_id, note, by)


@alerts_app.command("resolve")
def resolve_cmd(alert_id: str = typer.Argument(...), note: str = Note, by: str | None = By) -> None:
    """Resolve an alert (open or acknowledged): the follow-up is done."""
    _act("resolve", alert_id, note, by)


@alerts_app.command("history")
def history_cmd(
    alert_id: str = typer.Argument(...),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Every change of one alert, oldest first."""
    from lorchestra_dagster.alerts.store import history_of

    try:
        rows = history_of(_client(), alert_id)
    except LorchestraError as exc:
        _fail(exc)
    if as_json:
        print_json(rows)
        return
    table = Table("at", "action", "by", "note")
    for r in rows:
        table.add_row(str(r["at"]), str(r["action"]), str(r["actor"]), str(r.get("note") or ""))
    console.print(table)

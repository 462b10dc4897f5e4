"""``make demo``: the daily run of a synthetic practice, offline, and what it produced.

Starts this home's loopback sandbox in the background (five vendor APIs
serving a fictional practice; ``lorchestra sandbox up``) and leaves it running
for the README's everyday commands, points every stream of the shipped
catalog at it, runs ``daily_all`` as a Dagster run in this process (the same
path as ``lorchestra pipeline run``; the run is in the instance ``make ui``
shows) and prints a summary read back from
the warehouse and the vault. Running it again is the idempotency check: the
second run writes nothing and skips every job downstream of ingest.
"""

from __future__ import annotations

import os
import time
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from lorchestra_dagster.privacy import secure_home
from lorchestra_dagster.settings import Settings

console = Console()
TABLES = [
    ("raw", "raw_objects"),
    ("canonical", "canonical_objects"),
    ("derived", "measurement_events"),
    ("derived", "observations"),
]


def run_daily_all(settings: Settings, extra_env: dict[str, str]) -> Any:
    """``daily_all`` as a Dagster run in this process (the CLI's path), filed in the UI."""
    from lorchestra_dagster.launch import launch

    os.environ.update(extra_env)

    def progress(summary: Any) -> None:
        mark = "ok" if summary.status == "succeeded" else summary.status
        why = f" ({summary.reason})" if summary.reason else ""
        console.print(
            f"  {mark:9} {summary.stage:9} {summary.job_id} wrote {summary.rows_written}{why}",
            highlight=False,
        )

    return launch(
        "pipeline.daily_all",
        kind="pipeline",
        settings=settings,
        launched_by="demo",
        progress=progress,
        max_workers=2,
    )


def summarize(settings: Settings) -> dict[str, Any]:
    """Counts, plus the open alerts (ids and codes): rows per table, scores, vault files."""
    from lorchestra_dagster.alerts import list_alerts
    from lorchestra_dagster.storacle.client import make_client
    from lorchestra_dagster.storacle.service import close_services

    client = make_client(settings)
    try:
        summary: dict[str, Any] = {"tables": {}}
        for dataset, table in TABLES:
            rows = client.query({"dataset": dataset, "table": table, "columns": ["COUNT(*) AS n"]})
            summary["tables"][f"{dataset}.{table}"] = rows[0]["n"] if rows else 0
        summary["observations"] = (
            client.sql(
                "SELECT instrument_code, severity_code, COUNT(*) AS n FROM derived.observations "
                "WHERE measure_code LIKE '%_total' GROUP BY 1, 2 ORDER BY 1, 2"
            )
            if summary["tables"]["derived.observations"]
            else []
        )
        # launch() synced the alerts at the end of the run: these are the ones to act on.
        summary["alerts"] = [
            {k: a.get(k) for k in ("alert_id", "severity", "code", "client_id", "occurred_at")}
            for a in list_alerts(client)
        ]
        summary["open_invoices"] = _open_invoices(client)
    finally:
        client.close()
        # The warehouse admits one process: let go of it before Dagster's run opens it.
        close_services()
    vault = settings.vault_dir
    files = [p for p in vault.rglob("*") if p.is_file()] if vault.exists() else []
    summary["vault_files"] = len(files)
    measures = sorted(vault.glob("clients/*/measures.md")) if vault.exists() else []
    summary["measures_md"] = str(measures[0]) if measures else None
    return summary


def _open_invoices(client: Any) -> int:
    """Unpaid invoices (0 before the views exist: a first run that failed early)."""
    from lorchestra_dagster.errors import LorchestraError

    try:
        rows = client.sql("SELECT COUNT(*) AS n FROM canonical.proj_invoices WHERE status = 'open'")
    except LorchestraError:
        return 0
    return int(rows[0]["n"]) if rows else 0


def print_summary(
    summary: dict[str, Any], seconds: float, before: dict[str, Any] | None = None
) -> None:
    table = Table("table", "rows", "new this run", title="warehouse")
    for name, n in summary["tables"].items():
        prior = (before or {}).get("tables", {}).get(name, 0)
        table.add_row(name, str(n), str(n - prior))
    console.print(table)
    if summary["observations"]:
        obs = Table("instrument", "severity", "observations", title="scores (totals)")
        for row in summary["observations"]:
            obs.add_row(str(row["instrument_code"]), str(row["severity_code"]), str(row["n"]))
        console.print(obs)
    new_files = summary["vault_files"] - (before or {}).get("vault_files", 0)
    console.print(f"vault files: {summary['vault_files']} ({new_files} new this run)")
    console.print(f"unpaid invoices: {summary['open_invoices']}")
    if summary["measures_md"]:
        console.print(f"one client's measures: {summary['measures_md']}", soft_wrap=True)
    console.print(f"daily_all took {seconds:.1f}s")


INTRO = (
    "make demo: a fictional practice of {clients} clients served on loopback as the five "
    "vendor APIs (Gmail, Exchange, Dataverse, Stripe, Google Forms), then daily_all "
    "(ingest -> canonize -> formation -> project) as one Dagster run into {home}. "
    "About a minute; one line per job."
)


def start_sandbox(settings: Settings, clients: int) -> Any:
    """This home's sandbox (started in the background when none runs); left running after."""
    from lorchestra_dagster.sources.sandbox import daemon

    info, started = daemon.start(settings, clients=clients)
    verb = "started" if started else "already running"
    console.print(
        f"sandbox {verb}: {info.clients} fictional clients on {info.url}", highlight=False
    )
    return info


def print_next_steps(settings: Settings, result: Any, alerts: list[dict[str, Any]]) -> None:
    """The demo's last screen: where the output is, the alerts to act on, what to try next.

    In that order so the end of the scrollback answers "what now?" without scrolling up.
    """
    console.print(f"vault: {settings.vault_dir}", highlight=False, soft_wrap=True)
    today = settings.vault_dir / "today.md"
    if today.exists():
        console.print(f"this morning's page: {today}", highlight=False, soft_wrap=True)
    print_alerts(alerts)
    alerts_md = settings.vault_dir / "alerts.md"
    if alerts_md.exists():
        console.print(f"open alerts: {alerts_md}", highlight=False, soft_wrap=True)
    console.print(
        f"Dagster run {result.run_id} (launched_by=demo) is on the UI's timeline.",
        highlight=False,
        soft_wrap=True,
    )
    console.print("next:", highlight=False)
    for line in (
        "make ui                                         # the Dagster UI on http://127.0.0.1:3000",
        'eval "$(.venv/bin/lorchestra sandbox env)"       # this shell\'s sources -> the sandbox',
        ".venv/bin/lorchestra run ingest_stripe_customers --dry-run",
        ".venv/bin/lorchestra sandbox down                # when you are done",
    ):
        console.print(f"  {line}", highlight=False, soft_wrap=True, markup=False)


def print_alerts(alerts: list[dict[str, Any]], shown: int = 15) -> None:
    """The open alerts with their ids and the commands that act on them."""
    if not alerts:
        console.print("open safety alerts: none")
        return
    table = Table("alert_id", "severity", "code", "client_id", "date",
                  title=f"open safety alerts ({len(alerts)})")  # fmt: skip
    for column in table.columns:
        column.overflow = "fold"  # ids wrap, never cut: they are what `alerts ack` takes
    for a in alerts[:shown]:
        table.add_row(str(a["alert_id"]), str(a["severity"]), str(a["code"]),
                      str(a["client_id"] or "-"), str(a["occurred_at"] or "")[:10])  # fmt: skip
    console.print(table)
    if len(alerts) > shown:
        console.print(f"... and {len(alerts) - shown} more: `.venv/bin/lorchestra alerts list`")
    first = alerts[0]["alert_id"]
    for what, line in (
        ("acknowledge", f'.venv/bin/lorchestra alerts ack {first} --note "called, safety plan"'),
        ("resolve", f'.venv/bin/lorchestra alerts resolve {first} --note "reviewed in session"'),
        ("all of them", ".venv/bin/lorchestra alerts list"),
    ):
        console.print(f"{what + ':':13} {line}", highlight=False, soft_wrap=True, markup=False)


def main(clients: int = typer.Option(30, help="Synthetic clients in the sandbox.")) -> None:
    """Run daily_all on the embedded default against this home's loopback sandbox."""
    from lorchestra_dagster.sources.sandbox.server import sandbox_env

    settings = Settings.from_env()
    secure_home(settings.home)
    console.print(INTRO.format(clients=clients, home=settings.home), highlight=False)
    before = summarize(settings) if settings.warehouse_path.exists() else None
    sandbox = start_sandbox(settings, clients)
    extra = {"LORCHESTRA_SANDBOX_URL": sandbox.url, **sandbox_env()}
    started = time.monotonic()
    result = run_daily_all(settings, extra)
    seconds = time.monotonic() - started
    after = summarize(settings)
    print_summary(after, seconds, before)
    for failure in result.failures:
        console.print(
            f"  [red]failed[/red] {failure.get('job_id')}: {failure.get('error')}",
            highlight=False,
        )
    if result.status == "succeeded":
        console.print(
            "[green]daily_all succeeded[/green] (run `make demo` again: a day with no new data "
            "skips every job whose inputs did not change)"
        )
    else:
        console.print("[red]daily_all failed[/red]")
    print_next_steps(settings, result, after["alerts"])
    if result.status != "succeeded":
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)

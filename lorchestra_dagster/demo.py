"""``make demo``: the daily run of a synthetic practice, offline, and what it produced.

Starts the loopback sandbox (five vendor APIs serving a fictional practice),
points every stream of the shipped catalog at it, runs ``daily_all`` through
Dagster (``dagster job execute``, so the run shows in the UI afterwards) and
prints a summary read back from the warehouse and the vault. Running it again
is the idempotency check: the second run writes nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from lorchestra_dagster.settings import Settings

console = Console()
TABLES = [
    ("raw", "raw_objects"),
    ("canonical", "canonical_objects"),
    ("derived", "measurement_events"),
    ("derived", "observations"),
]


def _dagster_env(settings: Settings, extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["LORCHESTRA_HOME"] = str(settings.home)
    env["LORCHESTRA_JOBS_DIR"] = str(settings.jobs_dir)
    env["DAGSTER_HOME"] = str(settings.dagster_home)
    env.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    project_yaml = Path(__file__).resolve().parents[1] / "dagster.yaml"
    target = settings.dagster_home / "dagster.yaml"
    if project_yaml.exists() and not target.exists():
        target.write_text(project_yaml.read_text())
    return env


def run_via_dagster(settings: Settings, extra_env: dict[str, str]) -> int:
    """``dagster job execute -j daily_all`` in a child process, output streamed."""
    exe = Path(sys.executable).with_name("dagster")
    # In-process: the demo practice is small and one process avoids ~0.6-1.7 s of
    # process start per step (DESIGN.md section 6); schedules and the UI use the
    # job's own multiprocess executor.
    config = settings.dagster_home / "demo_run_config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("execution:\n  config:\n    in_process: {}\n")
    cmd = [
        str(exe),
        "job",
        "execute",
        "-m",
        "lorchestra_dagster.definitions",
        "-j",
        "daily_all",
        "-c",
        str(config),
    ]
    proc = subprocess.run(
        cmd, env=_dagster_env(settings, extra_env), capture_output=True, text=True, check=False
    )
    for line in (proc.stdout + proc.stderr).splitlines():
        if any(k in line for k in ("RUN_SUCCESS", "RUN_FAILURE", "STEP_FAILURE", "Error")):
            console.print(f"  [dim]{line.strip()[:200]}[/dim]")
    return proc.returncode


def run_via_engine(settings: Settings, extra_env: dict[str, str]) -> int:
    """The same pipeline through lorchestra's own runner (``--via engine``)."""
    from lorchestra_dagster.engine import Services, run_pipeline

    env = {**os.environ, **extra_env}
    services = Services.from_settings(settings, env=env)
    try:
        result = run_pipeline("pipeline.daily_all", services=services, max_workers=2)
    finally:
        services.client.close()
    for failure in result.failures:
        console.print(f"  [red]failed[/red] {failure.get('job_id')}: {failure.get('error')}")
    return 0 if result.status == "succeeded" else 1


def summarize(settings: Settings) -> dict[str, Any]:
    """Counts only: rows per table, scores per instrument and band, vault files, flags."""
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
        summary["flags"] = (
            client.sql(
                "SELECT COUNT(*) AS n FROM derived.observations "
                "WHERE CAST(flags AS VARCHAR) LIKE '%phq9_item9%'"
            )[0]["n"]
            if summary["tables"]["derived.observations"]
            else 0
        )
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
    console.print(f"open safety flags (phq9_item9): {summary['flags']}")
    if summary["measures_md"]:
        console.print(f"one client's measures: {summary['measures_md']}")
    console.print(f"daily_all took {seconds:.1f}s")


def main(
    clients: int = typer.Option(30, help="Synthetic clients in the sandbox."),
    via: str = typer.Option("dagster", help="dagster (dagster job execute) or engine."),
) -> None:
    """Run daily_all on the embedded default against the loopback sandbox."""
    from lorchestra_dagster.sources.sandbox.generate import generate
    from lorchestra_dagster.sources.sandbox.server import sandbox_env, serve_in_thread

    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    console.print(f"LORCHESTRA_HOME={settings.home}")
    before = summarize(settings) if settings.warehouse_path.exists() else None
    practice = generate(clients, 7, catalog_dir=settings.jobs_dir)
    with serve_in_thread(practice) as sandbox:
        extra = {"LORCHESTRA_SANDBOX_URL": sandbox.url, **sandbox_env()}
        console.print(f"sandbox of {clients} fictional clients on {sandbox.url}")
        started = time.monotonic()
        runner = run_via_dagster if via == "dagster" else run_via_engine
        code = runner(settings, extra)
        seconds = time.monotonic() - started
    print_summary(summarize(settings), seconds, before)
    if code != 0:
        console.print("[red]daily_all failed[/red]")
        raise typer.Exit(code)
    console.print("[green]daily_all succeeded[/green] (run `make demo` again: it writes nothing)")


if __name__ == "__main__":
    typer.run(main)

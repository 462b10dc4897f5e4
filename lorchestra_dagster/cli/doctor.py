"""``lorchestra doctor``: is this machine ready to run the catalog, and if not, what to do."""

from __future__ import annotations

import sys

import typer

from lorchestra_dagster.cli.app import app, print_json
from lorchestra_dagster.settings import Settings


@app.command("doctor")
def doctor_cmd(
    jobs_dir: str | None = typer.Option(None, "--jobs-dir", help="Catalog directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    offline: bool = typer.Option(
        False, "--offline", help="Do not try the vendors' URLs (the sandbox is still tried)."
    ),
) -> None:
    """Check home, catalog, backend, Dagster instance and daemon, storacle and every source.

    First the LORCHESTRA_*/STORACLE_* variables this environment sets (--json: all of
    them, with defaults); then one line per finding; a problem names its fix. Exit 1
    when any check fails.

    Example: lorchestra doctor --offline
    """
    from lorchestra_dagster.doctor import diagnose

    settings = Settings.from_env(jobs_dir=jobs_dir)
    findings = diagnose(settings, reach=not offline)
    failed = [f for f in findings if f.status == "fail"]
    shown = list(settings.shown())
    if as_json:
        print_json(
            {
                "ok": not failed,
                "home": str(settings.home),
                "catalog": str(settings.jobs_dir),
                "settings": shown,
                "findings": [f.model_dump() for f in findings],
            }
        )
    else:
        # The variables this environment sets (secrets as "set"); --json lists every one.
        for row in shown:
            if row["set"]:
                sys.stdout.write(f"set  settings {row['variable']}: {row['value']}\n")
        for finding in findings:
            sys.stdout.write(finding.line() + "\n")
        warned = sum(1 for f in findings if f.status == "warn")
        sys.stdout.write(
            f"{len(failed)} problem(s), {warned} warning(s)\n"
            if failed or warned
            else "everything is ready\n"
        )
    raise typer.Exit(1 if failed else 0)

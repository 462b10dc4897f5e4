"""The root typer app and helpers every command module shares."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

# Every command may open storacle in process (or serve it): the run tables and the
# alert sync's tables are declared by their owners.
import lorchestra_dagster.alerts.store
import lorchestra_dagster.engine.tables  # noqa: F401

app = typer.Typer(
    name="lorchestra",
    help="lorchestra: a local-first data platform for a clinician's practice data.\n\n"
    'Start with: make demo, then eval "$(.venv/bin/lorchestra sandbox env)" and '
    "lorchestra doctor.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from lorchestra_dagster import __version__

        typer.echo(f"lorchestra {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """lorchestra: a local-first data platform for a clinician's practice data."""


console = Console(stderr=False)
err_console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """Machine output goes to stdout as plain JSON, nothing else mixed in."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def parse_ctx(pairs: list[str]) -> dict[str, Any]:
    """``--ctx`` options (repeatable) as a dict, later ones winning.

    Each is ``key=value`` (the value stays a string) or, as the original took
    it, a JSON object (``--ctx '{"since": "2026-01-01", "n": 3}'``, typed values).
    """
    ctx: dict[str, Any] = {}
    for pair in pairs:
        if pair.lstrip().startswith("{"):
            try:
                obj = json.loads(pair)
            except json.JSONDecodeError as exc:
                raise typer.BadParameter(f"--ctx is not a JSON object: {exc}") from exc
            if not isinstance(obj, dict):
                raise typer.BadParameter("--ctx JSON must be an object")
            ctx.update(obj)
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--ctx expects key=value or a JSON object, got {pair!r}")
        ctx[key] = value
    return ctx


def parse_payload(text: str | None) -> dict[str, Any]:
    """``--payload`` as a JSON object (an empty dict when absent)."""
    try:
        payload = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--payload is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise typer.BadParameter("--payload must be a JSON object")
    return payload

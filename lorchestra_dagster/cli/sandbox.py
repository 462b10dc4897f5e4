"""``lorchestra sandbox``: the loopback sandbox of the synthetic practice."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lorchestra_dagster.cli.app import app, console, print_json
from lorchestra_dagster.settings import Settings

sandbox_app = typer.Typer(
    help="Serve or generate the synthetic practice (offline vendor APIs).", no_args_is_help=True
)
app.add_typer(sandbox_app, name="sandbox")


def _catalog(jobs_dir: Path | None) -> Path | None:
    path = Settings.from_env(jobs_dir=jobs_dir).jobs_dir
    return path if path.is_dir() else None


@sandbox_app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="bind address (loopback by default)"),
    port: int = typer.Option(8766, help="TCP port"),
    clients: int = typer.Option(30, help="number of synthetic clients"),
    seed: int = typer.Option(7, help="generator seed"),
    jobs_dir: Path | None = typer.Option(None, "--jobs-dir", help="catalog with bindings/"),
) -> None:
    """Serve Gmail, Graph, Dataverse, Stripe and Forms APIs over one port until Ctrl-C."""
    import uvicorn

    from lorchestra_dagster.sources.sandbox.generate import generate
    from lorchestra_dagster.sources.sandbox.server import create_app

    practice = generate(clients, seed, catalog_dir=_catalog(jobs_dir))
    console.print(
        f"sandbox: {clients} clients, seed {seed}, http://{host}:{port} "
        f"(set LORCHESTRA_SANDBOX_URL to this; `lorchestra sandbox env` for tokens)"
    )
    uvicorn.run(create_app(practice), host=host, port=port, log_level="warning")


@sandbox_app.command("generate")
def generate_cmd(
    clients: int = typer.Option(30, help="number of synthetic clients"),
    seed: int = typer.Option(7, help="generator seed"),
    out: Path | None = typer.Option(None, help="write one <stream>.jsonl per stream here"),
    jobs_dir: Path | None = typer.Option(None, "--jobs-dir", help="catalog with bindings/"),
) -> None:
    """Generate the practice and print per-stream counts and its sha256."""
    from lorchestra_dagster.sources.sandbox.generate import generate

    practice = generate(clients, seed, catalog_dir=_catalog(jobs_dir))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for sid, objs in practice.streams.items():
            with (out / f"{sid}.jsonl").open("w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(o, sort_keys=True) + "\n" for o in objs)
    print_json(
        {"clients": clients, "seed": seed, "sha256": practice.sha256(), "counts": practice.counts()}
    )


@sandbox_app.command("env")
def env_cmd(url: str = typer.Option("http://127.0.0.1:8766", help="sandbox base URL")) -> None:
    """Print `export` lines pointing every stream at the sandbox with its test credentials."""
    from lorchestra_dagster.sources.sandbox.server import sandbox_env

    typer.echo(f"export LORCHESTRA_SANDBOX_URL={url}")
    for key, value in sandbox_env().items():
        typer.echo(f"export {key}={value}")

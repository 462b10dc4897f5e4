"""``lorchestra sandbox``: the loopback sandbox of the synthetic practice.

``up`` starts it in the background and prints the one line to paste
(``eval "$(lorchestra sandbox env)"``); ``down`` stops it; ``serve`` runs it
in the foreground. Every form records itself in ``$LORCHESTRA_HOME/sandbox.json``
(``sources.sandbox.daemon``), which ``env``, ``make ui`` and ``make demo`` read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from lorchestra_dagster.cli.app import app, console, err_console, print_json
from lorchestra_dagster.errors import LorchestraError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.sources.sandbox import daemon

sandbox_app = typer.Typer(
    help="Serve or generate the synthetic practice (offline vendor APIs).\n\n"
    'Example: lorchestra sandbox up && eval "$(lorchestra sandbox env)"',
    no_args_is_help=True,
)
app.add_typer(sandbox_app, name="sandbox")

ENV_HINT = 'eval "$(.venv/bin/lorchestra sandbox env)"'


def _catalog(jobs_dir: Path | None) -> Path | None:
    path = Settings.from_env(jobs_dir=jobs_dir).jobs_dir
    return path if path.is_dir() else None


@sandbox_app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="bind address (loopback by default)"),
    port: int = typer.Option(daemon.DEFAULT_PORT, help="TCP port (0 = any free port)"),
    clients: int = typer.Option(30, help="number of synthetic clients"),
    seed: int = typer.Option(7, help="generator seed"),
    jobs_dir: Path | None = typer.Option(None, "--jobs-dir", help="catalog with bindings/"),
) -> None:
    """Serve Gmail, Graph, Dataverse, Stripe and Forms APIs over one port until Ctrl-C.

    Example: lorchestra sandbox serve --port 8766 --clients 30
    """
    import uvicorn

    from lorchestra_dagster.sources.sandbox.generate import generate
    from lorchestra_dagster.sources.sandbox.server import create_app

    settings = Settings.from_env()
    try:
        sock = daemon.bind_socket(host, port)
    except LorchestraError as err:
        err_console.print(f"error: {err.message}", markup=False, highlight=False)
        raise typer.Exit(2) from err
    bound = sock.getsockname()[1]
    practice = generate(clients, seed, catalog_dir=_catalog(jobs_dir))
    url = f"http://{host}:{bound}"
    config = uvicorn.Config(
        create_app(practice), host=host, port=bound, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    daemon.write_state(settings, daemon.SandboxInfo(os.getpid(), url, clients, seed))
    console.print(
        f"sandbox: {clients} clients, seed {seed}, {url}; in another shell: {ENV_HINT}",
        highlight=False,
        soft_wrap=True,
    )
    try:
        # uvicorn turns SIGINT/SIGTERM into a graceful shutdown: Ctrl-C ends here quietly.
        server.run(sockets=[sock])
    finally:
        daemon.clear_state(settings, os.getpid())
        sock.close()


@sandbox_app.command("up")
def up_cmd(
    port: int = typer.Option(daemon.DEFAULT_PORT, help="TCP port (a free one when it is taken)"),
    clients: int = typer.Option(30, help="number of synthetic clients"),
    seed: int = typer.Option(7, help="generator seed"),
    jobs_dir: Path | None = typer.Option(None, "--jobs-dir", help="catalog with bindings/"),
) -> None:
    """Start the sandbox in the background (or find the running one) and print the line to source.

    Example: lorchestra sandbox up && eval "$(lorchestra sandbox env)"
    """
    settings = Settings.from_env(jobs_dir=jobs_dir)
    try:
        info, started = daemon.start(settings, port=port, clients=clients, seed=seed)
    except LorchestraError as err:
        err_console.print(f"error: {err.message}", markup=False, highlight=False)
        raise typer.Exit(1) from err
    verb = "started" if started else "already running"
    console.print(
        f"sandbox {verb}: {info.clients} fictional clients on {info.url} (pid {info.pid})",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"point this shell at it:  {ENV_HINT}", highlight=False, soft_wrap=True)
    console.print("stop it:                 .venv/bin/lorchestra sandbox down", highlight=False)


@sandbox_app.command("down")
def down_cmd() -> None:
    """Stop the sandbox of this LORCHESTRA_HOME (the one `sandbox up` started).

    Example: lorchestra sandbox down
    """
    settings = Settings.from_env()
    info = daemon.stop(settings)
    if info is None:
        console.print(f"no sandbox running for {settings.home}", highlight=False)
        return
    console.print(f"sandbox on {info.url} stopped (pid {info.pid})", highlight=False)


@sandbox_app.command("status")
def status_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Say whether this home's sandbox runs and answers; exit 1 when it does not.

    Example: lorchestra sandbox status --json
    """
    settings = Settings.from_env()
    info = daemon.running(settings)
    alive = info is not None and daemon.answers(info.url)
    if as_json:
        print_json({"running": alive, **(info.__dict__ if info else {})})
    elif info is None:
        console.print(
            f"no sandbox running for {settings.home}; start one: .venv/bin/lorchestra sandbox up",
            highlight=False,
        )
    else:
        state = "answers" if alive else "does not answer"
        console.print(f"sandbox pid {info.pid} on {info.url} {state}", highlight=False)
    raise typer.Exit(0 if alive else 1)


@sandbox_app.command("generate")
def generate_cmd(
    clients: int = typer.Option(30, help="number of synthetic clients"),
    seed: int = typer.Option(7, help="generator seed"),
    out: Path | None = typer.Option(None, help="write one <stream>.jsonl per stream here"),
    jobs_dir: Path | None = typer.Option(None, "--jobs-dir", help="catalog with bindings/"),
) -> None:
    """Generate the practice and print per-stream counts and its sha256.

    Example: lorchestra sandbox generate --clients 5 --out /tmp/practice
    """
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
def env_cmd(
    url: str | None = typer.Option(
        None, help="sandbox base URL (default: the running sandbox of this home)"
    ),
    if_running: bool = typer.Option(
        False, "--if-running", help="Print nothing (exit 0) when no sandbox runs."
    ),
) -> None:
    """Print `export` lines pointing every stream at the sandbox with its test credentials.

    Example: eval "$(lorchestra sandbox env)"
    """
    if url is None:
        info = daemon.running(Settings.from_env())
        if info is None:
            if if_running:
                return
            err_console.print(
                "error: no sandbox running for this LORCHESTRA_HOME; start one with "
                "`.venv/bin/lorchestra sandbox up` (or pass --url)",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(1)
        url = info.url
    for line in daemon.env_lines(url):
        typer.echo(line)

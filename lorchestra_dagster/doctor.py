"""``lorchestra doctor`` and the run preflight: what is set up, what is not, and the fix.

Each check returns :class:`Finding` rows (one line each when printed): the
home, the catalog, the backend, the Dagster instance and its daemon, the
storacle server, and every source's credential variables and address. A
problem (``fail``) carries the command or setting that fixes it; ``warn`` is
something worth knowing that does not stop a run (no daemon: schedules do not
tick). ``pipeline run`` and ``run`` call :func:`preflight` with the jobs they
are about to start and stop before any job when it finds a problem, with one
line per missing variable however many streams need it.

Nothing here prints a credential's value: only whether it is set.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from lorchestra_dagster.settings import Settings

Status = Literal["ok", "warn", "fail"]
SANDBOX_VAR = "LORCHESTRA_SANDBOX_URL"
ENV_HINT = 'eval "$(.venv/bin/lorchestra sandbox env)"'
#: A daemon heartbeat older than this means no daemon runs for this instance.
DAEMON_STALE_S = 120.0


class Finding(BaseModel):
    """One line of the report: what was checked, its status, and the fix for a problem."""

    area: str = Field(description="home, catalog, backend, instance, daemon, storacle, source")
    subject: str = Field(description="what exactly: a path, a variable, a URL")
    status: Status
    detail: str = Field(description="what was found (never a secret's value)")
    fix: str | None = Field(default=None, description="the command or setting that fixes it")

    def line(self) -> str:
        fix = f" -> {self.fix}" if self.fix else ""
        return f"{self.status:4} {self.area:8} {self.subject}: {self.detail}{fix}"


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))[2:]


def check_home(settings: Settings) -> list[Finding]:
    home = settings.home
    if not home.exists():
        return [
            Finding(
                area="home",
                subject=str(home),
                status="warn",
                detail="does not exist yet (the first run creates it)",
                fix="make demo",
            )
        ]
    if not os.access(home, os.W_OK):
        return [
            Finding(
                area="home",
                subject=str(home),
                status="fail",
                detail="not writable",
                fix="set LORCHESTRA_HOME to a folder you own",
            )
        ]
    mode = _mode(home)
    if stat.S_IMODE(home.stat().st_mode) & 0o077:
        return [
            Finding(
                area="home",
                subject=str(home),
                status="warn",
                detail=f"mode {mode}: other users can list client data",
                fix=f"chmod 700 {home}",
            )
        ]
    return [Finding(area="home", subject=str(home), status="ok", detail=f"mode {mode}")]


def check_catalog(settings: Settings) -> list[Finding]:
    from lorchestra_dagster.spec import load_catalog

    root = settings.jobs_dir
    if not root.is_dir():
        return [
            Finding(
                area="catalog",
                subject=str(root),
                status="fail",
                detail="no such folder",
                fix="run from the repository, or set LORCHESTRA_JOBS_DIR / --jobs-dir",
            )
        ]
    catalog = load_catalog(root)
    errors = sum(1 for i in catalog.issues if i.severity == "error")
    if not catalog.jobs:
        return [
            Finding(
                area="catalog",
                subject=str(root),
                status="fail",
                detail="no job YAML under it",
                fix="point LORCHESTRA_JOBS_DIR at a catalog (the repository's is ./jobs)",
            )
        ]
    detail = f"{len(catalog.jobs)} job(s), {len(catalog.pipelines)} pipeline(s)"
    if errors:
        return [
            Finding(
                area="catalog",
                subject=str(root),
                status="fail",
                detail=f"{detail}, {errors} error(s)",
                fix="lorchestra validate",
            )
        ]
    return [Finding(area="catalog", subject=str(root), status="ok", detail=detail)]


def check_backend(settings: Settings) -> list[Finding]:
    if settings.backend == "bigquery":
        project = os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            return [
                Finding(
                    area="backend",
                    subject="bigquery",
                    status="fail",
                    detail="GOOGLE_CLOUD_PROJECT is not set",
                    fix="export GOOGLE_CLOUD_PROJECT=<project id>",
                )
            ]
        return [Finding(area="backend", subject="bigquery", status="ok", detail=project)]
    path = settings.warehouse_path
    if settings.storacle_url:
        return [
            Finding(
                area="backend",
                subject="duckdb",
                status="ok",
                detail=f"owned by the storacle server at {settings.storacle_url}",
            )
        ]
    if not path.exists():
        return [
            Finding(
                area="backend",
                subject=str(path),
                status="warn",
                detail="no warehouse yet (the first run creates it)",
                fix="make demo",
            )
        ]
    import duckdb

    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.Error as exc:
        if "lock" not in str(exc).lower():
            raise
        return [
            Finding(
                area="backend",
                subject=str(path),
                status="fail",
                detail="another process holds the warehouse (a storacle server, or a run)",
                fix="set STORACLE_URL to the server that owns it, or stop that process",
            )
        ]
    return [Finding(area="backend", subject=str(path), status="ok", detail="duckdb, opens")]


def check_instance(settings: Settings) -> list[Finding]:
    """The Dagster instance of the home and whether its daemon heartbeats."""
    from lorchestra_dagster.launch import open_instance

    findings: list[Finding] = []
    home = settings.dagster_home
    existed = (home / "dagster.yaml").exists()
    with open_instance(settings) as instance:
        runs = instance.get_runs_count()
        beats = instance.get_daemon_heartbeats()
    detail = f"{runs} run(s)" + ("" if existed else " (created now)")
    findings.append(Finding(area="instance", subject=str(home), status="ok", detail=detail))
    fresh = [b for b in beats.values() if time.time() - b.timestamp < DAEMON_STALE_S]
    if fresh:
        findings.append(
            Finding(
                area="daemon",
                subject="dagster-daemon",
                status="ok",
                detail=f"{len(fresh)} daemon(s) heartbeating",
            )
        )
    else:
        findings.append(
            Finding(
                area="daemon",
                subject="dagster-daemon",
                status="warn",
                detail="not running: the daily schedule and the sensors do not tick",
                fix="make ui (webserver and daemon)",
            )
        )
    return findings


def check_storacle(settings: Settings) -> list[Finding]:
    from lorchestra_dagster.errors import LorchestraError
    from lorchestra_dagster.storacle.client import make_client

    if not settings.storacle_url:
        return [
            Finding(
                area="storacle",
                subject="in-process",
                status="ok",
                detail="no STORACLE_URL: each command opens the warehouse itself",
            )
        ]
    client = make_client(settings)
    try:
        health = client.health()
    except LorchestraError as exc:
        return [
            Finding(
                area="storacle",
                subject=settings.storacle_url,
                status="fail",
                detail=exc.message,
                fix="start it (lorchestra storacle serve) or unset STORACLE_URL",
            )
        ]
    finally:
        client.close()
    return [
        Finding(
            area="storacle",
            subject=settings.storacle_url,
            status="ok",
            detail=f"answers ({health.get('backend')}, home {health.get('home')})",
        )
    ]


# ----------------------------------------------------------------------------- sources


def _sandbox_running(settings: Settings) -> bool:
    from lorchestra_dagster.sources.sandbox import daemon

    return daemon.running(settings) is not None


def _credential_fix(var: str, settings: Settings, env: Mapping[str, str]) -> str:
    if settings.sandbox_url or _sandbox_running(settings):
        return f"{ENV_HINT} (the sandbox's test credentials)"
    return f"export {var}=... (the vendor's credential), or use the sandbox: lorchestra sandbox up"


def _reachable(url: str, timeout_s: float) -> str | None:
    """None when ``url`` answers HTTP at all (any status), else why it does not."""
    import httpx

    from lorchestra_dagster.sources.connectors.base import connect_reason

    try:
        httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return connect_reason(exc)
    return None


def check_sources(
    settings: Settings,
    streams: Iterable[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    reach: bool = True,
    timeout_s: float = 3.0,
) -> list[Finding]:
    """Credential variables (one line per variable) and addresses (one line per URL).

    ``streams`` limits the check to those streams (the preflight of a run);
    ``reach=False`` skips the network (only the sandbox URL is then tried,
    which is loopback).
    """
    from lorchestra_dagster.errors import PermanentError
    from lorchestra_dagster.sources.catalog import SOURCES_FILE, load_stream, stream_ids

    env = os.environ if env is None else env
    root = settings.jobs_dir
    if not (root / SOURCES_FILE).is_file():
        return []
    try:
        wanted = sorted(stream_ids(root) if streams is None else set(streams))
    except PermanentError as exc:
        return [Finding(area="source", subject=SOURCES_FILE, status="fail", detail=exc.message)]
    findings: list[Finding] = []
    missing: dict[str, list[str]] = {}
    urls: dict[str, list[str]] = {}
    for stream in wanted:
        try:
            cfg = load_stream(root, stream)
        except PermanentError as exc:
            findings.append(
                Finding(
                    area="source",
                    subject=stream,
                    status="fail",
                    detail=exc.message,
                    fix="lorchestra validate",
                )
            )
            continue
        for var in cfg.credential_vars():
            if not env.get(var):
                missing.setdefault(var, []).append(stream)
        url = cfg.endpoint(env)
        if url:
            urls.setdefault(url, []).append(stream)
    for var, names in sorted(missing.items()):
        findings.append(
            Finding(
                area="source",
                subject=var,
                status="fail",
                detail=f"is not set (needed by {_names(names)})",
                fix=_credential_fix(var, settings, env),
            )
        )
    sandbox = (settings.sandbox_url or "").rstrip("/")
    for url, names in sorted(urls.items()):
        via_sandbox = bool(sandbox) and url.startswith(sandbox)
        if not reach and not via_sandbox:
            continue
        why = _reachable(url, timeout_s)
        if why is None:
            findings.append(
                Finding(
                    area="source",
                    subject=url,
                    status="ok",
                    detail=f"answers ({_names(names)})",
                )
            )
            continue
        fix = (
            f"{SANDBOX_VAR} points there: lorchestra sandbox up, then {ENV_HINT}; or unset "
            f"{SANDBOX_VAR} to use the vendors"
            if via_sandbox
            else f"check base_url in {SOURCES_FILE} and the network, or set {SANDBOX_VAR} to "
            "use the sandbox"
        )
        findings.append(
            Finding(
                area="source",
                subject=url,
                status="fail",
                detail=f"cannot reach ({why}; {_names(names)})",
                fix=fix,
            )
        )
    if not missing and not any(f.status == "fail" for f in findings):
        findings.append(
            Finding(
                area="source",
                subject="credentials",
                status="ok",
                detail=f"every variable of {len(wanted)} stream(s) is set",
            )
        )
    return findings


def _names(streams: list[str]) -> str:
    shown = ", ".join(streams[:3])
    more = f" and {len(streams) - 3} more" if len(streams) > 3 else ""
    return f"{len(streams)} stream(s): {shown}{more}" if len(streams) > 1 else streams[0]


# ----------------------------------------------------------------------------- entry points


def diagnose(settings: Settings, *, reach: bool = True) -> list[Finding]:
    """Every check, in the order a person would fix them."""
    findings = check_home(settings) + check_catalog(settings) + check_backend(settings)
    findings += check_instance(settings) + check_storacle(settings)
    findings += check_sources(settings, reach=reach)
    return findings


def streams_of_jobs(catalog: Any, job_ids: Iterable[str]) -> list[str]:
    """The source streams the given jobs fetch (each callable's ``stream_param``)."""
    from lorchestra_dagster.callables import streams_of

    streams: list[str] = []
    for job_id in job_ids:
        loaded = catalog.jobs.get(job_id)
        if loaded is not None:
            streams.extend(streams_of(loaded.jobdef))
    return list(dict.fromkeys(streams))


def preflight(settings: Settings, catalog: Any, job_ids: Iterable[str]) -> list[Finding]:
    """Problems that would fail these jobs before they start: unset variables, a dead sandbox.

    Only loopback is tried (the sandbox URL, when set); real vendors are
    reached by the run itself.
    """
    streams = streams_of_jobs(catalog, job_ids)
    if not streams:
        return []
    return [f for f in check_sources(settings, streams, reach=False) if f.status == "fail"]

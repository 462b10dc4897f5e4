"""Start Dagster runs from Python and the CLI, and read the one run history back.

``lorchestra run``, ``lorchestra pipeline run``, ``make demo`` and
``execute(envelope)`` all come here: each builds the code location (the same
``build_defs`` the UI loads), then executes the Dagster job in this process
against the instance in ``$LORCHESTRA_HOME/dagster``. In-process is the
fastest way for one machine (no process per run, the warehouse connection
already open), and the run is a real Dagster run: it carries the code
location's origin, so the UI lists it on the Overview timeline and the asset
pages show its materializations, tagged ``lorchestra/launched_by=cli``.

The run history is Dagster's: ``result_of_run`` reads a run's per-job records
(counts-only metadata of its materializations and observations) back from the
instance; ``lorchestra runs list|show`` use nothing else.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from lorchestra_dagster import naming
from lorchestra_dagster.catalog_service import CatalogReport, load_report
from lorchestra_dagster.defs import history
from lorchestra_dagster.defs.abandoned import mark_abandoned, owner_tag
from lorchestra_dagster.engine.results import JobSummary, PipelineResult
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.privacy import private_dir, secure_home
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.spec.models import DEFAULT_BATCH_SIZE

REPO = Path(__file__).resolve().parents[1]
REPO_DAGSTER_YAML = REPO / "dagster.yaml"
_FALLBACK_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
#: The code location's name in workspace.yaml (runs launched here are filed under it).
LOCATION_NAME = "lorchestra"
DEFINITIONS_MODULE = "lorchestra_dagster.definitions"

Kind = Literal["job", "pipeline"]

_DEFS: dict[tuple[str, ...], tuple[dg.Definitions, CatalogReport]] = {}
_DEFS_LOCK = threading.Lock()


def ensure_instance(settings: Settings | None = None) -> Path:
    """Create ``$LORCHESTRA_HOME/dagster`` (0700) seeded with the repo's dagster.yaml.

    The home is secured first (:func:`~lorchestra_dagster.privacy.secure_home`), so the
    instance's ``runs.db``, event logs and schedules are created 0600 in 0700 folders.
    """
    settings = settings or Settings.from_env()
    secure_home(settings.home)
    home = private_dir(settings.dagster_home)
    target = home / "dagster.yaml"
    if not target.exists():
        if REPO_DAGSTER_YAML.is_file():
            shutil.copyfile(REPO_DAGSTER_YAML, target)  # not copy(): it would copy 0644
        else:
            target.write_text(_FALLBACK_YAML, encoding="utf-8")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    return home


@contextmanager
def open_instance(settings: Settings | None = None) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance of ``LORCHESTRA_HOME`` (the one ``make ui`` shows).

    dagster.yaml names its storage folder by ``env: DAGSTER_HOME`` (resolved again
    whenever Dagster rebuilds the instance from its ref during a run), so it is set
    while the instance is open and restored after: a process can open several
    homes in turn.
    """
    home = ensure_instance(settings)
    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            mark_abandoned(instance)
            yield instance
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved


def code_location(
    settings: Settings | None = None, *, fresh: bool = False
) -> tuple[dg.Definitions, CatalogReport]:
    """The code location for ``settings`` (built once per process and catalog state)."""
    from lorchestra_dagster.defs.build import build_defs

    settings = settings or Settings.from_env()
    key = (str(settings.home), str(settings.jobs_dir), settings.backend, _catalog_stamp(settings))
    with _DEFS_LOCK:
        if not fresh and key in _DEFS:
            return _DEFS[key]
    report = load_report(settings.jobs_dir)
    defs = build_defs(settings, report)
    with _DEFS_LOCK:
        if len(_DEFS) > 16:
            _DEFS.clear()
        _DEFS[key] = (defs, report)
    return defs, report


def _catalog_stamp(settings: Settings) -> str:
    """Changes whenever a file of the catalog changes (mtime and size of every file)."""
    root = settings.jobs_dir
    if not root.is_dir():
        return "missing"
    parts = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            parts.append(f"{path}:{st.st_mtime_ns}:{st.st_size}")
    return str(hash("|".join(parts)))


def _remote_origin(job_name: str) -> Any:
    """The origin the webserver gives runs of the ``lorchestra`` location (workspace.yaml)."""
    from dagster._core.remote_origin import (
        ManagedGrpcPythonEnvCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    target = LoadableTargetOrigin(
        executable_path=sys.executable,
        module_name=DEFINITIONS_MODULE,
        working_directory=str(REPO),
    )
    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        loadable_target_origin=target, location_name=LOCATION_NAME
    )
    repo = RemoteRepositoryOrigin(code_location_origin=location, repository_name="__repository__")
    return RemoteJobOrigin(repository_origin=repo, job_name=job_name)


def _execute(
    job_def: dg.JobDefinition,
    instance: dg.DagsterInstance,
    run_config: Mapping[str, Any],
    tags: Mapping[str, str],
    asset_selection: list[dg.AssetKey] | None,
) -> str:
    """``execute_in_process`` with the run filed under the code location; returns the run id.

    Mirrors ``JobDefinition.execute_in_process`` (Dagster pinned in pyproject)
    except that the run record carries the remote origin the UI groups runs by.
    """
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import (
        ExecuteRunWithPlanIterable,
        create_execution_plan,
        job_execution_iterator,
    )
    from dagster._core.execution.context_creation_job import (
        PlanOrchestrationContextManager,
        orchestration_context_event_generator,
    )

    ephemeral = job_def.as_ephemeral_job(
        resource_defs={}, input_values={}, asset_selection=asset_selection
    )
    job = InMemoryJob(job_def=ephemeral)
    plan = create_execution_plan(job, run_config=run_config, instance_ref=instance.get_ref())
    run = instance.create_run_for_job(
        job_def=ephemeral,
        run_config=run_config,
        tags={**job_def.run_tags, **tags, **owner_tag()},
        asset_selection=frozenset(asset_selection) if asset_selection else None,
        execution_plan=plan,
        remote_job_origin=_remote_origin(job_def.name),
    )
    iterable = ExecuteRunWithPlanIterable(
        execution_plan=plan,
        iterator=job_execution_iterator,
        execution_context_manager=PlanOrchestrationContextManager(
            context_event_generator=orchestration_context_event_generator,
            job=job,
            execution_plan=plan,
            dagster_run=run,
            instance=instance,
            run_config=run_config,
            executor_defs=None,
            output_capture=None,
            raise_on_error=False,
        ),
    )
    for _event in iterable:
        pass
    return run.run_id


def run_config(
    *,
    dry_run: bool = False,
    ctx: Mapping[str, Any] | None = None,
    payload: Mapping[str, Any] | None = None,
    limit: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_workers: int = 2,
    force: bool = False,
) -> dict[str, Any]:
    """Run config of the ``envelope`` resource (what the launchpad would hold)."""
    config: dict[str, Any] = {
        "ctx": dict(ctx or {}),
        "payload": dict(payload or {}),
        "dry_run": dry_run,
        "batch_size": batch_size,
        "max_workers": max_workers,
        "force": force,
    }
    if limit is not None:
        config["limit"] = limit
    # Dagster's console logger would print every event at DEBUG; the events still go to
    # the instance (the UI shows them); the CLI prints its own summary and root causes.
    return {
        "resources": {"envelope": {"config": config}},
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
    }


def launch(
    target: str,
    *,
    kind: Kind,
    settings: Settings | None = None,
    launched_by: str = "cli",
    progress: Callable[[JobSummary], None] | None = None,
    on_start: Callable[[str], None] | None = None,
    select: str | list[str] | None = None,
    **options: Any,
) -> PipelineResult:
    """Run a job or a pipeline as a Dagster run in this process; its result from the history.

    Raises ``PermanentError`` before any run starts when ``target`` is unknown
    (with near names) or an invalid job (with its ``path:line:col`` errors).
    ``select`` picks a pipeline's jobs, or with ``kind="job"`` any jobs of the
    catalog (``target`` is then only the result's label).
    """
    from lorchestra_dagster.defs.catalog_assets import (
        LAUNCHED_BY_TAG,
        add_progress_listener,
        add_start_listener,
        asset_keys,
        remove_progress_listener,
        remove_start_listener,
    )

    settings = settings or Settings.from_env()
    defs, report = code_location(settings)
    catalog = report.catalog
    selection: list[dg.AssetKey] | None = None
    config = run_config(**options)
    if kind == "pipeline":
        target = catalog.resolve_pipeline_id(target)  # unknown: PermanentError, near names
        job_name = naming.pipeline_job_name(target)
        if select:
            selection = selected_keys(report, target, select)
    else:
        if target in report.broken and not select:
            broken = report.broken[target]
            raise PermanentError(
                f"job {target!r} failed validation: {broken.message()}; "
                "run `lorchestra validate` for every error",
                file=str(broken.path),
                line=broken.issues[0].line,
                column=broken.issues[0].col,
                job_id=target,
            )
        job_name = None
        if select:  # `lorchestra run --select`: any jobs of the catalog, in stage order
            selection = selected_keys(report, None, select)
        else:
            catalog.job(target)  # unknown: PermanentError with near names
            selection = [asset_keys(report)[target]]
    if progress is not None:
        add_progress_listener(progress)
    if on_start is not None:
        add_start_listener(on_start)
    try:
        with open_instance(settings) as instance:
            # Resolved inside the instance's context: Dagster reads its state storage.
            job_def = (
                defs.resolve_job_def(job_name)
                if job_name
                else defs.resolve_implicit_global_asset_job_def()
            )
            started = datetime.now(UTC).isoformat()
            run_id = _execute(job_def, instance, config, {LAUNCHED_BY_TAG: launched_by}, selection)
            result = history.result_of_run(instance, run_id, target=target)
        if kind == "pipeline" and not options.get("dry_run"):
            result.alerts = sync_after_run(settings, since=started)
        return result
    finally:
        if progress is not None:
            remove_progress_listener(progress)
        if on_start is not None:
            remove_start_listener(on_start)


def selected_keys(
    report: CatalogReport, pipeline_id: str | None, select: str | list[str]
) -> list[dg.AssetKey]:
    """Asset keys of the jobs a ``--select`` names (``spec.selection``).

    Among the pipeline's jobs, or among every job of the catalog when ``pipeline_id``
    is None (``lorchestra run --select``, like ``dbt run --select``).
    """
    from lorchestra_dagster.defs.catalog_assets import asset_keys
    from lorchestra_dagster.defs.pipelines import flatten
    from lorchestra_dagster.spec.selection import resolve_selection

    keys = asset_keys(report)
    universe = flatten(report.catalog, pipeline_id).job_ids if pipeline_id else list(keys)
    members = [j for j in universe if j in keys]
    stages = {j: report.catalog.jobs[j].stage for j in members}
    deps = report.lineage.deps if report.lineage is not None else {}
    picked = resolve_selection(select, stages, deps)
    return [keys[j] for j in picked]


def sync_after_run(settings: Settings, *, since: str | None = None) -> dict[str, Any]:
    """The alert sync the sensor runs, once more at the end of a pipeline run.

    So the CLI path (no daemon) alerts too: new flags become alerts, land in
    ``ops.events`` and reach the notification hook before the command returns.
    Whatever the run's status: a failed project stage must not hold back a flag
    that formation wrote. Raises on a failed write, like any step.
    """
    from lorchestra_dagster.alerts import sync_alerts
    from lorchestra_dagster.defs.resources import StoracleResource

    storacle = StoracleResource(
        home=str(settings.home),
        jobs_dir=str(settings.jobs_dir),
        backend=settings.backend,
        storacle_url=settings.storacle_url,
    )
    client = storacle.services().client
    report = sync_alerts(client)
    new = [str(a["alert_id"]) for a in report.opened]
    if since is not None:
        # The run itself syncs before its views: alerts it opened count as new here too.
        opened = client.query(
            {"dataset": "derived", "table": "alert_history", "columns": ["alert_id"],
             "order_by": ["alert_id"],
             "filters": [{"column": "action", "op": "in", "value": ["opened", "reopened"]},
                         {"column": "at", "op": ">=", "value": since}]}
        )  # fmt: skip
        new = sorted({*new, *(str(r["alert_id"]) for r in opened)})
    return {**report.summary(), "opened": len(new), "new": new[:50],
            "errors": report.notify_errors[:10]}  # fmt: skip


def execute(envelope: Mapping[str, Any], *, settings: Settings | None = None) -> PipelineResult:
    """The public API: run the job named in ``envelope`` as a Dagster run.

    Envelope keys: ``job_id`` (or ``pipeline_id``), ``ctx``, ``payload``,
    ``dry_run``, ``limit``, ``batch_size``, ``force``.
    """
    env = dict(envelope)
    options = {
        k: env[k]
        for k in ("ctx", "payload", "dry_run", "limit", "batch_size", "max_workers", "force")
        if env.get(k) is not None
    }
    if env.get("pipeline_id"):
        return launch(env["pipeline_id"], kind="pipeline", settings=settings, **options)
    if not env.get("job_id"):
        raise PermanentError("an envelope is a mapping with at least 'job_id' or 'pipeline_id'")
    return launch(env["job_id"], kind="job", settings=settings, launched_by="api", **options)


# ----------------------------------------------------------------------------- history


def list_runs(settings: Settings | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent runs of the instance, newest first (every face's runs)."""
    with open_instance(settings) as instance:
        return history.list_runs(instance, limit)


def show_run(run_id: str, settings: Settings | None = None) -> PipelineResult:
    """One run by id or unique id prefix."""
    with open_instance(settings) as instance:
        return history.result_of_run(instance, history.resolve_run_id(instance, run_id))


slowest_step = history.slowest_step
result_of_run = history.result_of_run

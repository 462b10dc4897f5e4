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
from lorchestra_dagster.engine.results import JobSummary, PipelineResult
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.settings import Settings

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
    """Create ``$LORCHESTRA_HOME/dagster`` (0700) seeded with the repo's dagster.yaml."""
    settings = settings or Settings.from_env()
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    target = home / "dagster.yaml"
    if not target.exists():
        if REPO_DAGSTER_YAML.is_file():
            shutil.copy(REPO_DAGSTER_YAML, target)
        else:
            target.write_text(_FALLBACK_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    return home


@contextmanager
def open_instance(settings: Settings | None = None) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance of ``LORCHESTRA_HOME`` (the one ``make ui`` shows)."""
    home = ensure_instance(settings)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


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
        tags={**job_def.run_tags, **tags},
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
    batch_size: int = 5000,
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
    **options: Any,
) -> PipelineResult:
    """Run a job or a pipeline as a Dagster run in this process; its result from the history.

    Raises ``PermanentError`` before any run starts when ``target`` is unknown
    (with near names) or an invalid job (with its ``path:line:col`` errors).
    """
    from lorchestra_dagster.defs.catalog_assets import (
        LAUNCHED_BY_TAG,
        add_progress_listener,
        asset_keys,
        remove_progress_listener,
    )

    settings = settings or Settings.from_env()
    defs, report = code_location(settings)
    catalog = report.catalog
    selection: list[dg.AssetKey] | None = None
    config = run_config(**options)
    if kind == "pipeline":
        catalog.pipeline(target)  # unknown: PermanentError with near names
        job_def = defs.resolve_job_def(naming.pipeline_job_name(target))
    else:
        if target in report.broken:
            broken = report.broken[target]
            raise PermanentError(
                f"job {target!r} failed validation: {broken.message()}; "
                "run `lorchestra validate` for every error",
                file=str(broken.path),
                line=broken.issues[0].line,
                column=broken.issues[0].col,
                job_id=target,
            )
        catalog.job(target)  # unknown: PermanentError with near names
        job_def = defs.resolve_implicit_global_asset_job_def()
        selection = [asset_keys(report)[target]]
    if progress is not None:
        add_progress_listener(progress)
    try:
        with open_instance(settings) as instance:
            run_id = _execute(job_def, instance, config, {LAUNCHED_BY_TAG: launched_by}, selection)
            return result_of_run(instance, run_id, target=target)
    finally:
        if progress is not None:
            remove_progress_listener(progress)


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

_STATUS = {
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "CANCELED": "failed",
    "STARTED": "running",
    "STARTING": "running",
    "QUEUED": "running",
    "NOT_STARTED": "running",
    "MANAGED": "running",
    "CANCELING": "running",
}


def _summaries(instance: dg.DagsterInstance, run_id: str) -> tuple[list[JobSummary], list[str]]:
    """Per-job records of a run (from its asset events) and run-level error messages."""
    from lorchestra_dagster.defs.catalog_assets import RECORD_KEY

    wanted = {
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.ASSET_OBSERVATION,
        dg.DagsterEventType.STEP_FAILURE,
    }
    jobs: dict[str, JobSummary] = {}
    errors: list[str] = []
    for record in instance.get_records_for_run(run_id, of_type=wanted, limit=100_000).records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        data = event.event_specific_data
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            failure = getattr(data, "user_failure_data", None)
            error = getattr(data, "error", None)
            if failure is None and error is not None:  # a crash, not a job's own failure
                errors.append(f"{error.cls_name}: {error.message.strip()[:500]}")
            continue
        holder = getattr(data, "materialization", None) or getattr(data, "asset_observation", None)
        rec = holder.metadata.get(RECORD_KEY) if holder is not None else None
        if rec is not None:
            summary = JobSummary.model_validate({**rec.value, "run_id": run_id})
            jobs[summary.job_id] = summary
    return list(jobs.values()), errors


def result_of_run(
    instance: dg.DagsterInstance, run_id: str, *, target: str | None = None
) -> PipelineResult:
    """One run of the history as a ``PipelineResult`` (jobs, counts, failures)."""
    from lorchestra_dagster.defs.catalog_assets import LAUNCHED_BY_TAG, launched_by
    from lorchestra_dagster.defs.pipelines import PIPELINE_TAG

    record = instance.get_run_record_by_id(run_id)
    if record is None:
        raise PermanentError(f"no run {run_id!r} in the instance")
    run = record.dagster_run
    jobs, errors = _summaries(instance, run_id)
    started = record.start_time
    ended = record.end_time
    result = PipelineResult(
        run_id=run_id,
        pipeline_id=target or run.tags.get(PIPELINE_TAG) or _job_target(jobs, run.job_name),
        status=_STATUS.get(run.status.value, "running"),  # type: ignore[arg-type]
        dry_run=_dry(run.run_config),
        launched_by=run.tags.get(LAUNCHED_BY_TAG) or launched_by(run),
        dagster_job=run.job_name,
        started_at=datetime.fromtimestamp(started, tz=UTC).isoformat() if started else None,
        duration_s=round((ended or started or 0) - (started or 0), 3) if started else 0.0,
        jobs=jobs,
    )
    for job in jobs:
        result.rows_read += job.rows_read
        result.rows_written += job.rows_written
        if job.status == "succeeded":
            result.succeeded.append(job.job_id)
        elif job.status == "failed":
            result.failed.append(job.job_id)
            result.failures.append(
                {"job_id": job.job_id, "stage": job.stage, "run_id": run_id, "error": job.error}
            )
        else:
            result.skipped.append(job.job_id)
    if result.status == "failed" and not result.failures:
        for message in errors or ["the run failed before any job started"]:
            result.failures.append(
                {"job_id": None, "error": {"message": message, "classification": "permanent"}}
            )
    return result


def _dry(config: Mapping[str, Any]) -> bool:
    envelope = ((config or {}).get("resources") or {}).get("envelope") or {}
    return bool((envelope.get("config") or {}).get("dry_run"))


def _job_target(jobs: list[JobSummary], job_name: str) -> str:
    return jobs[0].job_id if len(jobs) == 1 else job_name


def list_runs(settings: Settings | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent runs of the instance, newest first (every face's runs)."""
    from lorchestra_dagster.defs.catalog_assets import LAUNCHED_BY_TAG, launched_by
    from lorchestra_dagster.defs.pipelines import PIPELINE_TAG

    rows = []
    with open_instance(settings) as instance:
        for record in instance.get_run_records(limit=limit):
            run = record.dagster_run
            started, ended = record.start_time, record.end_time
            rows.append(
                {
                    "run_id": run.run_id,
                    "dagster_job": run.job_name,
                    "pipeline_id": run.tags.get(PIPELINE_TAG),
                    "status": _STATUS.get(run.status.value, "running"),
                    "launched_by": run.tags.get(LAUNCHED_BY_TAG) or launched_by(run),
                    "dry_run": _dry(run.run_config),
                    "started_at": datetime.fromtimestamp(started, tz=UTC).isoformat()
                    if started
                    else None,
                    "duration_s": round(ended - started, 3) if started and ended else None,
                }
            )
    return rows


def show_run(run_id: str, settings: Settings | None = None) -> PipelineResult:
    """One run by id or unique id prefix."""
    with open_instance(settings) as instance:
        if instance.get_run_record_by_id(run_id) is None:
            matches = [
                r.dagster_run.run_id
                for r in instance.get_run_records(limit=5000)
                if r.dagster_run.run_id.startswith(run_id)
            ]
            if len(matches) != 1:
                raise PermanentError(f"{len(matches)} runs match {run_id!r}")
            run_id = matches[0]
        return result_of_run(instance, run_id)


def slowest_step(result: PipelineResult) -> tuple[str, str, str, float] | None:
    """``(job_id, step_id, op, seconds)`` of the run's slowest step, if any step ran."""
    best: tuple[str, str, str, float] | None = None
    for job in result.jobs:
        for step in job.steps:
            if best is None or step.duration_s > best[3]:
                best = (job.job_id, step.step_id, step.op, step.duration_s)
    return best

"""The catalog as Dagster assets: one subsettable multi-asset, one materialization per job.

Every valid job of the catalog is an asset (key ``naming.asset_key``, group =
its stage folder, ``code_version`` = the JobDef hash, a code reference to its YAML line,
lineage from ``spec.lineage``). All of them belong to one multi-asset op,
``lorchestra_catalog``, in the way dagster-dbt runs a whole dbt project from
one op: whatever is selected (a pipeline's assets, one asset clicked in the UI,
the schedule's ``daily_all``) runs inside that op through the engine's one job
runner (``engine.execute_with``: refs, ``if``, retries with their maximum
backoff, ``continue_on_error``, timeouts, ``limit``, dry runs, keyset batches
with one atomic plan each), stages in order and independent jobs of a stage
in parallel threads (``engine.scheduler``). Each job reports as it finishes:

* a materialization when it ran and wrote (or could have written) its tables,
  with counts-only metadata: rows read/written, per-step timings and counts,
  plan ids, and a data version;
* an observation when it did not materialize: dry run, failure (its root
  cause), skipped because an upstream failed or an earlier stage failed, or
  skipped because nothing it reads changed.

Why one op (figures in docs/architecture.md): an op per step cost a process
per step under the multiprocess executor (207 steps, minutes of start-up for
seconds of work) and forced every step output, client data included, through
the IO manager onto disk. Inside one op, step outputs stay in memory and
nothing is written but the warehouse.

A job whose inputs did not change is skipped (``fingerprints.py``): its
signature (code, registries, envelope, and a fingerprint of every slice it
reads and writes) equals the one stored with its last materialization, so a
day with no new data stops after ingest. The signature is also the asset's
data version.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import dagster as dg

from lorchestra_dagster import naming
from lorchestra_dagster.callables import streams_of
from lorchestra_dagster.catalog_service import CatalogReport, stage_order
from lorchestra_dagster.defs.checks import check_specs, run_checks
from lorchestra_dagster.defs.fingerprints import (
    SIGNATURE_KEY,
    Fingerprints,
    Inputs,
    envelope_sha,
    previous,
)
from lorchestra_dagster.defs.pipelines import PIPELINE_TAG, flatten
from lorchestra_dagster.engine.executor import execute_with
from lorchestra_dagster.engine.memory import release_memory
from lorchestra_dagster.engine.results import ExecutionResult, JobSummary, merge_iterations
from lorchestra_dagster.engine.scheduler import Scheduled, run_stages
from lorchestra_dagster.errors import LorchestraError, error_dict, safe_message
from lorchestra_dagster.sources.catalog import source_concurrency
from lorchestra_dagster.spec import job_def_sha256
from lorchestra_dagster.spec.lineage import JobIO, job_io
from lorchestra_dagster.spec.loops import iteration_payload, loop_items

CATALOG_OP = "lorchestra_catalog"
LAUNCHED_BY_TAG = "lorchestra/launched_by"
RECORD_KEY = "lorchestra/run_record"

ProgressFn = Callable[[JobSummary], None]
_LISTENERS: list[ProgressFn] = []
_LISTENERS_LOCK = threading.Lock()


def add_progress_listener(fn: ProgressFn) -> None:
    """Call ``fn`` with each job's summary as it finishes (in-process runs: the CLI's bar)."""
    with _LISTENERS_LOCK:
        _LISTENERS.append(fn)


def remove_progress_listener(fn: ProgressFn) -> None:
    with _LISTENERS_LOCK:
        if fn in _LISTENERS:
            _LISTENERS.remove(fn)


StartFn = Callable[[str], None]
_START_LISTENERS: list[StartFn] = []


def add_start_listener(fn: StartFn) -> None:
    """Call ``fn(job_id)`` as each job starts (the CLI names the jobs in flight)."""
    with _LISTENERS_LOCK:
        _START_LISTENERS.append(fn)


def remove_start_listener(fn: StartFn) -> None:
    with _LISTENERS_LOCK:
        if fn in _START_LISTENERS:
            _START_LISTENERS.remove(fn)


def _notify_start(job_id: str) -> None:
    with _LISTENERS_LOCK:
        listeners = list(_START_LISTENERS)
    for fn in listeners:
        fn(job_id)


def _notify(summary: JobSummary) -> None:
    with _LISTENERS_LOCK:
        listeners = list(_LISTENERS)
    for fn in listeners:
        fn(summary)


@dataclass(frozen=True)
class CatalogJob:
    """One stage job as the op sees it."""

    job_id: str
    stage: str
    key: dg.AssetKey
    upstream: tuple[str, ...]
    spec_hash: str
    #: what it reads and writes (lineage for the five stages; inferred alone for others);
    #: ``io.derives``: it creates views, fingerprinted by what they read
    io: JobIO
    inputs: Inputs
    #: nothing it reads or writes changed since its last materialization: skip it
    skippable: bool = False


def asset_keys(report: CatalogReport) -> dict[str, dg.AssetKey]:
    """``{job_id: key}`` of the stage jobs; short names unless two jobs of a stage collide."""
    jobs = report.asset_jobs()
    short: dict[tuple[str, str], list[str]] = {}
    for j in jobs:
        short.setdefault((j.stage, naming.asset_name(j.stage, j.job_id)), []).append(j.job_id)
    keys: dict[str, dg.AssetKey] = {}
    for j in jobs:
        clash = len(short[(j.stage, naming.asset_name(j.stage, j.job_id))]) > 1
        keys[j.job_id] = dg.AssetKey(naming.asset_key(j.stage, j.job_id, short=not clash))
    return keys


def broken_key(report: CatalogReport, job_id: str) -> dg.AssetKey:
    broken = report.broken[job_id]
    return dg.AssetKey(naming.asset_key(broken.stage, job_id))


def catalog_jobs(report: CatalogReport) -> dict[str, CatalogJob]:
    """The stage jobs with their keys, upstreams and skip rules."""
    lineage = report.lineage
    assert lineage is not None, "load_report always leaves a valid lineage"
    keys = asset_keys(report)
    out: dict[str, CatalogJob] = {}
    for loaded in report.asset_jobs():
        jid = loaded.job_id
        ups = [u for u in lineage.deps.get(jid, []) if u in keys]
        io = lineage.jobs.get(jid) or job_io(jid, loaded.stage, loaded.jobdef, str(loaded.path))
        out[jid] = CatalogJob(
            job_id=jid,
            stage=loaded.stage,
            key=keys[jid],
            upstream=tuple(ups),
            spec_hash=job_def_sha256(loaded.jobdef),
            io=io,
            inputs=Inputs.of(io, loaded.jobdef, loaded.stage),
        )
    prints = Fingerprints(out, report.registry_sha256)
    return {jid: replace(job, skippable=prints.skippable(job)) for jid, job in out.items()}


def _yaml_line(report: CatalogReport, path: Any) -> int:
    for f in report.catalog.files:
        if f.path == path and f.doc is not None:
            return max(1, f.doc.pos(("job_id",)).line)
    return 1


def _code_ref(path: Any, line: int, label: str) -> dg.CodeReferencesMetadataValue:
    """A link from the asset page to the job's YAML line (Dagster's code references)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.CodeReferencesMetadataValue(
            code_references=[
                dg.LocalFileCodeReference(
                    file_path=str(Path(path).absolute()), line_number=line, label=label
                )
            ]
        )


def _kinds(io: JobIO, backend: str) -> set[str]:
    kinds: list[str] = []
    if io.writes or io.reads:
        kinds.append(backend)
    if io.sqlite_tables:
        kinds.append("sqlite")
    if io.files:
        kinds.append("files")
    return set(kinds[:3])


def _spec(report: CatalogReport, job: CatalogJob, jobs: dict[str, CatalogJob], backend: str):
    loaded = report.catalog.jobs[job.job_id]
    io = job.io
    writes = [
        {
            "table_name": w.table_name,
            "dataset": w.dataset,
            "table": w.table,
            "filters": dict(w.filters),
            "key_columns": io.key_columns.get(w.table_name, []),
        }
        for w in io.writes
    ]
    line = _yaml_line(report, loaded.path)
    metadata: dict[str, Any] = {
        "lorchestra/job_id": job.job_id,
        "lorchestra/yaml_path": dg.MetadataValue.path(f"{loaded.path}:{line}"),
        "lorchestra/spec_hash": job.spec_hash,
        "lorchestra/writes": dg.MetadataValue.json(writes),
        "lorchestra/reads": dg.MetadataValue.json([r.describe() for r in io.reads]),
        "lorchestra/steps": len(loaded.jobdef.steps),
        "dagster/code_references": _code_ref(loaded.path, line, f"{job.job_id}.yaml"),
    }
    if len(writes) == 1:
        metadata["dagster/table_name"] = writes[0]["table_name"]
    description = loaded.jobdef.description or job.job_id
    return dg.AssetSpec(
        key=job.key,
        deps=[jobs[u].key for u in job.upstream],
        group_name=job.stage,
        code_version=job.spec_hash,
        description=f"{description}\n\njob `{job.job_id}` in `{loaded.path}`",
        metadata=metadata,
        kinds=_kinds(io, backend),
        skippable=True,
    )


# ----------------------------------------------------------------------------- the op


@dataclass
class JobRun:
    """What running (or skipping) one job produced."""

    job: CatalogJob
    result: ExecutionResult
    signature: str | None
    reason: str | None = None
    checks: list[Any] | None = None


def plan_stages(
    report: CatalogReport, selected: list[str], pipeline_id: str | None, stage_of: dict[str, str]
) -> tuple[list[tuple[str, list[str]]], bool, list[str]]:
    """Stages of this run, whether a failure stops later ones, and broken pipeline members.

    A pipeline run follows its PipelineDef's stages (nested pipelines
    expanded); any other selection runs in catalog stage order.
    """
    chosen = set(selected)
    if pipeline_id and pipeline_id in report.catalog.pipelines:
        plan = flatten(report.catalog, pipeline_id)
        stages = [(name, [j for j in ids if j in chosen]) for name, ids in plan.stages]
        placed = {j for _, ids in stages for j in ids}
        extra = [j for j in selected if j not in placed]
        if extra:
            stages.append(("other", extra))
        broken = [j for j in plan.job_ids if j in report.broken]
        return [(n, ids) for n, ids in stages if ids], plan.stop_on_failure, broken
    order = sorted(set(stage_of.values()), key=lambda st: (stage_order(st), st))
    stages = [(st, [j for j in selected if stage_of[j] == st]) for st in order]
    return [(n, ids) for n, ids in stages if ids], False, []


def _summary(run: JobRun | None, sched: Scheduled, stage: str) -> JobSummary:
    if run is None:
        return JobSummary(job_id=sched.job_id, stage=stage, status="skipped", reason=sched.reason)
    res = run.result
    return JobSummary(
        job_id=res.job_id,
        stage=stage,
        status=res.status,
        run_id=res.run_id,
        rows_read=res.rows_read,
        rows_written=res.rows_written,
        duration_s=res.duration_s,
        error=res.error,
        reason=run.reason,
        started_at=res.started_at,
        job_def_sha256=res.job_def_sha256,
        steps=res.steps,
        plans=res.plans,
        submitted=res.submitted,
        plan_ids=res.plan_ids[:50],
    )


def _record(summary: JobSummary) -> dict[str, Any]:
    """The per-job run record Dagster keeps: counts, timings, ids; never rows."""
    return summary.model_dump(mode="json", exclude={"run_id"})


def _metadata(summary: JobSummary, result: ExecutionResult | None, run: JobRun | None) -> dict:
    meta: dict[str, Any] = {
        "lorchestra/status": summary.status,
        "rows_read": summary.rows_read,
        "rows_written": summary.rows_written,
        "duration_s": round(summary.duration_s, 3),
        RECORD_KEY: dg.MetadataValue.json(_record(summary)),
    }
    if summary.reason:
        meta["lorchestra/reason"] = summary.reason
    if run is not None:
        meta[SIGNATURE_KEY] = run.signature
    for key in ("inserted", "updated", "unchanged", "deleted"):
        meta[f"rows_{key}"] = summary.submitted.get(key, 0)
    if summary.submitted:
        meta["dagster/row_count"] = summary.submitted.get("rows", 0)
    if summary.plan_ids:
        ids = summary.plan_ids
        meta["plan_id"] = ids[0] if len(ids) == 1 else ",".join(p[:12] for p in ids[:20])
        meta["plans"] = len(result.plan_ids) if result is not None else len(ids)
    meta["dry_run"] = bool(result.dry_run) if result is not None else False
    if result is not None:
        if summary.error:
            err = summary.error
            meta["error"] = dg.MetadataValue.json(
                {k: err.get(k) for k in ("type", "code", "classification", "step_id", "message")}
            )
    return meta


def launched_by(run: dg.DagsterRun) -> str:
    """Which face started a run: our tag, else Dagster's own schedule/sensor/backfill tags."""
    tags = run.tags
    if tags.get(LAUNCHED_BY_TAG):
        return tags[LAUNCHED_BY_TAG]
    if tags.get("dagster/schedule_name"):
        return "schedule"
    if tags.get("dagster/sensor_name"):
        return "sensor"
    if tags.get("dagster/backfill"):
        return "backfill"
    return "ui" if run.remote_job_origin is not None else "dagster"


def run_catalog(
    context: Any,
    report: CatalogReport,
    jobs: dict[str, CatalogJob],
    selected: list[str],
    *,
    on_event: Callable[[JobRun | None, Scheduled, JobSummary], Iterator[Any]],
    with_checks: bool = False,
) -> Iterator[Any]:
    """Run ``selected`` jobs; yield what ``on_event`` makes of each; fail the op on any failure."""
    services = context.resources.storacle.services()
    if report.root.resolve() == services.catalog_dir.resolve():
        services.use_catalog(report.catalog)
    services.client.prepare()  # the warehouse's libraries load now, not in the first job
    options = context.resources.envelope
    run = context.run
    if not run.tags.get(LAUNCHED_BY_TAG):
        context.instance.add_run_tags(run.run_id, {LAUNCHED_BY_TAG: launched_by(run)})
    stage_of = {jid: jobs[jid].stage for jid in selected}
    pipeline_id = run.tags.get(PIPELINE_TAG)
    stages, stop, broken = plan_stages(report, selected, pipeline_id, stage_of)
    pplan = (
        flatten(report.catalog, pipeline_id)
        if pipeline_id and pipeline_id in report.catalog.pipelines
        else None
    )
    loops = pplan.loops if pplan is not None else {}
    captures = pplan.captures if pplan is not None else set()
    base_payload = {**(pplan.payload if pplan is not None else {}), **options.payload}
    # Outputs of the jobs a loop iterates: client data, in memory for this run only.
    outputs: dict[str, Any] = {}
    before = previous(context.instance, {j: jobs[j].key for j in selected})
    prints = Fingerprints(jobs, report.registry_sha256)
    runs: dict[str, JobRun] = {}

    def run_loop(jid: str) -> JobRun:
        loop = loops[jid]
        try:
            items = loop_items(loop.over, outputs)
            results = []
            for n, item in enumerate(items):
                envelope = options.for_job(jid, context.run_id)
                envelope["payload"] = iteration_payload(loop.payload, item, base_payload, n)
                res = execute_with(envelope, services)
                results.append(res)
                if res.status == "failed" and loop.stop_on_failure:
                    break
            merged = merge_iterations(jid, context.run_id, results)
        except LorchestraError as exc:
            merged = ExecutionResult(
                run_id=context.run_id, job_id=jid, status="failed", error=exc.to_dict()
            )
        reason = f"loop over {loop.over}: {merged.iterations or 0} item(s)"
        return JobRun(jobs[jid], merged, None, reason=reason)

    def run_one(jid: str) -> JobRun:
        try:
            return run_job(jid)
        finally:
            release_memory()  # the job's freed heap, before the next job allocates its own

    def run_job(jid: str) -> JobRun:
        _notify_start(jid)
        if jid in loops:
            return run_loop(jid)
        envelope = options.for_job(jid, context.run_id)
        envelope["payload"] = {**base_payload, **envelope["payload"]}
        env_sha = envelope_sha(envelope)
        job = jobs[jid]
        prev = before.get(jid)
        skippable = job.skippable and jid not in captures
        reads = prints.reads(services.client, job) if skippable else None
        if skippable and not options.force and not options.dry_run and prev is not None:
            now = prints.signature(services.client, job, env_sha, reads)
            if prev.signature == now:
                res = ExecutionResult(run_id=context.run_id, job_id=jid, status="skipped")
                reason = f"inputs unchanged since run {(prev.run_id or '')[:8]}"
                return JobRun(job, res, now, reason=reason)
        res = execute_with(envelope, services)
        if jid in captures and res.status == "succeeded":
            outputs[jid] = res.output
        sig: str | None = None
        checks = None
        if res.status == "succeeded" and not res.dry_run:
            # Its reads as it saw them, its own slices as it left them.
            sig = prints.signature(services.client, job, env_sha, reads)
            if with_checks and (res.rows_written or prev is None):
                # The first materialization checks the whole slice; later ones what they wrote.
                since = res.started_at if prev is not None else None
                checks = run_checks(
                    job.key, job.io, job.stage, services, since=since, written=res.rows_written
                )
        return JobRun(job, res, sig, checks=checks)

    deps = {jid: list(jobs[jid].upstream) for jid in selected}
    # Jobs of one source (connector) share its limit from sources.yaml, whatever max_workers.
    groups, limits = source_concurrency(
        services.catalog_dir,
        {jid: streams_of(report.catalog.jobs[jid].jobdef) for jid in selected},
    )
    failures: list[str] = []

    def before_stage(stage: str) -> None:
        # Formation's flags become alerts before the views read them, on every face (UI,
        # schedule, CLI): the vault of this run shows them, and the next quiet day finds
        # the alert tables as this run's views saw them (nothing to redo).
        if stage != "views" or options.dry_run:
            return
        from lorchestra_dagster.alerts import sync_alerts

        try:
            report = sync_alerts(services.client)
        except LorchestraError as exc:
            failures.append(f"alert sync: {safe_message(exc)}")
            context.log.error(f"alert sync before the views failed: {safe_message(exc)}")
            return
        for error in report.notify_errors:  # retried by every later sync until it goes out
            failures.append(f"alert notification failed: {error}")
        context.log.info(f"alert sync before the views: {report.summary()}")

    for sched in run_stages(
        stages,
        deps,
        run_one,
        lambda r: not isinstance(r, JobRun) or r.result.status == "failed",
        max_workers=options.max_workers,
        stop_on_failure=stop,
        before_stage=before_stage,
        groups=groups,
        group_limits=limits,
    ):
        jr = sched.result if isinstance(sched.result, JobRun) else None
        if sched.outcome == "ran" and jr is None:  # run_one itself raised: a bug, not data
            exc = sched.result
            res = ExecutionResult(
                run_id=context.run_id,
                job_id=sched.job_id,
                status="failed",
                error=error_dict(exc if isinstance(exc, BaseException) else RuntimeError(str(exc))),
            )
            job = jobs[sched.job_id]
            jr = JobRun(job, res, "", None)
        summary = _summary(jr, sched, sched.stage)
        if jr is not None:
            runs[sched.job_id] = jr
        if summary.status == "failed":
            failures.append(_failure_line(summary))
        _notify(summary)
        yield from on_event(jr, sched, summary)
    for jid in broken:
        msg = report.broken[jid].message()
        failures.append(f"{jid}: not run, its YAML is invalid: {msg}")
        summary = JobSummary(
            job_id=jid,
            stage=report.broken[jid].stage,
            status="failed",
            reason="invalid YAML",
            error={"type": "SpecError", "message": msg, "classification": "permanent"},
        )
        _notify(summary)
        # Recorded on the broken job's own asset, so the run history names it.
        yield dg.AssetObservation(
            asset_key=broken_key(report, jid), metadata=_metadata(summary, None, None)
        )
    if failures:
        shown = "\n".join(f"- {f}" for f in failures[:20])
        more = f"\n... and {len(failures) - 20} more" if len(failures) > 20 else ""
        raise dg.Failure(
            description=f"{len(failures)} job(s) failed:\n{shown}{more}",
            metadata={"failed_jobs": len(failures)},
            allow_retries=False,
        )


def _failure_line(summary: JobSummary) -> str:
    err = summary.error or {}
    where = f" step {err['step_id']}" if err.get("step_id") else ""
    code = f" [{err['code']}]" if err.get("code") else ""
    return f"{summary.job_id}{where}{code}: {err.get('message', 'failed')}"


def build_catalog_asset(report: CatalogReport, backend: str) -> dg.AssetsDefinition | None:
    """The one multi-asset of the catalog's stage jobs (None for a catalog without any)."""
    jobs = catalog_jobs(report)
    if not jobs:
        return None
    by_key = {j.key: jid for jid, j in jobs.items()}
    specs = [_spec(report, j, jobs, backend) for j in jobs.values()]
    checks = [spec for j in jobs.values() for spec in check_specs(j.key, j.io, j.stage)]

    @dg.multi_asset(
        name=CATALOG_OP,
        specs=specs,
        check_specs=checks,
        can_subset=True,
        required_resource_keys={"storacle", "envelope"},
        description="Every job of the catalog; the selection decides which run.",
    )
    def lorchestra_catalog(context):  # annotated by Dagster (no string annotations here)
        selected = [by_key[k] for k in context.selected_asset_keys if k in by_key]
        dry_run = bool(context.resources.envelope.dry_run)

        def on_event(jr: JobRun | None, sched: Scheduled, summary: JobSummary) -> Iterator[Any]:
            key = jobs[sched.job_id].key
            result = jr.result if jr is not None else None
            meta = _metadata(summary, result, jr)
            tables = sorted({w.table_name for w in jobs[sched.job_id].io.writes})
            if len(tables) == 1:
                meta["dagster/table_name"] = tables[0]
            if summary.status == "succeeded" and not dry_run and jr is not None:
                yield dg.MaterializeResult(
                    asset_key=key,
                    metadata=meta,
                    data_version=dg.DataVersion(jr.signature[:16]) if jr.signature else None,
                )
                selected_checks = context.selected_asset_check_keys
                for result in jr.checks or []:
                    if dg.AssetCheckKey(key, result.check_name) in selected_checks:
                        yield result
            else:
                yield dg.AssetObservation(asset_key=key, metadata=meta)

        yield from run_catalog(context, report, jobs, selected, on_event=on_event, with_checks=True)

    return lorchestra_catalog


def _broken_body(job_id: str, lines: str, count: int) -> Callable[..., None]:
    def body(context) -> None:  # Dagster passes the context
        raise dg.Failure(
            description=f"job {job_id} is not loaded: its YAML is invalid\n{lines}",
            metadata={"issues": count},
            allow_retries=False,
        )

    return body


def build_broken_assets(report: CatalogReport) -> list[dg.AssetsDefinition]:
    """One asset per invalid stage job: it shows the error and fails when materialized."""
    out: list[dg.AssetsDefinition] = []
    for jid, broken in sorted(report.broken.items()):
        lines = "\n".join(i.render() for i in broken.issues[:20])

        body = _broken_body(jid, lines, len(broken.issues))
        out.append(
            dg.asset(
                key=broken_key(report, jid),
                group_name=broken.stage,
                description=f"INVALID job `{jid}`: fix its YAML.\n\n```\n{lines}\n```",
                metadata={
                    "lorchestra/job_id": jid,
                    "lorchestra/broken": broken.message(),
                    "dagster/code_references": _code_ref(
                        broken.path.absolute(), broken.issues[0].line, f"{jid}.yaml"
                    ),
                },
                tags={"lorchestra/broken": "true"},
            )(body)
        )
    return out

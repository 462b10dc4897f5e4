"""Sensors: new drop-folder files, failed runs, clinical safety alerts.

Each sensor keeps a cursor and bounds its tick (``TICK_BUDGET_S`` of work, a
row limit per query) so a large backlog is worked through over several ticks
instead of one tick that times out. Only counts, keys and hashes are logged.
"""

import glob
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import dagster as dg

from lorchestra_dagster.alerts.events import record_event
from lorchestra_dagster.defs.resources import StoracleResource

TICK_BUDGET_S = 20.0


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- drop folder


def jsonl_streams(catalog_dir: Path) -> dict[str, str]:
    """``{stream: absolute glob}`` of the jsonl streams in ``sources.yaml`` (none if absent)."""
    from lorchestra_dagster.sources.catalog import SOURCES_FILE, load_stream, stream_ids

    if not (catalog_dir / SOURCES_FILE).is_file():
        return {}
    out: dict[str, str] = {}
    for sid in sorted(stream_ids(catalog_dir)):
        settings = load_stream(catalog_dir, sid)
        if getattr(settings, "connector", None) == "jsonl":
            path = str(settings.path)  # type: ignore[attr-defined]
            out[sid] = path if os.path.isabs(path) else str(catalog_dir / path)
    return out


def _mentions(value: Any, stream: str) -> bool:
    if isinstance(value, dict):
        return value.get("stream") == stream or any(_mentions(v, stream) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, stream) for v in value)
    return False


def ingest_job_for(catalog: Any, stream: str) -> str | None:
    """The ingest job of ``stream``: ``ingest_<stream>``, else one whose params name it."""
    jobs = {j.job_id: j for j in catalog.jobs_in_stage("ingest")}
    if f"ingest_{stream}" in jobs:
        return f"ingest_{stream}"
    for jid, loaded in sorted(jobs.items()):
        if any(_mentions(s.params_dict(), stream) for s in loaded.jobdef.steps):
            return jid
    return None


def scan_drop_folders(
    streams: dict[str, str], cursor: dict[str, list[str]], budget_s: float = TICK_BUDGET_S
) -> tuple[dict[str, int], dict[str, list[str]]]:
    """New files per stream (by name, size and mtime) and the next cursor.

    The cursor holds hashes of file signatures, never names (a file name can
    name a client). A stream not reached within the budget keeps its cursor.
    """
    deadline = time.monotonic() + budget_s
    new: dict[str, int] = {}
    nxt = dict(cursor)
    for stream, pattern in sorted(streams.items()):
        if time.monotonic() > deadline:
            break
        sigs = []
        for name in sorted(glob.glob(pattern, recursive=True)):
            try:
                st = os.stat(name)
            except FileNotFoundError:
                continue
            sigs.append(_sha(f"{name}|{st.st_size}|{st.st_mtime_ns}")[:16])
        fresh = set(sigs) - set(cursor.get(stream, []))
        if fresh:
            new[stream] = len(fresh)
        nxt[stream] = sorted(sigs)
    return new, nxt


def build_drop_folder_sensor(
    catalog: Any, keys: dict[str, dg.AssetKey], job: Any | None
) -> dg.SensorDefinition:
    stream_jobs: dict[str, str] = {}

    @dg.sensor(
        name="drop_folder_sensor",
        minimum_interval_seconds=30,
        job=job,
        description="Starts the ingest job of a jsonl stream when new *.jsonl files appear",
    )
    def drop_folder_sensor(context: dg.SensorEvaluationContext, storacle: StoracleResource):
        services = storacle.services()
        streams = jsonl_streams(services.catalog_dir)
        if not streams:
            return dg.SkipReason("no jsonl stream in sources.yaml")
        cursor = json.loads(context.cursor) if context.cursor else {}
        new, nxt = scan_drop_folders(streams, cursor)
        requests = []
        for stream, count in sorted(new.items()):
            jid = stream_jobs.get(stream) or ingest_job_for(services.catalog, stream)
            if jid is None or jid not in keys:
                context.log.warning(f"stream {stream}: new files but no ingest asset")
                continue
            stream_jobs[stream] = jid
            context.log.info(f"stream {stream}: {count} new file(s) -> {jid}")
            requests.append(
                dg.RunRequest(
                    run_key=f"{stream}:{_sha(json.dumps(nxt[stream]))[:16]}",
                    asset_selection=[keys[jid]],
                    tags={"lorchestra/stream": stream, "lorchestra/trigger": "drop_folder"},
                )
            )
        context.update_cursor(json.dumps(nxt, sort_keys=True))
        if not requests:
            return dg.SkipReason("no new files")
        return requests

    return drop_folder_sensor


# ----------------------------------------------------------------------------- run failures


def build_run_failure_sensor() -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="record_run_failures",
        minimum_interval_seconds=30,
        description="Records every failed run of this code location in ops.events",
    )
    def record_run_failures(context: dg.RunFailureSensorContext, storacle: StoracleResource):
        from lorchestra_dagster.defs.history import result_of_run

        run = context.dagster_run
        result = result_of_run(context.instance, run.run_id)
        failed_jobs = sorted(f["job_id"] for f in result.failures if f.get("job_id"))
        error_types = sorted(
            {
                str((f.get("error") or {}).get("type") or (f.get("error") or {}).get("code") or "")
                for f in result.failures
            }
            - {""}
        )
        event_id = record_event(
            storacle.services().client,
            kind="dagster_run_failure",
            key=run.run_id,
            severity="error",
            run_id=run.run_id,
            job_id=run.job_name,
            details={
                "failed_jobs": failed_jobs,
                "error_types": error_types,
                "launched_by": result.launched_by,
            },
        )
        context.log.info(
            f"run {run.run_id} failed ({len(failed_jobs)} job(s)): recorded event {event_id}"
        )

    return record_run_failures


# ----------------------------------------------------------------------------- clinical safety


def build_safety_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name="clinical_safety_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Turns every new safety flag (PHQ-9 item 9 and the other rules of the "
            "instrument specs, quarantined submissions) into an alert, records it in "
            "ops.events and notifies new critical alerts (docs/clinical-safety.md)"
        ),
    )
    def clinical_safety_sensor(context: dg.SensorEvaluationContext, storacle: StoracleResource):
        from lorchestra_dagster.alerts import sync_alerts

        # The position lives in the warehouse (ops.cursors), shared with `lorchestra
        # pipeline run`, so whichever face syncs first, the other one does not redo it.
        report = sync_alerts(storacle.services().client, budget_s=TICK_BUDGET_S)
        summary = report.summary()
        context.update_cursor(json.dumps(summary, sort_keys=True))
        if report.opened:
            ids = ", ".join(a["alert_id"] for a in report.opened[:10])
            context.log.warning(
                f"CLINICAL SAFETY: {len(report.opened)} new alert(s) ({ids}); "
                f"{report.open_critical} critical open; `lorchestra alerts list`"
            )
        if report.notify_errors:
            # The alerts are stored; the tick fails so the UI shows that no one was told.
            raise RuntimeError(
                f"{len(report.notify_errors)} alert notification(s) failed: "
                + "; ".join(report.notify_errors[:5])
            )
        return dg.SkipReason(
            f"{len(report.opened)} new alert(s), {report.changed} changed, "
            f"{report.open_total} open ({report.open_critical} critical)"
        )

    return clinical_safety_sensor

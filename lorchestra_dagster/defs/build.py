"""Assemble the code location: catalog -> assets, checks, jobs, schedule, sensors, resources."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import dagster as dg

from lorchestra_dagster.defs.assets import STAGE_JOBS, build_assets
from lorchestra_dagster.defs.checks import build_checks
from lorchestra_dagster.defs.graphs import STORACLE_IO
from lorchestra_dagster.defs.io_managers import EncryptedIOManager, StoracleIOManager
from lorchestra_dagster.defs.jobs import build_gates, build_pipeline_job, flatten, gate_edges
from lorchestra_dagster.defs.resources import RunEnvelope, StoracleResource
from lorchestra_dagster.defs.schedules import build_daily_schedule
from lorchestra_dagster.defs.sensors import (
    build_cleanup_sensor,
    build_drop_folder_sensor,
    build_run_failure_sensor,
    build_safety_sensor,
)
from lorchestra_dagster.errors import SpecError
from lorchestra_dagster.settings import Settings

#: Ingest assets older than this are overdue (the schedule runs daily).
INGEST_FRESHNESS_H = float(os.environ.get("LORCHESTRA_INGEST_FRESHNESS_H", 26))


def _env_or(name: str, default: Any = None) -> Any:
    """``EnvVar(name)`` when set, so the UI shows where a value comes from; else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def resources(settings: Settings) -> dict[str, Any]:
    storacle = StoracleResource(
        home=_env_or("LORCHESTRA_HOME", str(settings.home)),
        jobs_dir=_env_or("LORCHESTRA_JOBS_DIR", str(settings.jobs_dir)),
        backend=_env_or("LORCHESTRA_BACKEND", settings.backend),
        storacle_url=_env_or("STORACLE_URL"),
    )
    envelope = RunEnvelope()
    return {
        "storacle": storacle,
        "envelope": envelope,
        "io_manager": EncryptedIOManager(
            key=_env_or("LORCHESTRA_INTERMEDIATE_KEY"),
            home=_env_or("LORCHESTRA_HOME", str(settings.home)),
        ),
        STORACLE_IO: StoracleIOManager(storacle=storacle),
    }


def load_catalog_strict(settings: Settings) -> Any:
    """The catalog, or a SpecError listing its problems (a broken catalog is no location)."""
    from lorchestra_dagster.spec.catalog import load_catalog

    catalog = load_catalog(settings.jobs_dir)
    errors = [i for i in catalog.issues if getattr(i, "severity", "error") == "error"]
    if errors:
        shown = "\n  ".join(str(i) for i in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise SpecError(
            f"catalog {settings.jobs_dir} has {len(errors)} problem(s):\n  {shown}{more}",
            issues=errors,
        )
    return catalog


def build_defs(settings: Settings | None = None) -> dg.Definitions:
    """Everything Dagster needs, from the catalog at ``settings.jobs_dir``."""
    settings = settings or Settings.from_env()
    catalog = load_catalog_strict(settings)
    plans = {pid: flatten(catalog, pid) for pid in sorted(catalog.pipelines)}

    # Stage gates of stop_on_failure pipelines become upstream inputs of later-stage assets.
    stage_jobs = {j.job_id for j in catalog.jobs.values() if j.stage in STAGE_JOBS}
    extra: dict[str, list[dg.AssetKey]] = {}
    for plan in plans.values():
        if plan.stop_on_failure and len(plan.stages) > 1:
            for jid, gkeys in gate_edges(plan, dict.fromkeys(stage_jobs)).items():
                extra.setdefault(jid, []).extend(gkeys)
    built = build_assets(catalog, backend=settings.backend, extra_upstream=extra)
    gates: list[dg.AssetsDefinition] = []
    for plan in plans.values():
        if plan.stop_on_failure and len(plan.stages) > 1:
            gates.extend(build_gates(plan, built.keys))

    checks = []
    for jid, key in built.keys.items():
        check = build_checks(key, built.lineage.jobs[jid], built.stages[jid])
        if check is not None:
            checks.append(check)

    ingest = [a for a in built.assets if built.stages.get(_job_of(a)) == "ingest"]
    others = [a for a in built.assets if a not in ingest]
    policy = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=INGEST_FRESHNESS_H))
    ingest = [
        a.map_asset_specs(lambda s: s.replace_attributes(freshness_policy=policy)) for a in ingest
    ]

    jobs = {p.name: build_pipeline_job(p, built.keys, with_gates=True) for p in plans.values()}
    schedules = [build_daily_schedule(jobs["daily_all"])] if "daily_all" in jobs else []
    sensors = [
        build_drop_folder_sensor(catalog, built.keys, jobs.get("ingest")),
        build_run_failure_sensor(),
        build_safety_sensor(),
        build_cleanup_sensor(),
    ]
    return dg.Definitions(
        assets=[*ingest, *others, *gates],
        asset_checks=checks,
        jobs=list(jobs.values()),
        schedules=schedules,
        sensors=sensors,
        resources=resources(settings),
    )


def _job_of(asset: dg.AssetsDefinition) -> str:
    return asset.key.path[-1]

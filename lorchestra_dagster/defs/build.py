"""Assemble the code location: catalog -> assets, checks, jobs, schedule, sensors, resources.

The catalog is loaded by the same service ``lorchestra validate`` uses
(``catalog_service.load_report``). A broken job never takes the location
down: it is left out of the catalog op and shown as an asset of its own whose
materialization fails with its ``path:line:col`` errors; every other asset,
the schedule and the sensors still load.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import dagster as dg

from lorchestra_dagster.catalog_service import CatalogReport, load_report
from lorchestra_dagster.defs.catalog_assets import (
    asset_keys,
    build_broken_assets,
    build_catalog_asset,
)
from lorchestra_dagster.defs.pipelines import build_pipeline_job, flatten
from lorchestra_dagster.defs.resources import RunEnvelope, StoracleResource
from lorchestra_dagster.defs.schedules import build_daily_schedule
from lorchestra_dagster.defs.sensors import (
    build_drop_folder_sensor,
    build_run_failure_sensor,
    build_safety_sensor,
)
from lorchestra_dagster.errors import SpecError
from lorchestra_dagster.settings import Settings


def _env_or(name: str, value: Any = None) -> Any:
    """``EnvVar(name)`` when the environment holds ``value``, so the UI shows where it comes
    from; the value itself when the caller's settings differ from the environment."""
    env = os.environ.get(name)
    if env and (value is None or env == str(value)):
        return dg.EnvVar(name)
    return value


def resources(settings: Settings) -> dict[str, Any]:
    storacle = StoracleResource(
        home=_env_or("LORCHESTRA_HOME", str(settings.home)),
        jobs_dir=_env_or("LORCHESTRA_JOBS_DIR", str(settings.jobs_dir)),
        backend=_env_or("LORCHESTRA_BACKEND", settings.backend),
        storacle_url=_env_or("STORACLE_URL", settings.storacle_url),
    )
    return {"storacle": storacle, "envelope": RunEnvelope()}


def build_defs(
    settings: Settings | None = None, report: CatalogReport | None = None
) -> dg.Definitions:
    """Everything Dagster needs, from the catalog at ``settings.jobs_dir``."""
    settings = settings or Settings.from_env()
    report = report or load_report(settings.jobs_dir)
    catalog = report.catalog
    keys = asset_keys(report)
    assets: list[Any] = []
    catalog_asset = build_catalog_asset(report, settings.backend)
    if catalog_asset is not None:
        # Ingest assets older than this are overdue (the schedule runs daily).
        window = timedelta(hours=settings.ingest_freshness_h)
        policy = dg.FreshnessPolicy.time_window(fail_window=window)
        ingest = {k for jid, k in keys.items() if catalog.jobs[jid].stage == "ingest"}
        catalog_asset = catalog_asset.map_asset_specs(
            lambda s: s.replace_attributes(freshness_policy=policy) if s.key in ingest else s
        )
        assets.append(catalog_asset)
    assets.extend(build_broken_assets(report))

    jobs: dict[str, Any] = {}
    for pid in sorted(catalog.pipelines):
        try:
            plan = flatten(catalog, pid)
        except SpecError:  # a pipeline cycle: validate reports it; the others still load
            continue
        jobs[plan.name] = build_pipeline_job(plan, keys)
    schedules = [build_daily_schedule(jobs["daily_all"], settings)] if "daily_all" in jobs else []
    sensors = [
        build_drop_folder_sensor(catalog, keys, jobs.get("ingest")),
        build_run_failure_sensor(),
        build_safety_sensor(),
    ]
    return dg.Definitions(
        assets=assets,
        jobs=list(jobs.values()),
        schedules=schedules,
        sensors=sensors,
        resources=resources(settings),
    )

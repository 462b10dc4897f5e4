"""Dagster resources: the storacle data plane and the run's envelope.

Ops, IO managers, checks and sensors all reach storage through
``StoracleResource.services()``: the engine's ``Services`` (settings, the
storacle client, the catalog), built once per process. Which backend, which
home and whether to go over HTTP come from the environment (``EnvVar`` in
``definitions.py``), so the same code location runs on a laptop and in a
cluster.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import dagster as dg
from pydantic import Field

from lorchestra_dagster.engine.services import Services
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.spec.models import DEFAULT_BATCH_SIZE

_CACHE: dict[tuple[str, ...], Services] = {}
_CACHE_LOCK = threading.Lock()


class StoracleResource(dg.ConfigurableResource):
    """Where the data lives and how to reach it; ``None`` falls back to the environment."""

    home: str | None = Field(default=None, description="LORCHESTRA_HOME (warehouse, vault)")
    jobs_dir: str | None = Field(default=None, description="LORCHESTRA_JOBS_DIR (the catalog)")
    backend: str | None = Field(default=None, description="LORCHESTRA_BACKEND: duckdb|bigquery")
    storacle_url: str | None = Field(
        default=None, description="STORACLE_URL: talk to a storacle server over HTTP"
    )

    def settings(self) -> Settings:
        env = dict(os.environ)
        for key, value in (
            ("LORCHESTRA_BACKEND", self.backend),
            ("STORACLE_URL", self.storacle_url),
        ):
            if value:
                env[key] = value
        return Settings.from_env(env, jobs_dir=self.jobs_dir, home=self.home)

    def services(self) -> Services:
        """The process-wide ``Services`` for these settings (one client, one catalog)."""
        settings = self.settings()
        key = (
            str(settings.home),
            str(settings.jobs_dir),
            settings.backend,
            settings.storacle_url or "",
        )
        with _CACHE_LOCK:
            services = _CACHE.get(key)
            if services is None:
                services = Services.from_settings(settings)
                _CACHE[key] = services
            return services


class RunEnvelope(dg.ConfigurableResource):
    """The envelope every job of a run is compiled against (``@ctx`` / ``@payload``), and how.

    Set it in the launchpad (``resources: envelope: config: ...``) to run a
    backfill window, a dry run, a row limit or a forced rerun; the CLI sets it
    from its flags, sensors for the runs they request.
    """

    ctx: dict[str, Any] = Field(default_factory=dict, description="@ctx.* values")
    payload: dict[str, Any] = Field(default_factory=dict, description="@payload.* values")
    dry_run: bool = Field(default=False, description="Build and count plans, write nothing")
    limit: int | None = Field(default=None, description="Cap on rows read per query")
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, description="Rows per plan")
    force: bool = Field(
        default=False, description="Run jobs whose inputs did not change since they last ran"
    )
    max_workers: int = Field(default=2, ge=1, description="Jobs of a stage running at once")

    def for_job(self, job_id: str, run_id: str) -> dict[str, Any]:
        """The envelope dict for one job of this run (the Dagster run id is the run id)."""
        env: dict[str, Any] = {
            "job_id": job_id,
            "ctx": dict(self.ctx),
            "payload": dict(self.payload),
            "dry_run": self.dry_run,
            "batch_size": self.batch_size,
            "run_id": run_id,
        }
        if self.limit is not None:
            env["limit"] = self.limit
        return env

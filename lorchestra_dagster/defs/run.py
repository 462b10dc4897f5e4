"""Run pipeline jobs through Dagster from Python (``make demo``), instance in LORCHESTRA_HOME.

The run goes into the same instance the UI reads (``$LORCHESTRA_HOME/dagster``),
so after ``run_daily_all()`` the run, its materializations and checks show up
in ``make ui``. Equivalent CLI::

    DAGSTER_HOME=$LORCHESTRA_HOME/dagster \\
        dagster job execute -m lorchestra_dagster.definitions -j daily_all
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import dagster as dg

from lorchestra_dagster.defs.io_managers import remove_run_intermediates
from lorchestra_dagster.settings import Settings

REPO_DAGSTER_YAML = Path(__file__).resolve().parents[2] / "dagster.yaml"
_FALLBACK_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


def ensure_instance(settings: Settings | None = None) -> Path:
    """Create ``$LORCHESTRA_HOME/dagster`` with the repo's dagster.yaml; export DAGSTER_HOME."""
    settings = settings or Settings.from_env()
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        if REPO_DAGSTER_YAML.is_file():
            shutil.copy(REPO_DAGSTER_YAML, target)
        else:
            target.write_text(_FALLBACK_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("LORCHESTRA_DUCKDB_SHORT_LOCK", "1")
    return home


def pipeline_job(name: str = "daily_all") -> Any:
    """The pipeline job ``name`` of the code location (reconstructable entry point)."""
    from lorchestra_dagster.definitions import defs

    return defs.resolve_job_def(name)


def daily_all_job() -> Any:
    return pipeline_job("daily_all")


def run_daily_all(*, in_process: bool = False, settings: Settings | None = None) -> bool:
    """Run ``daily_all`` in the LORCHESTRA_HOME instance; True when the run succeeded.

    ``in_process`` runs every step in this process (fastest for a small demo);
    the default is the job's own executor (multiprocess, parallel assets).
    """
    home = ensure_instance(settings)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        if in_process:
            from lorchestra_dagster.defs.build import build_defs

            job = build_defs(settings).resolve_job_def("daily_all")
            result: Any = job.execute_in_process(
                instance=instance,
                raise_on_error=False,
                run_config={"execution": {"config": {"in_process": {}}}},
            )
        else:
            result = dg.execute_job(dg.reconstructable(daily_all_job), instance=instance)
        if result.success:
            remove_run_intermediates(instance.storage_directory(), result.run_id)
        return result.success

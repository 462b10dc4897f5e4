"""The one place names are derived, so asset keys, op names and tables cannot drift."""

from __future__ import annotations

import re

STAGES = ("ingest", "canonize", "formation", "views", "project")
_SAFE = re.compile(r"[^a-z0-9_]")


def asset_key(stage: str, job_id: str) -> list[str]:
    """Asset key path of a stage job: ``[stage, job_id]``."""
    return [stage, job_id]


def op_name(job_id: str, step_id: str) -> str:
    """Dagster op name of one step (Dagster names allow ``[A-Za-z0-9_]``)."""
    return _SAFE.sub("_", f"{job_id}__{step_id}".lower())


def graph_name(job_id: str) -> str:
    return _SAFE.sub("_", job_id.lower())


def pipeline_job_name(pipeline_id: str) -> str:
    """``pipeline.daily_all`` -> ``daily_all``."""
    return _SAFE.sub("_", pipeline_id.removeprefix("pipeline.").lower())


def table_name(dataset: str, table: str) -> str:
    return f"{dataset}.{table}"

"""The one place names are derived, so asset keys, op names and tables cannot drift."""

from __future__ import annotations

import re

STAGES = ("ingest", "canonize", "formation", "views", "project")
_SAFE = re.compile(r"[^a-z0-9_]")


#: Job-id prefixes that repeat the stage; the asset name drops them so it fits a node card
#: of the lineage graph (``canonize/gmail_email`` instead of ``canonize/canonize_gmail_email``).
STAGE_PREFIXES = {
    "ingest": "ingest_",
    "canonize": "canonize_",
    "formation": "formation_",
    "views": "view_",
}


def asset_name(stage: str, job_id: str) -> str:
    """The last part of a stage job's asset key: the job id without its stage prefix."""
    short = job_id.removeprefix(STAGE_PREFIXES.get(stage, "\0"))
    return short or job_id


def asset_key(stage: str, job_id: str, *, short: bool = True) -> list[str]:
    """Asset key path of a stage job: ``[stage, asset_name]`` (``short=False``: the job id)."""
    return [stage, asset_name(stage, job_id) if short else job_id]


def pipeline_job_name(pipeline_id: str) -> str:
    """``pipeline.daily_all`` -> ``daily_all``."""
    return _SAFE.sub("_", pipeline_id.removeprefix("pipeline.").lower())


def table_name(dataset: str, table: str) -> str:
    return f"{dataset}.{table}"


def transform_id(ref: str) -> str:
    """One spelling of a transform ref: ``contact/x@2-0-0`` and ``contact/x@2.0.0`` are one.

    The original canonizer wrote version folders and refs both ways; ids are
    compared in this form everywhere (registry keys, ``lorchestra validate``).
    """
    name, sep, version = ref.rpartition("@")
    if not sep:
        return ref
    return f"{name}@{version.replace('-', '.')}"

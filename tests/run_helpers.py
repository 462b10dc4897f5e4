"""Run jobs and pipelines the way every face does: as Dagster runs (``launch``).

Tests that used to call a runner of their own go through here, so what they
check is the one engine. ``services.env`` (the sandbox URLs and fake
credentials) is put in the process environment for the run, as the CLI has it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if isinstance(v, str)})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_pipeline(pipeline_id: str, services: Any, **options: Any) -> Any:
    from lorchestra_dagster.launch import launch

    with environ(services.env):
        return launch(pipeline_id, kind="pipeline", settings=services.settings, **options)


def run_job(job_id: str, services: Any, **options: Any) -> Any:
    """One job as a Dagster run; returns its ``JobSummary`` (``.run`` is the whole run)."""
    from lorchestra_dagster.launch import launch

    with environ(services.env):
        result = launch(job_id, kind="job", settings=services.settings, **options)
    [job] = result.jobs
    return job


def vault_digest(path: Path) -> str:
    """sha256 of a vault file without its ``projected_at:`` line (the run's own clock)."""
    data = path.read_bytes()
    if path.suffix == ".md":
        lines = data.split(b"\n")
        data = b"\n".join(x for x in lines if not x.startswith(b"projected_at:"))
    return hashlib.sha256(data).hexdigest()

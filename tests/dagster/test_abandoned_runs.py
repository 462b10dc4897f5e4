"""A run whose process got ``kill -9`` is marked failed (abandoned) on the next start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from lorchestra_dagster import launch
from lorchestra_dagster.defs.abandoned import (
    ABANDONED_AT_TAG,
    ABANDONED_REASON_TAG,
    OWNER_TAG,
    owner_tag,
)
from lorchestra_dagster.settings import Settings

pytestmark = pytest.mark.e2e

_KILLED_RUN = """
import os
import dagster as dg
from lorchestra_dagster import launch
from lorchestra_dagster.settings import Settings

@dg.op
def die():
    os.kill(os.getpid(), 9)  # kill -9 in the middle of the run

@dg.job
def doomed():
    die()

with launch.open_instance(Settings.from_env()) as instance:
    launch._execute(doomed, instance, {}, {}, None)
"""


@dg.op
def _noop() -> None:
    return None


@dg.job
def _alive_job() -> None:
    _noop()


def test_killed_run_is_marked_abandoned_and_live_runs_are_not(_isolated_home: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", _KILLED_RUN], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    settings = Settings.from_env()
    with launch.open_instance(settings) as instance:
        live = instance.create_run_for_job(
            job_def=_alive_job, tags=owner_tag(), status=dg.DagsterRunStatus.STARTED
        )
        reused = instance.create_run_for_job(
            job_def=_alive_job,
            tags={OWNER_TAG: owner_tag()[OWNER_TAG].rsplit(":", 1)[0] + ":1"},  # pid reused
            status=dg.DagsterRunStatus.STARTED,
        )
    with launch.open_instance(settings) as instance:  # "the next start"
        runs = {r.job_name: r for r in instance.get_runs() if r.run_id != reused.run_id}
        doomed = runs["doomed"]
        assert doomed.status == dg.DagsterRunStatus.FAILURE
        assert (
            doomed.tags[ABANDONED_AT_TAG]
            and "killed or crashed" in doomed.tags[ABANDONED_REASON_TAG]
        )
        failure = instance.get_records_for_run(
            doomed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records
        assert "abandoned" in failure[0].event_log_entry.dagster_event.message
        assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
        assert instance.get_run_by_id(reused.run_id).status == dg.DagsterRunStatus.FAILURE

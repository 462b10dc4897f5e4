"""A run whose process got ``kill -9`` is marked failed (abandoned) on the next start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from kit import raw_seed_job

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


JOB = raw_seed_job("load_many")
N = 10_000

_CLI_RUN = """
import sys
from lorchestra_dagster.launch import launch
items = [{"id": f"i{i}", "text": "x" * 200} for i in range(int(sys.argv[1]))]
launch("load_many", kind="job", payload={"items": items})
"""


@pytest.mark.slow
def test_kill_9_of_a_cli_run_during_its_submit_then_rerun(
    tmp_path: Path, _isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    run_job = launch.launch
    from lorchestra_dagster.storacle.client import make_client

    (tmp_path / "jobs" / "ingest").mkdir(parents=True)
    (tmp_path / "jobs" / "ingest" / "load_many.yaml").write_text(JOB)
    monkeypatch.setenv("LORCHESTRA_JOBS_DIR", str(tmp_path / "jobs"))
    proc = subprocess.Popen([sys.executable, "-c", _CLI_RUN, str(N)], stderr=subprocess.PIPE)
    settings = Settings.from_env()
    deadline = time.monotonic() + 90
    started = False
    while not started and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        with launch.open_instance(settings) as instance:
            started = any(r.status == dg.DagsterRunStatus.STARTED for r in instance.get_runs())
    assert started, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    time.sleep(0.3)  # into plan.build / the submit of 10,000 rows
    proc.kill()
    proc.wait(timeout=10)
    assert proc.returncode == -9, "the run finished before the kill"
    items = [{"id": f"i{i}", "text": "x" * 200} for i in range(N)]
    rerun = run_job("load_many", kind="job", payload={"items": items})
    assert rerun.status == "succeeded"
    rows = make_client(settings).sql(
        "SELECT count(*) AS n, count(DISTINCT idem_key) AS k FROM raw.raw_objects"
    )
    assert rows == [{"n": N, "k": N}]
    with launch.open_instance(settings) as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
        assert statuses == ["FAILURE", "SUCCESS"]
        killed = next(r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.FAILURE)
        assert ABANDONED_REASON_TAG in killed.tags

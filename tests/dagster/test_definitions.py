"""The code location built from the shipped catalog: assets, ops, jobs, schedule, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from dagster_helpers import JOBS, REPO, dagster_cli, subprocess_env

from lorchestra_dagster import naming
from lorchestra_dagster.defs.build import build_defs
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.spec import job_def_sha256
from lorchestra_dagster.spec.catalog import load_catalog

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def shipped_defs():
    settings = Settings.from_env(jobs_dir=JOBS, home=REPO / ".lorchestra-unused")
    return build_defs(settings), load_catalog(JOBS)


def test_every_stage_job_is_a_graph_backed_asset(shipped_defs) -> None:
    defs, cat = shipped_defs
    graph = defs.resolve_asset_graph()
    for loaded in cat.jobs.values():
        if loaded.stage not in naming.STAGES:
            continue
        key = dg.AssetKey(naming.asset_key(loaded.stage, loaded.job_id))
        node = graph.get(key)
        assert node.group_name == loaded.stage
        assert node.code_version == job_def_sha256(loaded.jobdef)
        meta = node.metadata
        assert str(loaded.path) in str(meta["lorchestra/yaml_path"].value)
        assert node.kinds
        ad = defs.resolve_assets_def(key)
        ops = set(ad.node_def.node_dict) if isinstance(ad.node_def, dg.GraphDefinition) else set()
        assert ops == {naming.op_name(loaded.job_id, s.step_id) for s in loaded.jobdef.steps}


def test_groups_pipeline_jobs_schedule_sensors(shipped_defs) -> None:
    defs, cat = shipped_defs
    groups = {n.group_name for n in defs.resolve_asset_graph().asset_nodes}
    assert set(naming.STAGES) <= groups
    for pid in cat.pipelines:
        assert defs.resolve_job_def(naming.pipeline_job_name(pid)) is not None
    schedule = defs.resolve_schedule_def("daily_all_schedule")
    assert schedule.cron_schedule == "0 6 * * *"
    for name in ("drop_folder_sensor", "record_run_failures", "clinical_safety_sensor"):
        assert defs.resolve_sensor_def(name) is not None


def test_ingest_assets_have_a_freshness_policy(shipped_defs) -> None:
    defs, _ = shipped_defs
    for node in defs.resolve_asset_graph().asset_nodes:
        if node.key.path[0] == "ingest":
            assert node.freshness_policy is not None, node.key


def test_schedule_runs_on_time_and_skips_stale_ticks(shipped_defs) -> None:
    defs, _ = shipped_defs
    schedule = defs.resolve_schedule_def("daily_all_schedule")
    on_time = datetime.now(tz=UTC) - timedelta(minutes=5)
    with dg.instance_for_test() as inst:
        ctx = dg.build_schedule_context(instance=inst, scheduled_execution_time=on_time)
        [req] = schedule.evaluate_tick(ctx).run_requests
        assert req.run_key == f"daily_all:{on_time.date().isoformat()}"
        late = datetime.now(tz=UTC) - timedelta(days=3)
        ctx = dg.build_schedule_context(instance=inst, scheduled_execution_time=late)
        data = schedule.evaluate_tick(ctx)
        assert not data.run_requests
        assert "late" in (data.skip_message or "")


@pytest.mark.e2e
def test_dagster_definitions_validate(tmp_path) -> None:
    env = subprocess_env({"DAGSTER_HOME": str(tmp_path), "LORCHESTRA_JOBS_DIR": str(JOBS)})
    proc = dagster_cli("definitions", "validate", "-m", "lorchestra_dagster.definitions", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]

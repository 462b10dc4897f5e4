"""The code location built from the shipped catalog: assets, ops, jobs, schedule, validation."""

from __future__ import annotations

import shutil
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


def test_every_job_is_an_asset_of_the_one_catalog_op(shipped_defs) -> None:
    defs, cat = shipped_defs
    graph = defs.resolve_asset_graph()
    for loaded in cat.jobs.values():
        key = dg.AssetKey(naming.asset_key(loaded.stage, loaded.job_id))
        node = graph.get(key)
        assert node.group_name == loaded.stage
        assert node.code_version == job_def_sha256(loaded.jobdef)
        meta = node.metadata
        assert meta["lorchestra/job_id"] == loaded.job_id
        assert str(loaded.path) in str(meta["lorchestra/yaml_path"].value)
        [ref] = meta["dagster/code_references"].code_references
        assert ref.file_path == str(loaded.path.absolute()) and ref.line_number >= 1
        assert node.kinds
        # One op runs the whole catalog (no op per step, no step outputs between ops).
        assert defs.resolve_assets_def(key).node_def.name == "lorchestra_catalog"


def test_lineage_graph_has_only_jobs_with_names_that_fit(shipped_defs) -> None:
    defs, cat = shipped_defs
    nodes = defs.resolve_asset_graph().asset_nodes
    assert {n.group_name for n in nodes} == set(naming.STAGES)  # no gate assets
    assert len(nodes) == len(cat.jobs)
    assert max(len(n.key.path[-1]) for n in nodes) <= 28, sorted(n.key.path[-1] for n in nodes)
    canon = dg.AssetKey(["canonize", "gmail_email"])
    assert {k.path[-1] for k in defs.resolve_asset_graph().get(canon).parent_keys} == {
        "gmail_acct1",
        "gmail_acct2",
    }


def test_groups_pipeline_jobs_schedule_sensors(shipped_defs) -> None:
    defs, cat = shipped_defs
    for pid in cat.pipelines:
        job = defs.resolve_job_def(naming.pipeline_job_name(pid))
        assert job.tags["lorchestra/pipeline"] == pid
    schedule = defs.resolve_schedule_def("daily_all_schedule")
    assert schedule.cron_schedule == "0 6 * * *"
    for name in ("drop_folder_sensor", "record_run_failures", "clinical_safety_sensor"):
        assert defs.resolve_sensor_def(name) is not None


def test_a_broken_yaml_leaves_the_rest_of_the_location_loaded(tmp_path, _isolated_home) -> None:
    jobs = tmp_path / "jobs"
    shutil.copytree(JOBS, jobs)
    bad = jobs / "ingest" / "ingest_stripe_refunds.yaml"
    bad.write_text(bad.read_text().replace("op: storacle.submit", "op: storacle.sumbit"))
    defs = build_defs(Settings.from_env(jobs_dir=jobs, home=_isolated_home))
    graph = defs.resolve_asset_graph()
    keys = {n.key for n in graph.asset_nodes}
    assert len(keys) == len(load_catalog(JOBS).jobs)  # every job still has an asset
    broken = dg.AssetKey(["ingest", "stripe_refunds"])
    node = graph.get(broken)
    assert node.tags.get("lorchestra/broken") == "true"
    assert "ingest_stripe_refunds.yaml:" in node.metadata["lorchestra/broken"]
    assert "storacle.sumbit" in node.description
    assert defs.resolve_assets_def(broken).node_def.name != "lorchestra_catalog"
    assert defs.resolve_schedule_def("daily_all_schedule") is not None
    for name in ("drop_folder_sensor", "record_run_failures", "clinical_safety_sensor"):
        assert defs.resolve_sensor_def(name) is not None
    with dg.instance_for_test() as inst:
        res = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=[broken], instance=inst, raise_on_error=False
        )
    assert not res.success
    [failure] = [e for e in res.all_events if e.is_step_failure]
    text = failure.event_specific_data.user_failure_data.description
    assert f"{bad}:" in text and "storacle.sumbit" in text


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

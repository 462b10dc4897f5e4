"""Pipeline jobs: daily_all under the multiprocess executor, stop_on_failure, retries."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster_helpers import NOTES, dagster_cli, make_catalog, subprocess_env, write_notes

from lorchestra_dagster.callables import register
from lorchestra_dagster.defs.build import build_defs
from lorchestra_dagster.errors import PermanentError, TransientError

pytestmark = pytest.mark.e2e

MARKER = "ZZMARKER-7f3a9c-client-secret-note"


def _scan(root: Path, needle: bytes) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            hits.append(path)
    return hits


@pytest.mark.slow
def test_daily_all_default_executor_keeps_no_clear_data(mini: dict) -> None:
    """`dagster job execute -j daily_all` (the job's default, multiprocess executor): the
    marker never lands in DAGSTER_HOME, and no intermediate file is left anywhere."""
    notes = [dict(NOTES[0], id="note-0099", body=f"Client said {MARKER} in session")]
    write_notes(mini["drop"], "notes_marker.jsonl", notes)
    proc = dagster_cli(
        "job", "execute", "-m", "lorchestra_dagster.definitions", "-j", "daily_all",
        env=subprocess_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stdout + proc.stderr
    assert "multiprocess" in proc.stdout + proc.stderr  # the default executor, not in-process
    home: Path = mini["dagster_home"]
    assert not [p for p in home.rglob("*") if p.is_file() and "storage" in p.parts]
    assert _scan(home, MARKER.encode()) == []
    assert _scan(home, b"Supervision reminder") == []
    with dg.DagsterInstance.from_config(str(home)) as inst:
        [run] = inst.get_runs()
        assert run.job_name == "daily_all" and run.status == dg.DagsterRunStatus.SUCCESS
    # The data itself did arrive (in the warehouse, which is where it belongs).
    from lorchestra_dagster.settings import Settings
    from lorchestra_dagster.storacle.client import make_client

    rows = make_client(Settings.from_env()).query(
        {"dataset": "canonical", "table": "canonical_objects", "columns": ["COUNT(*) AS n"]}
    )
    assert rows[0]["n"] == 3


def test_stop_on_failure_skips_later_stages(mini: dict) -> None:
    from lorchestra_dagster.launch import launch, open_instance

    (mini["drop"] / "broken.jsonl").write_text("{not json\n", encoding="utf-8")
    result = launch("pipeline.daily_all", kind="pipeline")
    assert result.status == "failed"
    assert result.failed == ["ingest_drop_folder"] and result.skipped == ["canonize_jsonl_note"]
    [canon] = [j for j in result.jobs if j.job_id == "canonize_jsonl_note"]
    assert canon.reason == "an earlier stage failed"
    [fetch] = [s for s in result.jobs[0].steps if s.status == "failed"]
    assert fetch.attempts == 1  # a permanent error is not retried
    with open_instance() as instance:
        latest = instance.get_latest_materialization_events(
            [dg.AssetKey(["ingest", "drop_folder"]), dg.AssetKey(["canonize", "jsonl_note"])]
        )
    assert all(event is None for event in latest.values())


def test_pipeline_jobs_select_their_assets_and_no_gates(mini: dict) -> None:
    defs = build_defs()
    keys = defs.resolve_job_def("canonize").asset_layer.selected_asset_keys
    assert keys == {dg.AssetKey(["canonize", "jsonl_note"])}
    daily = defs.resolve_job_def("daily_all").asset_layer.selected_asset_keys
    assert daily == {
        dg.AssetKey(["ingest", "drop_folder"]),
        dg.AssetKey(["canonize", "jsonl_note"]),
    }


def test_a_broken_job_is_refused_alone(mini: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """One invalid YAML in a stage: the pipeline runs everything else and names the file."""
    from lorchestra_dagster.launch import launch

    bad = mini["catalog"] / "ingest" / "ingest_typo.yaml"
    bad.write_text("job_id: ingest_typo\nversion: '2.0'\nsteps:\n- step_id: a\n  op: nope\n")
    pipeline = mini["catalog"] / "pipelines" / "pipeline.ingest.yaml"
    pipeline.write_text(
        pipeline.read_text().replace(
            '["ingest_drop_folder"]', '["ingest_drop_folder", "ingest_typo"]'
        )
    )
    result = launch("pipeline.daily_all", kind="pipeline")
    assert result.succeeded == ["ingest_drop_folder", "canonize_jsonl_note"]
    assert result.status == "failed"
    [failure] = result.failures
    assert failure["job_id"] == "ingest_typo"
    assert f"{bad}:5:" in failure["error"]["message"]


_FLAKY: dict[str, int] = {}


@register("dagster_test_flaky")
def _flaky(params: dict, ctx) -> dict:
    _FLAKY[ctx.run_id] = _FLAKY.get(ctx.run_id, 0) + 1
    if _FLAKY[ctx.run_id] < 2:
        raise TransientError("vendor answered 503")
    return {"schema_version": "1.0", "items": [{"id": "x1"}], "stats": {}}


@register("dagster_test_broken")
def _broken(params: dict, ctx) -> dict:
    _FLAKY[ctx.run_id] = _FLAKY.get(ctx.run_id, 0) + 1
    raise PermanentError("bad credential", stream="test")


RETRY_JOB = """job_id: {job_id}
version: '2.0'
steps:
- step_id: fetch
  op: call
  retry: {{attempts: 3, backoff_s: 0.01}}
  params: {{callable: {callable}}}
- step_id: build
  op: plan.build
  params:
    items: '@run.fetch.items'
    method: bq.upsert
    dataset: raw
    table: retry_test_{job_id}
    key_columns: [id]
- step_id: write
  op: storacle.submit
  params: {{plan: '@run.build.plan'}}
"""


def test_transient_errors_retry_permanent_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instance
) -> None:
    drop = tmp_path / "drop2"
    write_notes(drop, "a.jsonl", NOTES)
    cat = make_catalog(
        tmp_path / "cat2",
        drop,
        extra_jobs={
            "ingest/flaky.yaml": RETRY_JOB.format(job_id="flaky", callable="dagster_test_flaky"),
            "ingest/broken.yaml": RETRY_JOB.format(job_id="broken", callable="dagster_test_broken"),
        },
    )
    monkeypatch.setenv("LORCHESTRA_JOBS_DIR", str(cat))
    defs = build_defs()
    job = defs.resolve_implicit_global_asset_job_def()
    ok = job.execute_in_process(
        asset_selection=[dg.AssetKey(["ingest", "flaky"])], instance=instance
    )
    assert ok.success
    assert _FLAKY[ok.run_id] == 2
    [mat] = ok.get_asset_materialization_events()
    record = mat.materialization.metadata["lorchestra/run_record"].value
    assert record["steps"][0]["attempts"] == 2 and record["status"] == "succeeded"

    bad = job.execute_in_process(
        asset_selection=[dg.AssetKey(["ingest", "broken"])],
        instance=instance,
        raise_on_error=False,
    )
    assert not bad.success
    assert _FLAKY[bad.run_id] == 1
    [failure] = [e for e in bad.all_events if e.is_step_failure]
    assert "bad credential" in failure.event_specific_data.user_failure_data.description


def test_a_run_pages_through_a_backlog_in_batches(mini: dict) -> None:
    """More rows than one batch: one plan per page, every row once, the same Dagster run."""
    from lorchestra_dagster.launch import launch

    many = [dict(NOTES[0], id=f"bulk-{i:04d}", title=f"t{i}") for i in range(23)]
    write_notes(mini["drop"], "many.jsonl", many)
    assert launch("ingest_drop_folder", kind="job").status == "succeeded"
    result = launch("canonize_jsonl_note", kind="job", batch_size=5)
    [job] = result.jobs
    assert job.status == "succeeded" and job.rows_written == 25
    read = next(s for s in job.steps if s.op == "storacle.query")
    assert read.attempts == 6  # pages of at most 5 rows: 5 x 5, then the short page
    assert len(job.plan_ids) == 5  # one atomic plan per page (the empty last page has none)
    again = launch("canonize_jsonl_note", kind="job", batch_size=5)
    assert again.jobs[0].status == "skipped" and again.rows_written == 0


def test_cli_runs_land_in_the_lorchestra_home_instance(
    mini: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lorchestra_dagster.launch import launch, open_instance

    monkeypatch.delenv("DAGSTER_HOME")
    result = launch("pipeline.daily_all", kind="pipeline")
    assert result.status == "succeeded" and result.launched_by == "cli"
    home = mini["home"] / "dagster"
    assert (home / "dagster.yaml").is_file()
    with open_instance() as inst:
        assert inst.root_directory == str(home)
        [run] = inst.get_runs()
        assert run.job_name == "daily_all" and run.status == dg.DagsterRunStatus.SUCCESS
        # Filed under the code location, so the UI's Overview timeline shows it.
        origin = run.remote_job_origin
        assert origin.location_name == "lorchestra" and origin.job_name == "daily_all"
        assert run.tags["lorchestra/launched_by"] == "cli"

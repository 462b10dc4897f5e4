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
def test_daily_all_cli_multiprocess_keeps_no_clear_data(mini: dict) -> None:
    """`dagster job execute -j daily_all` (multiprocess): the marker never lands in DAGSTER_HOME."""
    notes = [dict(NOTES[0], id="note-0099", body=f"Client said {MARKER} in session")]
    write_notes(mini["drop"], "notes_marker.jsonl", notes)
    proc = dagster_cli(
        "job", "execute", "-m", "lorchestra_dagster.definitions", "-j", "daily_all",
        env=subprocess_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stdout + proc.stderr
    home: Path = mini["dagster_home"]
    assert list(home.rglob("*.fernet")), "intermediates should be stored, encrypted"
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


def _in_process(defs: dg.Definitions, name: str, instance) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(name).execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={"execution": {"config": {"in_process": {}}}},
    )


def test_stop_on_failure_skips_later_stages(mini: dict, instance) -> None:
    (mini["drop"] / "broken.jsonl").write_text("{not json\n", encoding="utf-8")
    defs = build_defs()
    result = _in_process(defs, "daily_all", instance)
    assert not result.success
    failed = {e.step_key for e in result.all_events if e.is_step_failure}
    assert failed == {"ingest_drop_folder.ingest_drop_folder__fetch"}
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["canonize", "canonize_jsonl_note"]) not in materialized
    assert not any(e.is_step_start and "canonize" in (e.step_key or "") for e in result.all_events)
    # A permanent error is not retried.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]


def test_canonize_job_alone_is_not_gated(mini: dict, instance) -> None:
    """The child pipeline has stop_on_failure false: no gate in its job."""
    defs = build_defs()
    keys = defs.resolve_job_def("canonize").asset_layer.selected_asset_keys
    assert keys == {dg.AssetKey(["canonize", "canonize_jsonl_note"])}
    daily = defs.resolve_job_def("daily_all").asset_layer.selected_asset_keys
    assert dg.AssetKey(["pipeline", "daily_all__ingest_done"]) in daily


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
    restarts = [e for e in ok.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(restarts) == 1

    bad = job.execute_in_process(
        asset_selection=[dg.AssetKey(["ingest", "broken"])],
        instance=instance,
        raise_on_error=False,
    )
    assert not bad.success
    assert _FLAKY[bad.run_id] == 1
    [failure] = [e for e in bad.all_events if e.is_step_failure]
    assert "bad credential" in failure.event_specific_data.error.message


def test_run_daily_all_lands_in_the_lorchestra_home_instance(
    mini: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lorchestra_dagster.defs import run_daily_all

    monkeypatch.delenv("DAGSTER_HOME")
    assert run_daily_all(in_process=True) is True
    home = mini["home"] / "dagster"
    assert (home / "dagster.yaml").is_file()
    with dg.DagsterInstance.from_config(str(home)) as inst:
        [run] = inst.get_runs()
        assert run.job_name == "daily_all" and run.status == dg.DagsterRunStatus.SUCCESS
        assert not (
            Path(inst.storage_directory()) / "lorchestra_intermediate" / run.run_id
        ).exists()

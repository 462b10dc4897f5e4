"""Assets run in process on the mini catalog: rows, metadata, checks, reruns, equivalence."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from lorchestra_dagster.defs.build import build_defs
from lorchestra_dagster.settings import Settings

pytestmark = pytest.mark.e2e

INGEST = dg.AssetKey(["ingest", "drop_folder"])
CANON = dg.AssetKey(["canonize", "jsonl_note"])


def _run(defs: dg.Definitions, instance, keys, **kw) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(asset_selection=keys, instance=instance, **kw)


def _meta(result, key) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _client():
    from lorchestra_dagster.storacle.client import make_client

    return make_client(Settings.from_env())


def test_ingest_then_canonize_in_process(mini: dict, instance) -> None:
    defs = build_defs()
    result = _run(defs, instance, [INGEST, CANON])
    assert result.success
    ingest = _meta(result, INGEST)
    assert ingest["rows_inserted"] == 3  # two notes and the consumed-files record
    canon = _meta(result, CANON)
    assert canon["dagster/table_name"] == "canonical.canonical_objects"
    assert canon["rows_inserted"] == 2 and canon["dagster/row_count"] == 2
    assert len(canon["plan_id"]) == 64 and canon["plans"] == 1
    assert (
        canon["lorchestra/run_record"]["job_def_sha256"]
        == defs.resolve_assets_def(CANON).code_versions_by_key[CANON]
    )
    checks = {(e.asset_key, e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert checks[(CANON, "payloads_match_schema")] is True
    assert checks[(CANON, "unique_keys")] and checks[(CANON, "non_null_keys")]
    assert checks[(INGEST, "row_count")] is True
    raw = _client().query({"dataset": "raw", "table": "raw_objects", "columns": ["COUNT(*) AS n"]})
    assert raw[0]["n"] == 2

    again = _run(defs, instance, [INGEST, CANON])
    assert again.success
    # Nothing new: ingest ran and wrote nothing; canonize saw unchanged inputs and did no work.
    assert _meta(again, INGEST)["rows_written"] == 0
    assert CANON not in {e.asset_key for e in again.get_asset_materialization_events()}
    [obs] = [
        e.event_specific_data.asset_observation
        for e in again.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert obs.asset_key == CANON and obs.metadata["lorchestra/status"].value == "skipped"
    assert "inputs unchanged" in obs.metadata["lorchestra/reason"].value


def test_cli_and_ui_asset_job_write_the_same_rows(
    mini: dict, instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lorchestra run` (a Dagster run launched in-process) and the UI's asset job agree."""
    from lorchestra_dagster.launch import execute

    defs = build_defs()
    assert _run(defs, instance, [INGEST, CANON]).success
    dagster_rows = _rows()

    other = tmp_path / "other_home"
    monkeypatch.setenv("LORCHESTRA_HOME", str(other))
    monkeypatch.delenv("DAGSTER_HOME")
    for job_id in ("ingest_drop_folder", "canonize_jsonl_note"):
        res = execute({"job_id": job_id})
        assert res.status == "succeeded", res.failures
        assert res.launched_by == "api"
    assert _rows() == dagster_rows


def _rows() -> list[dict]:
    rows = _client().query(
        {
            "dataset": "canonical",
            "table": "canonical_objects",
            "columns": ["idem_key", "canonical_schema", "canonical_format", "payload"],
            "order_by": "idem_key",
        }
    )
    assert rows
    return rows


def test_dry_run_writes_nothing_and_materializes_nothing(mini: dict, instance) -> None:
    defs = build_defs()
    result = _run(
        defs,
        instance,
        [INGEST],
        run_config={"resources": {"envelope": {"config": {"dry_run": True}}}},
    )
    assert result.success
    assert result.get_asset_materialization_events() == []
    [obs] = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert obs.metadata["dry_run"].value is True
    assert obs.metadata["lorchestra/run_record"].value["plans"]
    from lorchestra_dagster.errors import LorchestraError

    try:
        rows = _client().query({"dataset": "raw", "table": "raw_objects", "columns": ["idem_key"]})
    except LorchestraError:
        rows = []  # the table was never created: nothing was written
    assert rows == []


def test_a_change_behind_lorchestras_back_reruns_the_reader(mini: dict, instance) -> None:
    """Fingerprints read the tables: a raw row written outside any job still reruns canonize."""
    from lorchestra_dagster.storacle.plan import make_plan

    defs = build_defs()
    assert _run(defs, instance, [INGEST, CANON]).success
    skipped = _run(defs, instance, [CANON])
    assert skipped.get_asset_materialization_events() == []
    row = {
        "idem_key": "jsonl:drop_folder:note:note-0777",
        "source_system": "jsonl",
        "connection_name": "drop_folder",
        "object_type": "note",
        "external_id": "note-0777",
        "payload": {"id": "note-0777", "kind": "note", "title": "Late", "body": "Added by hand",
                    "updated_at": "2026-11-04T10:00:00Z"},
        "first_seen": "2026-12-01T06:00:00+00:00",
        "last_seen": "2026-12-01T06:00:00+00:00",
    }  # fmt: skip
    op = {"dataset": "raw", "table": "raw_objects", "key_columns": ["idem_key"], "rows": [row]}
    _client().execute_plan(make_plan([("bq.upsert", op)], {"run_id": "by-hand"}).model_dump())
    rerun = _run(defs, instance, [CANON])
    assert _meta(rerun, CANON)["rows_written"] == 1

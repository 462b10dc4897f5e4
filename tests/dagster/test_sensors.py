"""Sensors on real storage: drop folder, run failures, clinical safety flags."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from dagster_helpers import NOTES, write_notes

from lorchestra_dagster.defs.build import build_defs
from lorchestra_dagster.defs.resources import StoracleResource
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.client import make_client
from lorchestra_dagster.storacle.plan import make_plan

pytestmark = pytest.mark.e2e


def _client():
    return make_client(Settings.from_env())


def _events(kind: str) -> list[dict]:
    rows = _client().query(
        {
            "dataset": "ops",
            "table": "events",
            "columns": ["event_id", "kind", "run_id", "job_id", "severity", "details"],
            "filters": {"kind": kind},
            "parse_json_columns": ["details"],
        }
    )
    return rows


def test_drop_folder_sensor_requests_ingest_for_new_files(mini: dict, instance) -> None:
    defs = build_defs()
    sensor = defs.resolve_sensor_def("drop_folder_sensor")
    res = {"storacle": StoracleResource()}
    ctx = dg.build_sensor_context(instance=instance, resources=res)
    first = sensor.evaluate_tick(ctx)
    [req] = first.run_requests
    assert req.asset_selection == [dg.AssetKey(["ingest", "drop_folder"])]
    assert req.tags["lorchestra/stream"] == "drop_folder"
    cursor = first.cursor
    assert "notes_a" not in cursor  # hashes only, never file names

    again = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=cursor, resources=res)
    )
    assert not again.run_requests

    write_notes(mini["drop"], "notes_b.jsonl", [dict(NOTES[0], id="note-0100")])
    third = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=cursor, resources=res)
    )
    [req3] = third.run_requests
    assert req3.run_key != req.run_key


def _observation(key: str, flags: list[dict], processed_at: str) -> dict:
    return {
        "idem_key": key,
        "measurement_event_idem_key": key.rsplit(":", 1)[0],
        "subject_id": "0" * 64,
        "measure_code": "phq9_total",
        "instrument_code": "phq9",
        "value_numeric": 12,
        "flags": flags,
        "components": {},
        "processed_at": processed_at,
    }


def _insert_observations(rows: list[dict]) -> None:
    plan = make_plan(
        [
            (
                "bq.upsert",
                {
                    "dataset": "derived",
                    "table": "observations",
                    "key_columns": ["idem_key"],
                    "rows": rows,
                },
            )
        ]
    )
    _client().execute_plan(plan.model_dump(mode="json"))


def test_clinical_safety_sensor_alerts_once_per_flag(mini: dict, instance) -> None:
    defs = build_defs()
    sensor = defs.resolve_sensor_def("clinical_safety_sensor")
    res = {"storacle": StoracleResource()}
    flag = [{"code": "phq9_item9", "message": "item 9 answered above 0", "item": 9}]
    _insert_observations(
        [
            _observation(
                "f:a:form_response:r1#form_response:phq9_total", flag, "2026-11-29T06:00:00+00:00"
            ),
            _observation(
                "f:a:form_response:r2#form_response:phq9_total", [], "2026-11-29T06:00:00+00:00"
            ),
        ]
    )
    first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=res))
    assert "1 safety alert" in (first.skip_message or "")
    [event] = _events("clinical_safety_alert")
    assert event["severity"] == "critical"
    assert event["details"]["observation_idem_key"].endswith("r1#form_response:phq9_total")
    assert json.loads(first.cursor)["processed_at"]

    second = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=res)
    )
    assert second.skip_message == "no new safety flags"

    _insert_observations(
        [
            _observation(
                "f:a:form_response:r3#form_response:phq9_total", flag, "2026-11-29T07:00:00+00:00"
            )
        ]
    )
    third = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=second.cursor, resources=res)
    )
    assert "1 safety alert" in (third.skip_message or "")
    assert len(_events("clinical_safety_alert")) == 2


def test_run_failure_sensor_records_the_failure(mini: dict, instance) -> None:
    (mini["drop"] / "broken.jsonl").write_text("{not json\n", encoding="utf-8")
    defs = build_defs()
    result = defs.resolve_job_def("ingest").execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={"execution": {"config": {"in_process": {}}}},
    )
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    [entry] = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    failure = entry.dagster_event
    sensor = defs.resolve_sensor_def("record_run_failures")
    ctx = dg.build_run_status_sensor_context(
        sensor_name="record_run_failures",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
        resources={"storacle": StoracleResource()},
    ).for_run_failure()
    sensor(ctx)
    [event] = _events("dagster_run_failure")
    assert event["run_id"] == result.run_id and event["job_id"] == "ingest"
    assert event["details"]["failed_jobs"] == ["ingest_drop_folder"]

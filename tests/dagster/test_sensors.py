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


def _flag(key: str, processed_at: str, active: bool = True) -> dict:
    return {
        "flag_id": f"{key}:phq9_item9",
        "measurement_event_idem_key": key,
        "subject_id": "0" * 64,
        "instrument_code": "phq9",
        "item": 9,
        "code": "phq9_item9",
        "severity": "critical",
        "message": "item 9 answered above 0",
        "reason": "answered",
        "active": active,
        "occurred_at": "2026-11-28T06:00:00+00:00",
        "processed_at": processed_at,
    }


def _insert_flags(rows: list[dict]) -> None:
    op = {"dataset": "derived", "table": "safety_flags", "key_columns": ["flag_id"], "rows": rows}
    _client().execute_plan(make_plan([("bq.upsert", op)]).model_dump(mode="json"))


def test_clinical_safety_sensor_alerts_once_per_flag(mini: dict, instance) -> None:
    defs = build_defs()
    sensor = defs.resolve_sensor_def("clinical_safety_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    res = {"storacle": StoracleResource()}
    _insert_flags([_flag("f:a:form_response:r1#form_response", "2026-11-29T06:00:00+00:00")])
    first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=res))
    assert (first.skip_message or "").startswith("1 new alert(s)")
    [event] = _events("clinical_safety_alert")
    assert event["severity"] == "critical" and event["details"]["code"] == "phq9_item9"
    assert json.loads(first.cursor)["opened"] == 1

    second = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=res)
    )
    assert (second.skip_message or "").startswith("0 new alert(s)")

    _insert_flags([_flag("f:a:form_response:r3#form_response", "2026-11-29T07:00:00+00:00")])
    third = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=second.cursor, resources=res)
    )
    assert (third.skip_message or "").startswith("1 new alert(s)")
    assert len(_events("clinical_safety_alert")) == 2


def test_clinical_safety_sensor_tick_fails_when_no_one_could_be_told(
    mini: dict, instance, monkeypatch
) -> None:
    monkeypatch.setenv("LORCHESTRA_ALERT_COMMAND", "false")
    sensor = build_defs().resolve_sensor_def("clinical_safety_sensor")
    _insert_flags([_flag("f:a:form_response:r9#form_response", "2026-11-29T06:00:00+00:00")])
    ctx = dg.build_sensor_context(instance=instance, resources={"storacle": StoracleResource()})
    with pytest.raises(Exception, match="1 alert notification"):
        sensor.evaluate_tick(ctx)
    assert len(_events("clinical_safety_alert")) == 1  # stored all the same
    assert len(_events("alert_notification_failed")) == 1


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

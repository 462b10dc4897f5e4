"""The original's ``proj_obs_*`` jobs: ``observation_projector`` is formation scoring.

The job is the original's three steps (call with ``binding_id``, a per-item
``bq.upsert``, submit). Its reads become explicit steps; it scores with the
``finalform`` callable, so PHQ-9 item 9 raises its safety flag on this path too,
and a rerun with nothing new reads nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from migration_kit import issues_of, services_for, write_catalog
from test_measurement_projector import SEED

from lorchestra_dagster.engine import execute_with
from lorchestra_dagster.instruments import load_bindings
from lorchestra_dagster.spec import load_catalog

pytestmark = pytest.mark.e2e

REPO_JOBS = Path(__file__).resolve().parents[2] / "jobs"

PROJ_OBS = """\
job_id: proj_obs_intake_01
version: '2.0'
steps:
- step_id: score
  op: call
  params:
    callable: observation_projector
    binding_id: intake_01
    binding_version: '1.0.0'
    measurement_table: measurement_events
    observation_table: observations
- step_id: persist
  op: plan.build
  params:
    items: '@run.score.items'
    method: bq.upsert
- step_id: write
  op: storacle.submit
  params:
    plan: '@run.persist.plan'
"""


def _catalog(tmp_path: Path) -> Path:
    cat = write_catalog(
        tmp_path / "jobs",
        {"projection/table/proj_obs_intake_01.yaml": PROJ_OBS, "canonize/seed_forms.yaml": SEED},
    )
    for folder in ("instruments", "bindings"):
        shutil.copytree(REPO_JOBS / folder, cat / folder)
    return cat


def _response(cat: Path, n: int, item9: str, form: str = "intake_01") -> dict:
    binding = load_bindings(cat)[form]
    answers = []
    for q in binding.questions:
        text = "Not at all" if q.instrument == "gad7" else "Several days"
        if (q.instrument, q.item) == ("phq9", 9):
            text = item9
        elif (q.instrument, q.item) in (("phq9", 10), ("gad7", 8)):  # difficulty items
            text = "Somewhat difficult"
        answers.append({"question_id": q.question_id, "answer_value": text})
    return {
        "idem_key": f"google_forms:{form}:form_response:r{n}#form_response",
        "source_system": "google_forms",
        "connection_name": form,
        "object_type": "form_response",
        "canonical_format": "form_response",
        "correlation_id": "c-seed",
        "payload": {
            "response_id": f"r{n}",
            "form_id": binding.form_id,
            "submitted_at": "2026-02-01T21:57:01.000Z",
            "respondent_email": f"client{n}@example.org",
            "answers": answers,
        },
    }


def test_proj_obs_scores_flags_and_reruns_idle(tmp_path, _isolated_home):
    cat = _catalog(tmp_path)
    rel = "projection/table/proj_obs_intake_01.yaml"
    assert issues_of(cat, rel) == []
    steps = [(s.step_id, s.op) for s in load_catalog(cat).jobs["proj_obs_intake_01"].jobdef.steps]
    assert steps == [
        ("score_previous_flags", "storacle.query"),
        ("score_source", "storacle.query"),
        ("score", "call"),
        ("persist", "plan.build"),
        ("write", "storacle.submit"),
    ]
    rows = [
        _response(cat, 1, "Not at all"),
        _response(cat, 2, "More than half the days"),  # PHQ-9 item 9 risk answer
        _response(cat, 3, "Not at all", form="followup"),  # another binding's form
    ]
    with services_for(cat, _isolated_home) as svc:
        seed = execute_with({"job_id": "seed_forms", "payload": {"rows": rows}}, svc)
        assert seed.status == "succeeded", seed.error_message()
        first = execute_with({"job_id": "proj_obs_intake_01"}, svc)
        assert first.status == "succeeded", first.error_message()
        events = svc.client.sql(
            "SELECT idem_key, binding_id, processed_at FROM derived.measurement_events ORDER BY 1"
        )
        obs = svc.client.sql(
            "SELECT measurement_event_idem_key AS event, measure_code FROM derived.observations"
        )
        flags = svc.client.sql(
            "SELECT code, severity, active, processed_at FROM derived.safety_flags"
        )
        again = execute_with({"job_id": "proj_obs_intake_01"}, svc)
    assert [(e["idem_key"], e["binding_id"]) for e in events] == [
        (rows[0]["idem_key"], "intake_01"),
        (rows[1]["idem_key"], "intake_01"),
    ]
    assert all(e["processed_at"] is not None for e in events)
    assert {o["measure_code"] for o in obs if o["event"] == rows[1]["idem_key"]} == {
        "phq9_total",
        "gad7_total",
    }
    assert [(f["code"], f["severity"], f["active"]) for f in flags] == [
        ("phq9_item9", "critical", True)
    ]
    assert flags[0]["processed_at"] is not None  # the alert sync pages on it
    # the scored ones are done; the other form's response is read again but never written
    assert again.status == "succeeded" and again.rows_written == 0


def test_a_wrong_binding_version_fails_the_step(tmp_path, _isolated_home):
    cat = _catalog(tmp_path)
    job = cat / "projection" / "table" / "proj_obs_intake_01.yaml"
    job.write_text(PROJ_OBS.replace("binding_version: '1.0.0'", "binding_version: '9.9.9'"))
    with services_for(cat, _isolated_home) as svc:
        res = execute_with({"job_id": "proj_obs_intake_01"}, svc)
    assert res.status == "failed" and "asks for 9.9.9" in res.error_message()

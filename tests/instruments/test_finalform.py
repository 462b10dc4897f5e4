"""The finalform callable: events, observations, determinism, unbound forms, failures."""

from __future__ import annotations

import copy
import hashlib

import pytest
from kit import JOBS as CATALOG

from lorchestra_dagster.callables import CallContext, get_callable
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.instruments import load_bindings

pytestmark = pytest.mark.unit

CTX = CallContext(catalog_dir=CATALOG, home=CATALOG / ".nohome", env={})
EMAIL = "Ari.Galloway0@Example.org "


def _response(form_id: str, answers_by_item: dict[tuple[str, int], str], rid: str = "R1") -> dict:
    binding = load_bindings(CATALOG)[form_id]
    qid = {(q.instrument, q.item): q.question_id for q in binding.questions}
    return {
        "idem_key": f"google_forms:{form_id}:form_response:{rid}#form_response",
        "source_system": "google_forms",
        "connection_name": form_id,
        "object_type": "form_response",
        "correlation_id": "c-1",
        "payload": {
            "response_id": rid,
            "form_id": form_id,
            "submitted_at": "2026-03-01T10:05:00.000Z",
            "created_at": "2026-03-01T10:00:00.000Z",
            "respondent_email": EMAIL,
            "answers": [
                {"question_id": qid[key], "answer_value": text}
                for key, text in answers_by_item.items()
            ],
        },
    }


def _intake_01(rid: str = "R1") -> dict:
    answers = {("phq9", i): "Several days" for i in range(1, 10)}
    answers[("phq9", 9)] = "More than half the days"
    answers[("phq9", 10)] = "Very difficult"
    answers |= {("gad7", i): "Not at all" for i in range(1, 8)}
    return _response("intake_01", answers, rid)


def test_event_and_observations():
    out = get_callable("finalform")({"items": [_intake_01()]}, CTX)
    assert out["stats"] == {"input": 1, "output": 1, "skipped": 0, "errors": 0, "quarantined": 0}
    (event,) = out["items"]
    subject = hashlib.sha256(b"ari.galloway0@example.org").hexdigest()
    assert event["idem_key"] == event["canonical_idem_key"]
    assert event["idem_key"] == "google_forms:intake_01:form_response:R1#form_response"
    assert (event["binding_id"], event["binding_version"], event["form_id"]) == (
        "intake_01",
        "1.0.0",
        "intake_01",
    )
    assert event["subject_id"] == subject and "@" not in str(event["subject_id"])
    assert event["occurred_at"] == "2026-03-01T10:05:00.000Z"
    assert event["metadata"]["status"] == "scored"
    assert event["metadata"]["instruments"] == ["phq9", "gad7"]
    assert len(event["metadata"]["answers"]) == 17
    obs = {o["measure_code"]: o for o in out["observations"]}
    assert set(obs) == {"phq9_total", "gad7_total"}
    phq = obs["phq9_total"]
    assert phq["idem_key"] == f"{event['idem_key']}:phq9_total"
    assert phq["measurement_event_idem_key"] == event["idem_key"]
    assert (phq["value_numeric"], phq["severity_code"], phq["severity_label"]) == (
        10,
        "moderate",
        "Moderate",
    )
    assert phq["instrument_code"] == "phq9" and phq["subject_id"] == subject
    assert [f["code"] for f in phq["flags"]] == ["phq9_item9"]
    assert obs["gad7_total"]["flags"] == []
    assert (obs["gad7_total"]["value_numeric"], obs["gad7_total"]["severity_code"]) == (
        0,
        "minimal",
    )
    comp = phq["components"]
    assert comp["items"][8] == {
        "item": 9,
        "answer": "More than half the days",
        "value": 2,
        "scored_value": 2,
    }
    assert comp["unscored_items"] == [{"item": 10, "answer": "Very difficult", "value": 2}]
    assert (comp["missing"], comp["prorated"], comp["raw_sum"]) == (0, False, 10)


def test_rerun_is_deterministic():
    items = [_intake_01("R1"), _intake_01("R2")]
    a = get_callable("finalform")({"items": copy.deepcopy(items)}, CTX)
    b = get_callable("finalform")({"items": list(reversed(copy.deepcopy(items)))}, CTX)
    key = lambda r: r["idem_key"]  # noqa: E731
    assert sorted(a["items"], key=key) == sorted(b["items"], key=key)
    assert sorted(a["observations"], key=key) == sorted(b["observations"], key=key)
    shuffled = copy.deepcopy(items[0])
    shuffled["payload"]["answers"].reverse()
    c = get_callable("finalform")({"items": [shuffled]}, CTX)
    assert (
        c["items"][0]
        == a["items"][[e["idem_key"] for e in a["items"]].index(c["items"][0]["idem_key"])]
    )


def test_reversed_items_and_subscales_on_intake_02():
    answers = {("pss_10", i): "Never" for i in range(1, 11)}
    answers |= {("phlms_10", i): "Sometimes" for i in range(1, 11)}
    out = get_callable("finalform")({"items": [_response("intake_02", answers)]}, CTX)
    obs = {o["measure_code"]: o["value_numeric"] for o in out["observations"]}
    assert obs == {"pss_10_total": 16, "phlms_10_awareness": 30, "phlms_10_acceptance": 30}
    assert out["items"][0]["metadata"]["instruments"] == ["pss_10", "phlms_10"]


def test_unbound_form_still_marks_the_submission():
    row = _intake_01()
    row["payload"]["form_id"] = "some_other_form"
    out = get_callable("finalform")({"items": [row]}, CTX)
    assert out["stats"]["skipped"] == 1
    (event,) = out["items"]
    assert event["binding_id"] is None and event["metadata"]["status"] == "unbound"
    assert out["observations"] == []


def test_bad_answer_quarantines_the_submission_without_payload_text():
    row = _intake_01()
    row["payload"]["answers"][0]["answer_value"] = "Only on Tuesdays"
    out = get_callable("finalform")({"items": [row, _intake_01("R2")]}, CTX)
    assert out["stats"]["quarantined"] == 1 and len(out["items"]) == 1
    [q] = [f for f in out["safety_flags"] if f["code"] == "submission_quarantined"]
    assert q["measurement_event_idem_key"] == row["idem_key"]
    assert "Tuesdays" not in str(out["safety_flags"]) and "Ari" not in str(out["safety_flags"])
    with pytest.raises(PermanentError, match="unknown config keys"):
        get_callable("finalform")({"items": [row], "config": {"error_budget": 1}}, CTX)


def test_forced_binding_and_unknown_binding():
    with pytest.raises(PermanentError, match="unknown binding 'nope'"):
        get_callable("finalform")({"items": [], "config": {"binding_id": "nope"}}, CTX)
    with pytest.raises(PermanentError, match="not bound by 'followup'"):
        get_callable("finalform")(
            {"items": [_intake_01()], "config": {"binding_id": "followup"}}, CTX
        )


def test_no_email_gives_null_subject_and_unmapped_questions_are_counted():
    row = _intake_01()
    row["payload"]["respondent_email"] = None
    row["payload"]["answers"].append({"question_id": "ffffffff", "answer_value": "x"})
    (event,) = get_callable("finalform")({"items": [row]}, CTX)["items"]
    assert event["subject_id"] is None
    assert event["metadata"]["unmapped_questions"] == 1

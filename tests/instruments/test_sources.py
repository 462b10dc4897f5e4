"""Instruments honest about their sources: gates, published forms, local bands, proration."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorchestra_dagster.instruments import get_instrument, load_bindings
from lorchestra_dagster.instruments.scorer import score

pytestmark = pytest.mark.unit

CATALOG = Path(__file__).resolve().parents[2] / "jobs"


def _scale(result, code):
    return next(s for s in result.scales if s.code == code)


# ---------------------------------------------------------------- PC-PTSD-5 exposure gate


def test_pc_ptsd_5_asks_the_exposure_question_first():
    spec = get_instrument(CATALOG, "pc_ptsd_5")
    assert spec.gate is not None
    gate_item = spec.item(spec.gate.item)
    assert gate_item.scored is False and "ever experienced" in gate_item.text
    # Symptom items keep their published numbers 1-5.
    assert spec.scales[0].items == [1, 2, 3, 4, 5]
    binding = load_bindings(CATALOG)["intake_02"]
    ptsd = [q.item for q in binding.questions if q.instrument == "pc_ptsd_5"]
    assert ptsd[0] == spec.gate.item, "the form must ask about exposure before the symptoms"


def test_no_exposure_ends_the_screen_with_the_published_score():
    spec = get_instrument(CATALOG, "pc_ptsd_5")
    gate = spec.gate.item
    # Symptom answers given after a 'No' are not counted: the screen ended at the gate.
    r = score(spec, {gate: "No", 1: "Yes", 2: "Yes", 3: "Yes", 4: "Yes"})
    s = r.scales[0]
    assert r.gate == "ended"
    assert (s.value, s.severity_code, s.missing, s.prorated) == (0, "negative", 0, False)
    assert s.scored_values == {}
    # 'No' alone is a complete screen, not five missing items.
    only_gate = score(spec, {gate: "No"}).scales[0]
    assert (only_gate.value, only_gate.severity_code) == (0, "negative")


def test_exposure_opens_the_symptom_items():
    spec = get_instrument(CATALOG, "pc_ptsd_5")
    gate = spec.gate.item
    r = score(spec, {gate: "Yes", 1: "Yes", 2: "Yes", 3: "Yes", 4: "No", 5: "No"})
    assert r.gate == "passed"
    assert (r.scales[0].value, r.scales[0].severity_code) == (3, "positive")
    # Exposure reported but a symptom item skipped: no missing item is allowed.
    r = score(spec, {gate: "Yes", 1: "Yes", 2: "Yes", 3: "Yes", 4: "No"})
    assert r.scales[0].value is None and r.scales[0].missing == 1


def test_a_form_without_the_gate_answer_is_scored_and_says_so():
    spec = get_instrument(CATALOG, "pc_ptsd_5")
    r = score(spec, {1: "Yes", 2: "Yes", 3: "Yes", 4: "No", 5: "No"})
    assert r.gate == "unanswered" and r.scales[0].value == 3
    assert score(get_instrument(CATALOG, "phq9"), {1: 0}).gate is None


def test_finalform_records_the_gate_on_the_observation():
    from lorchestra_dagster.callables import CallContext, get_callable

    binding = load_bindings(CATALOG)["intake_02"]
    qid = {(q.instrument, q.item): q.question_id for q in binding.questions}
    answers = [{"question_id": qid[("pc_ptsd_5", 6)], "answer_value": "No"}] + [
        {"question_id": qid[("pc_ptsd_5", i)], "answer_value": "Yes"} for i in range(1, 6)
    ]
    row = {
        "idem_key": "google_forms:intake_02:form_response:R1#form_response",
        "correlation_id": "c-1",
        "payload": {"form_id": "intake_02", "submitted_at": "2026-03-01T10:05:00Z",
                    "respondent_email": "a@example.org", "answers": answers},
    }  # fmt: skip
    ctx = CallContext(catalog_dir=CATALOG, home=CATALOG / ".nohome", env={})
    (obs,) = get_callable("finalform")({"items": [row]}, ctx)["observations"]
    assert (obs["measure_code"], obs["value_numeric"], obs["severity_code"]) == (
        "pc_ptsd_5_total",
        0,
        "negative",
    )
    assert obs["components"]["gate"] == "ended"
    assert obs["components"]["prorated"] is False

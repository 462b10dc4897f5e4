"""Instruments honest about their sources: gates, published forms, local bands, proration."""

from __future__ import annotations

import pytest
from kit import JOBS as CATALOG

from lorchestra_dagster.instruments import get_instrument, load_bindings
from lorchestra_dagster.instruments.scorer import score

pytestmark = pytest.mark.unit


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


# ---------------------------------------------------------------- PHLMS


def test_phlms_20_is_the_published_scale():
    spec = get_instrument(CATALOG, "phlms_20")
    assert spec.origin == "published" and "Cardaciotto" in spec.source
    assert len(spec.items) == 20
    assert [o.value for o in spec.response_sets[spec.items[0].response_set]] == [1, 2, 3, 4, 5]
    scales = {s.code: s for s in spec.scales}
    assert set(scales) == {"phlms_20_awareness", "phlms_20_acceptance"}
    aw, ac = scales["phlms_20_awareness"], scales["phlms_20_acceptance"]
    assert aw.items == list(range(1, 21, 2)) and aw.reversed == []
    assert ac.items == list(range(2, 21, 2)) and ac.reversed == ac.items
    for s in (aw, ac):  # the published scale has no cut-offs, and sums are not rescaled
        assert (s.method, s.min, s.max, s.bands, s.missing_allowed) == ("sum", 10, 50, [], 0)


def test_phlms_20_scores_by_hand():
    spec = get_instrument(CATALOG, "phlms_20")
    # Awareness items answered 'Often' (4), acceptance items 'Rarely' (2 -> 6 - 2 = 4).
    answers = {i: ("Often" if i % 2 else "Rarely") for i in range(1, 21)}
    r = score(spec, answers)
    assert {s.code: (s.value, s.severity_code) for s in r.scales} == {
        "phlms_20_awareness": (40, None),
        "phlms_20_acceptance": (40, None),
    }
    answers[20] = "Very often"  # 6 - 5 = 1 instead of 4
    assert _scale(score(spec, answers), "phlms_20_acceptance").value == 37
    del answers[1]
    assert _scale(score(spec, answers), "phlms_20_awareness").value is None


def test_phlms_10_is_labelled_a_local_adaptation():
    short, full = get_instrument(CATALOG, "phlms_10"), get_instrument(CATALOG, "phlms_20")
    assert short.origin == "local" and "local adaptation" in short.name.lower()
    # Its items are published PHLMS items, on the same subscale as in the full scale.
    full_items = {it.text: it.position for it in full.items}
    aw = {full_items[short.item(p).text] for p in short.scales[0].items}
    ac = {full_items[short.item(p).text] for p in short.scales[1].items}
    assert all(p % 2 == 1 for p in aw) and all(p % 2 == 0 for p in ac)


def test_every_shipped_instrument_declares_its_origin():
    from lorchestra_dagster.instruments import load_instruments

    for code, spec in load_instruments(CATALOG).items():
        assert "origin" in spec.model_fields_set, code


# ---------------------------------------------------------------- band sources

PUBLISHED_BANDS = {"phq9_total", "gad7_total", "pc_ptsd_5_total", "msi_bpd_total"}


def test_every_band_set_says_where_it_comes_from():
    from lorchestra_dagster.instruments import load_instruments

    seen = {}
    for spec in load_instruments(CATALOG).values():
        for scale in spec.scales:
            if not scale.bands:
                assert scale.bands_source is None, scale.code
                continue
            src = scale.bands_source
            assert src is not None, f"{scale.code}: bands without a declared source"
            seen[scale.code] = src.source
            if src.source == "published":
                assert len(src.citation) > 20, scale.code
            else:
                assert src.note, f"{scale.code}: a local band set says whose convention it is"
    assert {c for c, s in seen.items() if s == "published"} == PUBLISHED_BANDS
    local = {c for c, s in seen.items() if s == "local"}
    assert {"pss_10_total", "phlms_10_awareness", "phlms_10_acceptance"} <= local
    assert {c for c in seen if c.startswith("ipip_")} <= local


def test_bands_without_a_declared_source_count_as_local():
    from lorchestra_dagster.instruments.models import Scale
    from lorchestra_dagster.instruments.scorer import bands_origin

    bands = [{"min": 0, "max": 2, "code": "a", "label": "A"},
             {"min": 3, "max": 6, "code": "b", "label": "B"}]  # fmt: skip
    base = dict(code="x_total", name="x", items=[1, 2], method="sum", min=0, max=6)
    assert bands_origin(Scale.model_validate({**base, "bands": bands})) == "local"
    assert bands_origin(Scale.model_validate(base)) is None
    cited = {"source": "published", "citation": "Someone et al. 2001, table 3"}
    assert bands_origin(Scale.model_validate({**base, "bands": bands, "bands_source": cited})) == (
        "published"
    )
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="citation"):
        Scale.model_validate({**base, "bands": bands, "bands_source": {"source": "published"}})


# ---------------------------------------------------------------- proration across a cut-off


def test_prorated_score_whose_band_depends_on_the_missing_item_is_marked():
    phq9 = get_instrument(CATALOG, "phq9")
    # 8 answered items summing to 8: prorated 9 (mild), but the missing item (0-3) could make
    # the complete total anything from 8 to 11, across the 10 cut-off.
    s = score(phq9, {i: v for i, v in enumerate([1] * 8, start=1)}).scales[0]
    assert (s.value, s.severity_code, s.prorated, s.crosses_cutoff) == (9, "mild", True, True)
    # Sum 11 -> 12.375 -> 12; the complete total is 11-14: moderate whatever the missing item.
    s = score(phq9, dict(enumerate([2, 2, 2, 2, 1, 1, 1, 0], start=1))).scales[0]
    assert (s.value, s.severity_code, s.prorated, s.crosses_cutoff) == (12, "moderate", True, False)
    # Complete answers never cross; scales without bands never cross.
    assert score(phq9, dict(enumerate([1] * 9, start=1))).scales[0].crosses_cutoff is False
    fscrs = get_instrument(CATALOG, "fscrs")
    one_missing = {i: 4 for i in range(2, 23)}
    assert all(not s.crosses_cutoff for s in score(fscrs, one_missing).scales)


def test_crossing_follows_reversal_and_doubling():
    phlms = get_instrument(CATALOG, "phlms_10")
    # Awareness items 1, 4, 7, 8 answered 3 (sum 12, prorated 15, doubled 30, average); the
    # missing item 10 (1-5) gives complete sums 13-17, doubled 26-34: all 'average'.
    s = _scale(score(phlms, {1: 3, 4: 3, 7: 3, 8: 3}), "phlms_10_awareness")
    assert (s.value, s.severity_code, s.crosses_cutoff) == (30, "average", False)
    # Sum 8 -> prorated 10, doubled 20 (below average); complete 9-13 doubled 18-26 crosses 25.
    s = _scale(score(phlms, {1: 2, 4: 2, 7: 2, 8: 2}), "phlms_10_awareness")
    assert (s.value, s.severity_code, s.crosses_cutoff) == (20, "below_average", True)


def test_observation_components_carry_the_marks():
    from lorchestra_dagster.callables import CallContext, get_callable

    binding = load_bindings(CATALOG)["intake_01"]
    qid = {(q.instrument, q.item): q.question_id for q in binding.questions}
    answers = [{"question_id": qid[("phq9", i)], "answer_value": 1} for i in range(1, 9)]
    answers += [{"question_id": qid[("gad7", i)], "answer_value": 0} for i in range(1, 8)]
    row = {
        "idem_key": "google_forms:intake_01:form_response:R9#form_response",
        "correlation_id": "c-1",
        "payload": {"form_id": "intake_01", "submitted_at": "2026-03-01T10:05:00Z",
                    "respondent_email": "a@example.org", "answers": answers},
    }  # fmt: skip
    ctx = CallContext(catalog_dir=CATALOG, home=CATALOG / ".nohome", env={})
    obs = {
        o["measure_code"]: o
        for o in get_callable("finalform")({"items": [row]}, ctx)["observations"]
    }
    phq = obs["phq9_total"]["components"]
    assert (phq["prorated"], phq["crosses_cutoff"], phq["bands_source"]) == (
        True,
        True,
        "published",
    )
    gad = obs["gad7_total"]["components"]
    assert (gad["prorated"], gad["crosses_cutoff"]) == (False, False)


def test_cli_shape_shows_the_gate_and_the_marks():
    spec = get_instrument(CATALOG, "pc_ptsd_5")
    out = score(spec, {spec.gate.item: "No"}).to_dict()
    assert out["gate"] == "ended"
    assert out["scales"][0] == {
        "code": "pc_ptsd_5_total", "value": 0, "severity_code": "negative",
        "severity_label": "Negative screen", "missing": 0, "prorated": False,
        "crosses_cutoff": False,
    }  # fmt: skip
    assert "gate" not in score(get_instrument(CATALOG, "gad7"), {1: 0}).to_dict()


def test_spec_mistakes_about_gates_and_sources_are_refused():
    from pydantic import ValidationError

    from lorchestra_dagster.instruments.models import Instrument

    data = get_instrument(CATALOG, "pc_ptsd_5").model_dump(mode="json")
    for bad, match in [
        ({"gate": {**data["gate"], "item": 1}}, "must exist and be unscored"),
        ({"gate": {**data["gate"], "continue_values": [0, 1]}}, "some, not all"),
        ({"gate": {**data["gate"], "ended_value": 9}}, "ended_value outside"),
    ]:
        with pytest.raises(ValidationError, match=match):
            Instrument.model_validate({**data, **bad})
    scale = {**data["scales"][0], "bands": [], "bands_source": {"source": "local", "note": "x"}}
    with pytest.raises(ValidationError, match="bands_source given but no bands"):
        Instrument.model_validate({**data, "scales": [scale]})

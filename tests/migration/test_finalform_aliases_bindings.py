"""The original finalform's response ``aliases`` and bindings ``by: position`` / ``by: text``.

Fixtures are shaped like the original's JSON registry files (a made-up
three-item measure). Aliases resolve through the one scorer, so safety rules
and scoring read an alias answer the same way; position and text bindings get
the checks question-id bindings get, and the finalform callable matches answers
that carry ``position`` / ``question_text``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from test_finalform_registry import BINDING, _measure, _write

from lorchestra_dagster.callables import CallContext, get_callable
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.instruments import load_instruments
from lorchestra_dagster.instruments.models import Instrument
from lorchestra_dagster.instruments.registry import catalog_problems, load_bindings
from lorchestra_dagster.instruments.safety import evaluate_rules
from lorchestra_dagster.instruments.scorer import score

pytestmark = pytest.mark.unit

FORM = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


def _aliased() -> dict:
    spec = _measure()
    for it in spec["items"][:3]:
        it["aliases"] = {"a lot": "often", "Now and then": "sometimes"}
    spec["flags"] = [{"code": "calm3_item2", "item": 2, "min_value": 2, "message": "ask"}]
    return spec


def _binding(by: str, values: list) -> dict:
    binding = copy.deepcopy(BINDING)
    binding["sections"][0]["bindings"] = [
        {"item_id": f"calm3_item{n}", "by": by, "value": v}
        for n, v in zip((1, 2, 3), values, strict=True)
    ]
    return binding


def _row(answers: list[dict]) -> dict:
    return {
        "idem_key": "google_forms:checkin:form_response:R1#form_response",
        "correlation_id": "c-1",
        "payload": {
            "response_id": "R1",
            "form_id": FORM,
            "submitted_at": "2026-03-01T10:05:00.000Z",
            "respondent_email": "someone@example.org",
            "answers": answers,
        },
    }


def _ctx(root: Path) -> CallContext:
    return CallContext(catalog_dir=root, home=root / ".home", env={})


def test_an_alias_answer_scores_as_its_option(tmp_path):
    inst = load_instruments(_write(tmp_path, measure=_aliased()))["calm3"]
    often = next(o for o in inst.options(1) if o.text == "often")
    assert often.aliases == ["a lot"]
    # "A  LOT" (case and spacing differ) is the alias of often (2); item 3 is reversed.
    by_alias = score(inst, {1: "A  LOT", 2: "now and then", 3: "a lot"})
    by_text = score(inst, {1: "often", 2: "sometimes", 3: "often"})
    assert by_alias.scales[0].value == by_text.scales[0].value == 3
    assert by_alias.answers[1].value == 2


def test_an_alias_answer_raises_the_safety_rule_of_its_option(tmp_path):
    inst = load_instruments(_write(tmp_path, measure=_aliased()))["calm3"]
    assert [h.code for h in evaluate_rules(inst, {2: "a lot"})] == ["calm3_item2"]
    assert evaluate_rules(inst, {2: "now and then"}) == []


def test_an_unknown_answer_still_fails_loudly(tmp_path):
    inst = load_instruments(_write(tmp_path, measure=_aliased()))["calm3"]
    with pytest.raises(PermanentError, match="unknown response text"):
        score(inst, {1: "quite a lot"})


def test_an_alias_naming_no_option_is_refused_on_load(tmp_path):
    spec = _aliased()
    spec["items"][0]["aliases"] = {"a lot": "very often"}
    root = _write(tmp_path, measure=spec)
    [problem] = [p for p in catalog_problems(root) if "measure-registry" in p["file"]]
    assert "alias 'a lot'" in problem["message"] and "very often" in problem["message"]


def test_an_alias_equal_to_another_option_is_refused(tmp_path):
    spec = _aliased()
    spec["items"][0]["aliases"] = {"never": "often"}
    root = _write(tmp_path, measure=spec)
    [problem] = [p for p in catalog_problems(root) if "measure-registry" in p["file"]]
    assert "repeats an option" in problem["message"]


def test_yaml_instruments_take_aliases_too():
    inst = Instrument.model_validate(
        {
            "code": "two",
            "version": "1.0.0",
            "name": "Two",
            "source": "test",
            "response_sets": {
                "yn": [{"text": "No", "value": 0}, {"text": "Yes", "value": 1, "aliases": ["Y"]}]
            },
            "items": [{"position": 1, "text": "Q", "response_set": "yn"}],
            "scales": [{"code": "two_total", "name": "t", "items": [1], "method": "sum",
                        "min": 0, "max": 1}],
        }
    )  # fmt: skip
    assert score(inst, {1: "y"}).scales[0].value == 1


@pytest.mark.parametrize(
    ("by", "values", "field"),
    [
        ("position", [1, 2, 3], "position"),
        ("text", ["Item 1", "Item 2", "Item 3"], "question_text"),
    ],
)
def test_bindings_by_position_and_text_load(tmp_path, by, values, field):
    root = _write(tmp_path, binding=_binding(by, values))
    binding = load_bindings(root)["checkin"]
    assert [(getattr(q, field), q.item) for q in binding.questions] == list(
        zip(values, (1, 2, 3), strict=True)
    )
    assert catalog_problems(root) == []


@pytest.mark.parametrize(
    ("by", "values", "message"),
    [
        ("position", [1, 1, 3], "position '1' is bound twice"),
        ("text", ["Item 1", " item  1", "Item 3"], "question_text 'item 1' is bound twice"),
        ("position", [1, "two", 3], "by position needs a whole number"),
        ("text", ["Item 1", "", "Item 3"], "no value to bind by"),
        ("row", [1, 2, 3], "use field_key, position or text"),
    ],
)
def test_position_and_text_bindings_get_the_same_checks(tmp_path, by, values, message):
    root = _write(tmp_path, binding=_binding(by, values))
    with pytest.raises(PermanentError, match=message):
        load_bindings(root)


def test_a_position_binding_to_an_unknown_item_is_refused(tmp_path):
    binding = _binding("position", [1, 2, 3])
    binding["sections"][0]["bindings"][2]["item_id"] = "calm3_item9"
    with pytest.raises(PermanentError, match="unknown item 'calm3_item9'"):
        load_bindings(_write(tmp_path, binding=binding))


def test_finalform_scores_answers_bound_by_position(tmp_path):
    root = _write(tmp_path, measure=_aliased(), binding=_binding("position", [2, 3, 4]))
    answers = [
        {"question_id": "x1", "position": 1, "answer_value": "consent given"},  # unbound
        {"question_id": "x2", "position": 2, "answer_value": "often"},
        {"question_id": "x3", "position": 3, "answer_value": "a lot"},  # alias of often
        {"question_id": "x4", "position": 4, "answer_value": "never"},
    ]
    out = get_callable("finalform")({"items": [_row(answers)]}, _ctx(root))
    [event] = out["items"]
    [obs] = out["observations"]
    # 2 + 2 + reversed(never = 0) -> 2 = 6
    assert (obs["measure_code"], obs["value_numeric"], obs["severity_code"]) == (
        "calm3_total", 6, "high"
    )  # fmt: skip
    assert event["metadata"]["unmapped_questions"] == 1
    assert [f["code"] for f in out["safety_flags"]] == ["calm3_item2"]


def test_finalform_scores_answers_bound_by_text(tmp_path):
    root = _write(tmp_path, binding=_binding("text", ["Item 1", "Item 2", "Item 3"]))
    answers = [
        {"question_id": f"x{n}", "question_text": f"  ITEM {n} ", "answer_value": "sometimes"}
        for n in (1, 2, 3)
    ]
    out = get_callable("finalform")({"items": [_row(answers)]}, _ctx(root))
    assert out["stats"]["quarantined"] == 0
    [obs] = out["observations"]
    assert obs["value_numeric"] == 3


def test_two_answers_on_one_bound_position_are_quarantined(tmp_path):
    root = _write(tmp_path, binding=_binding("position", [1, 2, 3]))
    answers = [
        {"question_id": "a", "position": 1, "answer_value": "often"},
        {"question_id": "b", "position": 1, "answer_value": "never"},
    ]
    out = get_callable("finalform")({"items": [_row(answers)]}, _ctx(root))
    assert out["items"] == [] and out["stats"]["quarantined"] == 1
    [flag] = out["safety_flags"]
    assert flag["reason"] == "calm3 item 1: E_BOUND_TWICE"
    assert "often" not in json.dumps(flag) and "never" not in json.dumps(flag)


def test_a_position_bound_form_without_positions_scores_nothing_by_guess(tmp_path):
    root = _write(tmp_path, binding=_binding("position", [1, 2, 3]))
    answers = [{"question_id": f"q{n}", "answer_value": "often"} for n in (1, 2, 3)]
    out = get_callable("finalform")({"items": [_row(answers)]}, _ctx(root))
    [event] = out["items"]
    assert out["observations"] == [] and event["metadata"]["unmapped_questions"] == 3

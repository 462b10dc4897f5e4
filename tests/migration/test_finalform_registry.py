"""The original finalform's JSON registries load next to the YAML instruments.

``measure-registry/measures/<id>/<1-0-0>.json`` (``type: measure_spec``) and
``form-binding-registry/bindings/<id>/<1-0-0>.json`` (``type: form_binding_spec``),
scored by the same scorer with the same checks. Fixtures are written here in
the original's shape (a made-up three-item measure, not a published one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorchestra_dagster.catalog_service import load_report
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.instruments import load_instruments
from lorchestra_dagster.instruments.finalform_registry import SAFETY_RULES
from lorchestra_dagster.instruments.registry import load_bindings
from lorchestra_dagster.instruments.safety import evaluate_rules
from lorchestra_dagster.instruments.scorer import score

pytestmark = pytest.mark.unit

REPO_CATALOG = Path(__file__).resolve().parents[2] / "jobs"
FREQ = {"never": 0, "sometimes": 1, "often": 2}


def _measure(**over) -> dict:
    spec = {
        "type": "measure_spec",
        "measure_id": "calm3",
        "version": "1.0.0",
        "name": "Calm-3 (test measure)",
        "kind": "questionnaire",
        "locale": "en-US",
        "aliases": ["CALM-3"],
        "description": "Three made-up items",
        "items": [
            {"item_id": f"calm3_item{n}", "position": n, "text": f"Item {n}",
             "response_map": FREQ, "aliases": {}}
            for n in (1, 2, 3)
        ] + [{"item_id": "calm3_item4", "position": 4, "text": "How hard was it?",
              "response_map": {"not hard": 0, "hard": 1}, "aliases": {}}],
        "scales": [
            {
                "scale_id": "calm3_total",
                "name": "Calm-3 total",
                "items": ["calm3_item1", "calm3_item2", "calm3_item3"],
                "method": "sum",
                "reversed_items": ["calm3_item3"],
                "min": 0,
                "max": 6,
                "missing_allowed": 0,
                "interpretations": [
                    {"min": 0, "max": 2, "label": "Low"},
                    {"min": 3, "max": 6, "label": "High"},
                ],
            }
        ],
    }  # fmt: skip
    spec.update(over)
    return spec


BINDING = {
    "type": "form_binding_spec",
    "form_id": "googleforms::1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "binding_id": "checkin",
    "version": "1.0.0",
    "description": "Check-in form",
    "sections": [
        {
            "name": "Calm-3",
            "measure_id": "calm3",
            "measure_version": "1.0.0",
            "bindings": [
                {"item_id": f"calm3_item{n}", "by": "field_key", "value": f"q{n}"}
                for n in (1, 2, 3)
            ],
        }
    ],
}


def _write(root: Path, measure: dict | None = None, binding: dict | None = None) -> Path:
    m = root / "measure-registry" / "measures" / "calm3" / "1-0-0.json"
    m.parent.mkdir(parents=True)
    m.write_text(json.dumps(measure or _measure(), indent=2))
    b = root / "form-binding-registry" / "bindings" / "checkin" / "1-0-0.json"
    b.parent.mkdir(parents=True)
    b.write_text(json.dumps(binding or BINDING, indent=2))
    return root


def test_a_measure_spec_loads_and_scores_with_the_same_scorer(tmp_path):
    root = _write(tmp_path)
    inst = load_instruments(root)["calm3"]
    assert [i.scored for i in inst.items] == [True, True, True, False]
    assert inst.scales[0].reversed == [3] and [b.code for b in inst.scales[0].bands] == [
        "low",
        "high",
    ]
    assert "finalform" in inst.source
    # item 3 reversed: often (2) scores 0
    result = score(inst, {1: "Often", 2: "sometimes", 3: "often"})
    total = result.scales[0]
    assert total.value == 3 and total.severity_code == "high"


def test_a_form_binding_spec_loads_by_field_key(tmp_path):
    root = _write(tmp_path)
    binding = load_bindings(root)["checkin"]
    assert binding.form_id == "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
    assert binding.instruments == ["calm3"]
    assert [(q.question_id, q.item) for q in binding.questions] == [("q1", 1), ("q2", 2), ("q3", 3)]
    assert load_report(root).errors == []


def test_a_band_gap_is_reported_as_for_yaml_instruments(tmp_path):
    bad = _measure()
    bad["scales"][0]["interpretations"][1]["min"] = 4
    root = _write(tmp_path, measure=bad)
    issues = [i for i in load_report(root).errors if i.code == "L073"]
    [issue] = [i for i in issues if "measure-registry" in i.path]
    assert "gap or overlap" in issue.message and issue.path.endswith("1-0-0.json")


def test_binding_by_an_unknown_kind_is_refused_with_the_reason(tmp_path):
    binding = json.loads(json.dumps(BINDING))
    binding["sections"][0]["bindings"][0]["by"] = "row"
    root = _write(tmp_path, binding=binding)
    with pytest.raises(PermanentError, match="binds by .row."):
        load_bindings(root)


def test_the_yaml_instrument_wins_and_phq9_keeps_its_item9_flag(tmp_path):
    root = tmp_path / "cat"
    (root / "instruments").mkdir(parents=True)
    for name in ("phq9.yaml",):
        (root / "instruments" / name).write_text((REPO_CATALOG / "instruments" / name).read_text())
    imported = _measure(measure_id="phq9", name="imported PHQ-9")
    imported["items"] = [dict(it, item_id=f"phq9_item{it['position']}") for it in imported["items"]]
    for scale in imported["scales"]:
        scale["items"] = [i.replace("calm3", "phq9") for i in scale["items"]]
        scale["reversed_items"] = []
    m = root / "measure-registry" / "measures" / "phq9" / "1-0-0.json"
    m.parent.mkdir(parents=True)
    m.write_text(json.dumps(imported))
    inst = load_instruments(root)["phq9"]
    assert inst.name != "imported PHQ-9"
    assert [r.code for r in inst.safety_rules] == ["phq9_item9", "phq9_item9_unanswered"]


def test_an_imported_phq9_without_flags_still_flags_item9(tmp_path):
    items = [
        {"item_id": f"phq9_item{n}", "position": n, "text": f"Item {n}", "response_map": FREQ}
        for n in range(1, 10)
    ]
    spec = _measure(
        measure_id="phq9",
        items=items,
        scales=[
            {"scale_id": "phq9_total", "name": "total", "items": [i["item_id"] for i in items],
             "method": "sum", "min": 0, "max": 18, "interpretations": []}
        ],
    )  # fmt: skip
    m = tmp_path / "measure-registry" / "measures" / "phq9" / "1-0-0.json"
    m.parent.mkdir(parents=True)
    m.write_text(json.dumps(spec))
    inst = load_instruments(tmp_path)["phq9"]
    assert [h.code for h in evaluate_rules(inst, {9: "sometimes"})] == ["phq9_item9"]
    # a blank item 9 is a signal of its own, as with the shipped PHQ-9
    assert [h.code for h in evaluate_rules(inst, {1: "never"})] == ["phq9_item9_unanswered"]


def test_the_default_rules_of_an_import_are_the_shipped_ones():
    shipped = load_instruments(REPO_CATALOG)
    for code, rules in SAFETY_RULES.items():
        assert rules == shipped[code].safety_rules, code


def test_an_old_threshold_flag_reads_as_a_critical_rule(tmp_path):
    spec = _measure(
        flags=[{"code": "calm3_item2", "item": 2, "min_value": 2, "message": "ask"}],
    )
    m = tmp_path / "measure-registry" / "measures" / "calm3" / "1-0-0.json"
    m.parent.mkdir(parents=True)
    m.write_text(json.dumps(spec))
    [rule] = load_instruments(tmp_path)["calm3"].safety_rules
    assert (rule.condition.op, rule.condition.value, rule.severity) == (">=", 2, "critical")

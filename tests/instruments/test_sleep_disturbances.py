"""The practice's sleep disturbances scale: shipped as YAML, equal to the original registry's spec.

The fixture is a ``measure_spec`` written here in the original finalform's shape (items with a
``response_map`` of uneven values and answer ``aliases``, one summed scale, four bands) so the
test pins that the YAML keeps the registry's scoring: every one of the 625 answer sets gets the
same total and the same band from both, through the one scorer.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from lorchestra_dagster.instruments import get_instrument
from lorchestra_dagster.instruments.finalform_registry import measure_to_instrument
from lorchestra_dagster.instruments.scorer import score

pytestmark = pytest.mark.unit

CATALOG = Path(__file__).resolve().parents[2] / "jobs"
ANSWERS = {
    "never (<1/wk)": 0,
    "occasionally (~1/wk)": 1,
    "sometimes (~2/wk)": 2,
    "often (3-5/wk)": 4,
    "always (6-7/wk)": 6,
}
ALIASES = {
    "never": "never (<1/wk)",
    "0-1 per week": "occasionally (~1/wk)",
    "1-2 per week": "sometimes (~2/wk)",
    "3+ per week": "often (3-5/wk)",
    "every night or nearly so": "always (6-7/wk)",
}


def _registry_spec(tmp_path: Path):
    items = [
        {
            "item_id": f"sleep_disturbances_item{n}",
            "position": n,
            "text": f"item {n}",
            "response_map": ANSWERS,
            "aliases": ALIASES,
        }
        for n in range(1, 5)
    ]
    bands = [(0, 6, "Minimal Sleep Issues"), (7, 13, "Mild Sleep Issues")]
    bands += [(14, 19, "Moderate Sleep Issues"), (20, 26, "Severe Sleep Issues")]
    data = {
        "type": "measure_spec",
        "measure_id": "sleep_disturbances",
        "version": "1.0.0",
        "name": "Sleep Disturbances Scale",
        "items": items,
        "scales": [
            {
                "scale_id": "sleep_disturbances_total",
                "items": [it["item_id"] for it in items],
                "method": "sum",
                "reversed_items": [],
                "min": 0,
                "max": 26,
                "missing_allowed": 0,
                "interpretations": [{"min": a, "max": b, "label": lab} for a, b, lab in bands],
            }
        ],
    }
    path = tmp_path / "1-0-0.json"
    path.write_text(json.dumps(data))
    return measure_to_instrument(data, path)


def test_the_shipped_scale_says_it_is_the_practices_own():
    spec = get_instrument(CATALOG, "sleep_disturbances")
    assert spec.origin == "local"
    assert "no publication" in spec.source
    assert [s.code for s in spec.scales] == ["sleep_disturbances_total"]
    assert spec.scales[0].max == 24  # four items of at most 6; the registry's 26 is unreachable


def test_every_answer_set_scores_as_the_original_registry_did(tmp_path):
    shipped = get_instrument(CATALOG, "sleep_disturbances")
    original = _registry_spec(tmp_path)
    labels = {b.code: b.label.casefold() for b in shipped.scales[0].bands}
    count = 0
    for combo in itertools.product(sorted(ANSWERS.values()), repeat=4):
        answers = dict(enumerate(combo, start=1))
        ours = score(shipped, answers).scales[0]
        theirs = score(original, answers).scales[0]
        assert ours.value == theirs.value == sum(combo)
        assert labels[ours.severity_code] == theirs.severity_code.replace("_", " ")
        count += 1
    assert count == 5**4


def test_the_registrys_answer_aliases_are_answers_of_the_shipped_scale():
    spec = get_instrument(CATALOG, "sleep_disturbances")
    texts = {t for o in spec.options(1) for t in o.texts()}
    assert set(ALIASES) <= texts and {a.casefold() for a in ANSWERS} <= texts

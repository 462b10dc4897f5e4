"""Golden tests: every transform in the catalog, every input/expected pair, both engines.

New transforms are picked up automatically; a transform without golden pairs,
or a pair file the meta does not list, fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kit import JOBS as CATALOG

from lorchestra_dagster.callables.jsonata_engine import ENGINES
from lorchestra_dagster.callables.transforms import load_meta, load_transform, transform_dirs

pytestmark = pytest.mark.unit

DIRS = transform_dirs(CATALOG)


def _cases() -> list:
    out = []
    for tid, folder in sorted(DIRS.items()):
        for test in load_meta(folder).tests:
            name = Path(test.input).name.removesuffix(".input.json")
            for engine in ENGINES:
                out.append(
                    pytest.param(
                        tid, test.input, test.expected, engine, id=f"{tid}:{name}:{engine}"
                    )
                )
    return out


def test_catalog_has_every_documented_transform():
    expected = {
        "email/gmail_to_jmap_lite@1.0.0",
        "email/graph_to_jmap_lite@1.0.0",
        "forms/google_forms_to_form_response@1.0.0",
        "contact/dataverse_contact_to_contact@1.0.0",
        "clinical/dataverse_session_to_clinical_session@1.0.0",
        "clinical/dataverse_session_to_session_transcript@1.0.0",
        "clinical/dataverse_session_to_session_note@1.0.0",
        "clinical/dataverse_session_to_session_summary@1.0.0",
        "clinical/dataverse_report_to_clinical_document@1.0.0",
        "payment/stripe_customer_to_payment_customer@1.0.0",
        "payment/stripe_invoice_to_payment_invoice@1.0.0",
        "payment/stripe_payment_intent_to_payment_intent@1.0.0",
        "payment/stripe_refund_to_payment_refund@1.0.0",
    }
    assert expected <= set(DIRS)


@pytest.mark.parametrize("tid", sorted(DIRS))
def test_every_transform_has_golden_pairs_and_no_strays(tid):
    folder = DIRS[tid]
    meta = load_meta(folder)
    assert meta.tests, f"{tid} has no golden tests"
    listed = {t.input for t in meta.tests} | {t.expected for t in meta.tests}
    on_disk = {str(p.relative_to(folder)) for p in (folder / "tests").glob("*.json")}
    assert on_disk == listed


@pytest.mark.parametrize(("tid", "input_path", "expected_path", "engine"), _cases())
def test_golden(tid, input_path, expected_path, engine):
    transform = load_transform(CATALOG, tid, engine=engine)
    folder = DIRS[tid]
    payload = json.loads((folder / input_path).read_text(encoding="utf-8"))
    expected = json.loads((folder / expected_path).read_text(encoding="utf-8"))
    # apply() validates the input against from_schema and the output against to_schema.
    assert transform.apply(payload) == expected

"""The synthetic practice: deterministic, fictional, consistent with the catalog, scalable."""

from __future__ import annotations

import base64
from collections import Counter

import pytest
import yaml
from sources_kit import REPO

from lorchestra_dagster.sources.sandbox.generate import generate
from lorchestra_dagster.sources.sandbox.shapes import FV
from lorchestra_dagster.sources.sandbox.streams import STREAMS

pytestmark = pytest.mark.unit


def test_same_seed_same_hash_other_seed_other_hash():
    assert generate(6, 5).sha256() == generate(6, 5).sha256()
    assert generate(6, 5).sha256() != generate(6, 6).sha256()


def test_every_stream_has_objects_with_unique_ids(base_practice):
    for sid, objs in base_practice.streams.items():
        ids = [o[STREAMS[sid].id_field] for o in objs]
        assert ids and len(ids) == len(set(ids)), sid


def test_forms_follow_the_catalog_bindings_and_instruments(base_practice):
    for form_id in ("intake_01", "intake_02", "followup"):
        binding = yaml.safe_load((REPO / "jobs" / "bindings" / f"{form_id}.yaml").read_text())
        qids = [q["question_id"] for q in binding["questions"]]
        definition = base_practice.form_definitions()[form_id]
        served = [i["questionItem"]["question"]["questionId"] for i in definition["items"]]
        assert served == qids
        options = {
            i["questionItem"]["question"]["questionId"]: {
                o["value"] for o in i["questionItem"]["question"]["choiceQuestion"]["options"]
            }
            for i in definition["items"]
        }
        for resp in base_practice.streams[f"forms_{form_id}"]:
            assert set(resp["answers"]) == set(qids)
            for qid, ans in resp["answers"].items():
                assert ans["questionId"] == qid
                assert ans["textAnswers"]["answers"][0]["value"] in options[qid]


def test_some_clients_answer_phq9_item9_above_zero_and_scores_move(base_practice):
    binding = yaml.safe_load((REPO / "jobs" / "bindings" / "intake_01.yaml").read_text())
    item9 = next(
        q["question_id"]
        for q in binding["questions"]
        if q["instrument"] == "phq9" and q["item"] == 9
    )
    values = Counter(
        r["answers"][item9]["textAnswers"]["answers"][0]["value"]
        for r in base_practice.streams["forms_intake_01"]
    )
    assert sum(n for v, n in values.items() if v != "Not at all") >= 1
    # Follow-ups of one client differ over time (answers move).
    by_client: dict[str, set[str]] = {}
    for r in base_practice.streams["forms_followup"]:
        answers = tuple(
            sorted((k, v["textAnswers"]["answers"][0]["value"]) for k, v in r["answers"].items())
        )
        by_client.setdefault(r["respondentEmail"], set()).add(str(answers))
    assert any(len(v) > 1 for v in by_client.values())


def test_native_shapes(base_practice):
    msg = base_practice.streams["gmail_acct1"][0]
    assert msg["internalDate"].isdigit()
    part = msg["payload"]["parts"][1]
    assert part["mimeType"] == "text/html"
    assert base64.urlsafe_b64decode(part["body"]["data"]).decode().startswith("<div")
    contact = base_practice.streams["dataverse_contacts"][0]
    assert contact["cr_lifecyclestage" + FV] and contact["modifiedon"].endswith("Z")
    session = base_practice.streams["dataverse_sessions"][0]
    assert session["_cr_client_value"] in {
        c["contactid"] for c in base_practice.streams["dataverse_contacts"]
    }
    assert "<p>" in session["cr_transcript"] and "<h3>" in session["cr_notes"]
    assert base_practice.streams["stripe_invoices"][0]["object"] == "invoice"


def test_all_addresses_are_reserved_example_domains(base_practice):
    emails = [c["emailaddress1"] for c in base_practice.streams["dataverse_contacts"]]
    assert all(e.split("@")[1].split(".")[-2] == "example" for e in emails)


def test_add_clients_appends_only_later_objects(base_practice):
    import copy

    from lorchestra_dagster.timestamps import parse_utc as to_utc

    practice = copy.deepcopy(base_practice)
    before = {
        sid: max(to_utc(o[STREAMS[sid].source_ts_field]) for o in objs)
        for sid, objs in practice.streams.items()
    }
    old_counts = practice.counts()
    added = practice.add_clients(3)
    assert added["dataverse_contacts"] == 3
    for sid, objs in practice.streams.items():
        new = objs[old_counts[sid] :]
        assert len(new) == added[sid]
        assert all(to_utc(o[STREAMS[sid].source_ts_field]) > before[sid] for o in new), sid


@pytest.mark.slow
def test_scales_to_many_clients():
    # Speed at 10,000 clients is measured by bench/bench_generator.py, not asserted here.
    practice = generate(1_000, 7)
    counts = practice.counts()
    assert counts["dataverse_contacts"] == 1_000
    assert counts["stripe_customers"] == 1_000
    assert len({c["contactid"] for c in practice.streams["dataverse_contacts"]}) == 1_000


SOURCE_SCHEMAS = {
    "gmail_acct1": "com.google/gmail_message",
    "gmail_acct2": "com.google/gmail_message",
    "exchange_office": "com.microsoft/graph_message",
    "dataverse_contacts": "com.microsoft/dataverse_contact",
    "dataverse_sessions": "com.microsoft/dataverse_client_session",
    "dataverse_reports": "com.microsoft/dataverse_client_report",
    "stripe_customers": "com.stripe/customer",
    "stripe_invoices": "com.stripe/invoice",
    "stripe_payment_intents": "com.stripe/payment_intent",
    "stripe_refunds": "com.stripe/refund",
    "forms_intake_01": "com.google/forms_response",
    "forms_intake_02": "com.google/forms_response",
    "forms_followup": "com.google/forms_response",
}


def _validator(name: str):
    import json

    import jsonschema

    path = REPO / "jobs" / "schemas" / name / "jsonschema" / "1-0-0.json"
    schema = json.loads(path.read_text())
    return jsonschema.validators.validator_for(schema)(schema)


@pytest.mark.parametrize("stream", sorted(SOURCE_SCHEMAS))
def test_objects_validate_against_the_catalog_source_schemas(base_practice, stream):
    validator = _validator(SOURCE_SCHEMAS[stream])
    for obj in base_practice.streams[stream]:
        errors = [e.message for e in validator.iter_errors(obj)]
        assert not errors, (stream, errors[:3])


def test_sample_drop_folder_notes_validate():
    import json

    validator = _validator("io.lorchestra/jsonl_note")
    for path in sorted((REPO / "samples" / "drop_folder").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            assert not list(validator.iter_errors(json.loads(line))), path.name

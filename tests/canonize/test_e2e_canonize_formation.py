"""Raw rows of the synthetic practice -> pipeline.canonize -> pipeline.formation on a temp DuckDB.

Checks row counts per canonical format, a score traced by hand from one
generated submission, and that a rerun reads and writes nothing.
"""

from __future__ import annotations

import hashlib

import pytest
from kit import JOBS as CATALOG
from run_helpers import run_pipeline

from lorchestra_dagster.callables.finalform import subject_id
from lorchestra_dagster.engine import Services, execute_with
from lorchestra_dagster.instruments import get_instrument, load_bindings
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.sources.sandbox.generate import generate
from lorchestra_dagster.sources.sandbox.streams import STREAMS
from lorchestra_dagster.storacle.plan import make_plan

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def practice():
    return generate(clients=5, seed=7, catalog_dir=CATALOG)


@pytest.fixture
def services(tmp_path):
    settings = Settings.from_env(jobs_dir=CATALOG, home=tmp_path / "home")
    svc = Services.from_settings(settings, env={})
    yield svc
    svc.client.close()


def _seed_raw(svc, practice) -> int:
    """Write the practice's objects into raw.raw_objects as the ingest jobs would."""
    rows = []
    for stream, objs in practice.streams.items():
        info = STREAMS.get(stream)
        if info is None:
            continue
        for obj in objs:
            rows.append(
                {
                    "idem_key": f"{info.source_system}:{info.connection_name}:"
                    f"{info.object_type}:{obj[info.id_field]}",
                    "source_system": info.source_system,
                    "connection_name": info.connection_name,
                    "object_type": info.object_type,
                    "external_id": str(obj[info.id_field]),
                    "payload": obj,
                    "first_seen": "2026-11-28T06:00:00+00:00",
                    "last_seen": "2026-11-28T06:00:00+00:00",
                    "correlation_id": "seed",
                }
            )
    op = {"dataset": "raw", "table": "raw_objects", "key_columns": ["idem_key"], "rows": rows}
    plan = make_plan([("bq.upsert", op)], {"run_id": "seed"})
    svc.client.execute_plan(plan.model_dump(mode="json"))
    return len(rows)


def _count(svc, sql: str) -> dict:
    return {r["k"]: r["n"] for r in svc.client.sql(sql)}


def test_canonize_then_formation_and_rerun_is_a_no_op(services, practice):
    n_raw = _seed_raw(services, practice)
    canon = run_pipeline("pipeline.canonize", services, max_workers=2)
    assert canon.status == "succeeded", [j.error for j in canon.jobs if j.error]

    counts = _count(
        services,
        "SELECT canonical_format AS k, count(*) AS n FROM canonical.canonical_objects GROUP BY 1",
    )
    s = practice.streams
    n_forms = len(s["forms_intake_01"]) + len(s["forms_intake_02"]) + len(s["forms_followup"])
    assert counts["jmap_lite"] == len(s["gmail_acct1"]) + len(s["gmail_acct2"]) + len(
        s["exchange_office"]
    )
    assert counts["contact"] == len(s["dataverse_contacts"])
    for fmt in ("clinical_session", "session_transcript", "session_note", "session_summary"):
        assert counts[fmt] == len(s["dataverse_sessions"])
    assert counts["clinical_document"] == len(s["dataverse_reports"])
    assert counts["form_response"] == n_forms
    assert counts["payment_invoice"] == len(s["stripe_invoices"])
    assert counts.get("payment_refund", 0) == len(s["stripe_refunds"])
    total = sum(counts.values())
    assert total == n_raw + 4 * len(s["dataverse_sessions"]) - len(s["dataverse_sessions"])

    # Small batches: each batch writes its observations then its events before the next page.
    form = execute_with({"job_id": "formation_form_responses", "batch_size": 5}, services)
    assert form.status == "succeeded", form.error
    assert form.rows_read == n_forms
    events = services.client.sql("SELECT * FROM derived.measurement_events ORDER BY idem_key")
    assert len(events) == n_forms
    assert all(e["idem_key"].endswith("#form_response") for e in events)
    assert all(e["binding_id"] in {"intake_01", "intake_02", "followup"} for e in events)

    # Trace one PHQ-9 score by hand from the generated native response.
    response = s["forms_intake_01"][0]
    binding = load_bindings(CATALOG)["intake_01"]
    phq9 = get_instrument(CATALOG, "phq9")
    texts = {o.text: o.value for o in phq9.response_sets["frequency"]}
    item_of = {q.question_id: q.item for q in binding.questions if q.instrument == "phq9"}
    by_item = {
        item_of[qid]: a["textAnswers"]["answers"][0]["value"]
        for qid, a in response["answers"].items()
        if qid in item_of
    }
    expected = sum(texts[by_item[i]] for i in range(1, 10))
    key = f"google_forms:intake_01:form_response:{response['responseId']}#form_response:phq9_total"
    (obs,) = services.client.sql(
        "SELECT value_numeric, severity_code, subject_id, flags FROM derived.observations "
        f"WHERE idem_key = '{key}'"
    )
    assert obs["value_numeric"] == expected
    assert obs["subject_id"] == subject_id(response["respondentEmail"])
    assert (
        obs["subject_id"]
        == hashlib.sha256(response["respondentEmail"].lower().encode()).hexdigest()
    )
    has_flag = "phq9_item9" in str(obs["flags"])
    assert has_flag == (texts[by_item[9]] > 0)

    snapshot = {
        t: services.client.sql(f"SELECT * FROM {t} ORDER BY idem_key")
        for t in (
            "canonical.canonical_objects",
            "derived.measurement_events",
            "derived.observations",
        )
    }
    again = run_pipeline("pipeline.canonize", services, max_workers=2)
    assert again.status == "succeeded"
    assert sum(j.rows_read for j in again.jobs) == 0
    assert sum(j.rows_written for j in again.jobs) == 0
    form2 = execute_with({"job_id": "formation_form_responses"}, services)
    # No submission is read again; the one read is the job's state (its active safety flags).
    [active] = services.client.sql("SELECT count(*) AS n FROM derived.safety_flags WHERE active")
    assert (form2.rows_read, form2.rows_written) == (active["n"], 0)
    assert next(s for s in form2.steps if s.step_id == "read").rows_out == 0
    for table, rows in snapshot.items():
        assert services.client.sql(f"SELECT * FROM {table} ORDER BY idem_key") == rows


def test_changed_raw_row_is_recanonized_and_rescored(services, practice):
    _seed_raw(services, practice)
    assert run_pipeline("pipeline.canonize", services).status == "succeeded"
    assert execute_with({"job_id": "formation_form_responses"}, services).status == "succeeded"

    # The client edits one follow-up response: PHQ-9 items 1-9 become "Nearly every day".
    response = dict(practice.streams["forms_followup"][0])
    phq9_qids = {
        q.question_id
        for q in load_bindings(CATALOG)["followup"].questions
        if q.instrument == "phq9" and q.item <= 9
    }
    nearly = {"textAnswers": {"answers": [{"value": "Nearly every day"}]}}
    response["answers"] = {
        qid: ({"questionId": qid, **nearly} if qid in phq9_qids else a)
        for qid, a in response["answers"].items()
    }
    response["lastSubmittedTime"] = "2026-11-28T09:00:00.000000Z"
    key = f"google_forms:followup:form_response:{response['responseId']}"
    op = {
        "dataset": "raw",
        "table": "raw_objects",
        "key_columns": ["idem_key"],
        "rows": [{"idem_key": key, "payload": response, "last_seen": "2099-01-01T00:00:00+00:00"}],
        "skip_update_columns": [],
    }
    services.client.execute_plan(
        make_plan([("bq.upsert", op)], {"run_id": "edit"}).model_dump(mode="json")
    )
    canon = execute_with({"job_id": "canonize_google_forms_response"}, services)
    assert (canon.rows_read, canon.rows_written) == (1, 1)
    form = execute_with({"job_id": "formation_form_responses"}, services)
    assert form.status == "succeeded", form.error
    assert next(s for s in form.steps if s.step_id == "read").rows_out == 1
    (obs,) = services.client.sql(
        "SELECT value_numeric, severity_code FROM derived.observations "
        f"WHERE idem_key = '{key}#form_response:phq9_total'"
    )
    assert (obs["value_numeric"], obs["severity_code"]) == (27, "severe")

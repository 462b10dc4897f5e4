"""A tiny hand-made practice as canonical and derived rows (shapes of docs/canonical.md).

Two clients (Ada, Ben), three sessions with texts, a report, three emails, two form
submissions (one from a respondent who is no client), Stripe customers, payments,
three invoices (one of no client) and a refund, and scored observations with two PHQ-9
item 9 flags (and their safety_flags rows). The expected view counts below are worked
out by hand from these rows.
"""

from __future__ import annotations

import hashlib
from typing import Any

from lorchestra_dagster.storacle.plan import make_plan

T0 = "2026-03-01T06:00:00+00:00"
ADA, BEN = "c0a1-ada", "c0b2-ben"

EXPECTED_VIEW_ROWS = {
    "proj_clients": 2,
    "proj_sessions": 3,
    "proj_transcripts": 1,
    "proj_clinical_documents": 5,
    "proj_form_responses": 2,
    "proj_contact_events": 10,
    "proj_measurements": 3,
    "proj_invoices": 3,
    "proj_alerts": 2,
}
#: local.db table -> (view, key column)
SQLITE_TABLES = {
    "clients": ("proj_clients", "client_id"),
    "sessions": ("proj_sessions", "session_id"),
    "transcripts": ("proj_transcripts", "transcript_id"),
    "clinical_documents": ("proj_clinical_documents", "document_id"),
    "form_responses": ("proj_form_responses", "idem_key"),
    "contact_events": ("proj_contact_events", "event_id"),
    "measurements": ("proj_measurements", "idem_key"),
    "invoices": ("proj_invoices", "invoice_id"),
}


def subject(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _canon(fmt: str, raw_key: str, payload: dict[str, Any], at: str = T0) -> dict[str, Any]:
    system, conn, obj, _ = raw_key.split(":", 3)
    return {
        "idem_key": f"{raw_key}#{fmt}",
        "source_system": system,
        "connection_name": conn,
        "object_type": obj,
        "canonical_schema": f"iglu:org.canonical/{fmt}/jsonschema/1-0-0",
        "canonical_format": "jmap_lite" if fmt == "email_jmap_lite" else fmt,
        "transform_ref": f"test/{fmt}@1.0.0",
        "correlation_id": "test",
        "payload": payload,
        "canonicalized_at": at,
        "created_at": at,
    }


def _contact(cid: str, first: str, last: str, email: str) -> dict[str, Any]:
    return _canon(
        "contact",
        f"dataverse:practice:contact:{cid}",
        {
            "contact_id": cid,
            "client_number": f"C-{cid[:4]}",
            "first_name": first,
            "last_name": last,
            "full_name": f"{first} {last}",
            "email": email,
            "mobile_phone": None,
            "birthdate": "1990-01-01",
            "client_type": "Individual",
            "client_type_code": 100000000,
            "lifecycle_stage": "Active",
            "lifecycle_stage_code": 100000002,
            "status": "Active",
            "created_at": "2025-12-01T00:00:00.000Z",
            "modified_at": "2025-12-01T00:00:00.000Z",
        },
    )


def _session(sid: str, cid: str, number: int, when: str) -> list[dict[str, Any]]:
    raw = f"dataverse:practice:client_session:{sid}"
    base = {"session_id": sid, "contact_id": cid, "session_number": number, "session_date": when}
    rows = [
        _canon(
            "clinical_session",
            raw,
            {
                **base,
                "session_name": f"Session {number}",
                "duration_minutes": 50,
                "clinician": "Dr Who",
                "session_type": "Therapy session",
                "session_type_code": 1,
                "status": "Completed",
                "has_transcript": sid == "s1",
                "has_note": True,
                "has_summary": sid == "s1",
                "created_at": when,
                "modified_at": when,
            },
        )
    ]
    texts = {"session_note": f"Note of {sid}"}
    if sid == "s1":
        texts |= {"session_transcript": "T: Hello.\n\nC: Hi.", "session_summary": "Summary"}
    for fmt, content in texts.items():
        rows.append(
            _canon(
                fmt,
                raw,
                {**base, "content": content, "content_format": "markdown", "modified_at": when},
            )
        )
    return rows


def _email(mid: str, frm: str, to: list[str], cc: list[str], when: str) -> dict[str, Any]:
    def addr(e: str) -> dict[str, Any]:
        return {"name": None, "email": e}

    return _canon(
        "email_jmap_lite",
        f"gmail:acct1:email:{mid}",
        {
            "id": mid,
            "threadId": mid,
            "receivedAt": when,
            "sentAt": when,
            "messageId": None,
            "from": [addr(frm)],
            "to": [addr(e) for e in to],
            "cc": [addr(e) for e in cc],
            "bcc": [],
            "replyTo": [],
            "subject": "private subject",
            "preview": "private",
            "bodyText": "private body",
            "bodyHtml": None,
            "hasAttachment": False,
            "attachments": [],
            "keywords": {},
            "labels": [],
        },
    )


def _form(rid: str, form: str, email: str, when: str) -> dict[str, Any]:
    return _canon(
        "form_response",
        f"google_forms:{form}:form_response:{rid}",
        {
            "response_id": rid,
            "form_id": form,
            "submitted_at": when,
            "created_at": when,
            "respondent_email": email,
            "answers": [{"question_id": "q1", "answer_value": "Several days"}],
        },
    )


def canonical_rows() -> list[dict[str, Any]]:
    rows = [
        _contact(ADA, "Ada", "Ashgrove", "Ada@Example.com "),
        _contact(BEN, "Ben", "Birch", "ben@example.com"),
        *_session("s1", ADA, 1, "2026-01-05T10:00:00.000Z"),
        *_session("s2", ADA, 2, "2026-01-12T10:00:00.000Z"),
        *_session("s3", BEN, 1, "2026-01-06T09:00:00.000Z"),
        _canon(
            "clinical_document",
            "dataverse:practice:client_report:r1",
            {
                "document_id": "r1",
                "contact_id": ADA,
                "title": "Progress report",
                "document_type": "Progress report",
                "document_type_code": 100000000,
                "document_date": "2026-02-01",
                "content": "Doing better.",
                "content_format": "markdown",
                "created_at": T0,
                "modified_at": T0,
            },
        ),
        _email(
            "m1", "ada@example.com", ["office@practice.example"], [], "2026-01-03T08:00:00.000Z"
        ),
        _email(
            "m2",
            "office@practice.example",
            ["ada@example.com"],
            ["BEN@example.com"],
            "2026-01-04T08:00:00.000Z",
        ),
        _email(
            "m3",
            "stranger@example.net",
            ["office@practice.example"],
            [],
            "2026-01-04T09:00:00.000Z",
        ),
        _form("f1", "intake_01", "ada@example.com", "2026-01-05T09:00:00.000Z"),
        _form("f2", "intake_01", "unknown@example.net", "2026-01-07T09:00:00.000Z"),
        _canon(
            "payment_customer",
            "stripe:practice:customer:cus1",
            {
                "customer_id": "cus1",
                "contact_id": ADA,
                "email": "ada@example.com",
                "name": "Ada Ashgrove",
                "description": None,
                "currency": "usd",
                "balance": 0,
                "delinquent": False,
                "livemode": False,
                "created_at": T0,
            },
        ),
        _canon(
            "payment_customer",
            "stripe:practice:customer:cus2",
            {
                "customer_id": "cus2",
                "contact_id": None,
                "email": "ben@example.com",
                "name": "Ben Birch",
                "description": None,
                "currency": "usd",
                "balance": 0,
                "delinquent": False,
                "livemode": False,
                "created_at": T0,
            },
        ),
    ]
    for pid, cus, status, when in (
        ("pi1", "cus1", "succeeded", "2026-01-05T11:00:00.000Z"),
        ("pi2", "cus2", "succeeded", "2026-01-06T11:00:00.000Z"),
        ("pi3", "cus1", "requires_payment_method", "2026-01-12T11:00:00.000Z"),
    ):
        rows.append(
            _canon(
                "payment_intent",
                f"stripe:practice:payment_intent:{pid}",
                {
                    "payment_intent_id": pid,
                    "customer_id": cus,
                    "invoice_id": None,
                    "charge_id": None,
                    "amount": 15000,
                    "amount_received": 15000,
                    "currency": "usd",
                    "status": status,
                    "description": None,
                    "payment_method_types": ["card"],
                    "created_at": when,
                },
            )
        )
    for iid, cus, status, paid, when in (
        ("in1", "cus1", "paid", 15000, "2026-01-05T10:00:00.000Z"),
        ("in2", "cus2", "open", 0, "2026-01-06T10:00:00.000Z"),
        ("in3", "cus9", "open", 0, "2026-01-07T10:00:00.000Z"),  # a customer of no client
    ):
        rows.append(
            _canon(
                "payment_invoice",
                f"stripe:practice:invoice:{iid}",
                {
                    "invoice_id": iid,
                    "customer_id": cus,
                    "customer_email": None,
                    "number": f"HV-{iid}",
                    "status": status,
                    "paid": status == "paid",
                    "currency": "usd",
                    "amount_due": 15000,
                    "amount_paid": paid,
                    "amount_remaining": 15000 - paid,
                    "description": "Session 1",
                    "created_at": when,
                    "due_date": "2026-02-01T10:00:00.000Z",
                    "lines": [],
                },
            )
        )
    rows.append(
        _canon(
            "payment_refund",
            "stripe:practice:refund:re1",
            {
                "refund_id": "re1",
                "payment_intent_id": "pi1",
                "charge_id": None,
                "amount": 5000,
                "currency": "usd",
                "reason": "requested_by_customer",
                "status": "succeeded",
                "created_at": "2026-01-20T11:00:00.000Z",
            },
        )
    )
    return rows


def derived_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(measurement_events, observations): Ada's intake (flagged) and an unknown respondent."""
    events, observations = [], []
    for rid, email, when in (
        ("f1", "ada@example.com", "2026-01-05T09:00:00+00:00"),
        ("f2", "unknown@example.net", "2026-01-07T09:00:00+00:00"),
    ):
        key = f"google_forms:intake_01:form_response:{rid}#form_response"
        events.append(
            {
                "idem_key": key,
                "canonical_idem_key": key,
                "binding_id": "intake_01",
                "binding_version": "1.0.0",
                "form_id": "intake_01",
                "subject_id": subject(email),
                "occurred_at": when,
                "metadata": {"response_id": rid},
                "correlation_id": "test",
                "processed_at": T0,
            }
        )
    scores = [
        ("f1", "phq9_total", "phq9", 14.0, "moderate", "Moderate", True),
        ("f1", "gad7_total", "gad7", 9.0, "mild", "Mild", False),
        ("f2", "phq9_total", "phq9", 3.0, "minimal", "Minimal", True),
    ]
    for (_rid, code, inst, value, sev, label, flagged), ev in zip(
        scores, [events[0], events[0], events[1]], strict=True
    ):
        observations.append(
            {
                "idem_key": f"{ev['idem_key']}:{code}",
                "measurement_event_idem_key": ev["idem_key"],
                "subject_id": ev["subject_id"],
                "measure_code": code,
                "instrument_code": inst,
                "value_numeric": value,
                "severity_code": sev,
                "severity_label": label,
                # gad7 was prorated over a missing item, near a cut-off
                "components": {"items": []}
                | ({"prorated": True, "crosses_cutoff": True} if inst == "gad7" else {}),
                "flags": [{"code": "phq9_item9", "message": "m", "item": 9}] if flagged else [],
                "occurred_at": ev["occurred_at"],
                "correlation_id": "test",
                "processed_at": T0,
            }
        )
    return events, observations


def flag_rows(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``derived.safety_flags`` rows formation writes for the flagged observations."""
    return [
        {
            "flag_id": f"{o['measurement_event_idem_key']}:phq9_item9",
            "measurement_event_idem_key": o["measurement_event_idem_key"],
            "subject_id": o["subject_id"],
            "form_id": "intake_01",
            "instrument_code": "phq9",
            "item": 9,
            "code": "phq9_item9",
            "severity": "critical",
            "message": "m",
            "reason": "answered",
            "item_value": 1,
            "active": True,
            "occurred_at": o["occurred_at"],
            "correlation_id": "test",
            "processed_at": T0,
        }
        for o in observations
        if o["flags"]
    ]


def seed_plan() -> Any:
    """One plan upserting the whole practice into canonical and derived."""
    events, observations = derived_rows()
    ops = [
        (
            "bq.upsert",
            {
                "dataset": "canonical",
                "table": "canonical_objects",
                "key_columns": ["idem_key"],
                "rows": canonical_rows(),
            },
        ),
        (
            "bq.upsert",
            {
                "dataset": "derived",
                "table": "measurement_events",
                "key_columns": ["idem_key"],
                "rows": events,
            },
        ),
        (
            "bq.upsert",
            {
                "dataset": "derived",
                "table": "observations",
                "key_columns": ["idem_key"],
                "rows": observations,
            },
        ),
        (
            "bq.upsert",
            {
                "dataset": "derived",
                "table": "safety_flags",
                "key_columns": ["flag_id"],
                "rows": flag_rows(observations),
            },
        ),
    ]
    return make_plan(ops, {"job_id": "test_seed", "step_id": "seed"})

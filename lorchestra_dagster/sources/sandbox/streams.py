"""The streams of the synthetic practice: one entry per shipped ingest stream.

The same ids name the stream in ``jobs/sources.yaml``, the ingest job
(``ingest_<stream id>``) and the sandbox's collections, so a test can compare
what was ingested with what was generated, stream by stream.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamInfo:
    """Where a stream's objects land in ``raw.raw_objects`` and how they are keyed."""

    source_system: str
    connection_name: str
    object_type: str
    id_field: str
    source_ts_field: str


STREAMS: dict[str, StreamInfo] = {
    "gmail_acct1": StreamInfo("gmail", "acct1", "email", "id", "internalDate"),
    "gmail_acct2": StreamInfo("gmail", "acct2", "email", "id", "internalDate"),
    "exchange_office": StreamInfo("exchange", "office", "email", "id", "receivedDateTime"),
    "dataverse_contacts": StreamInfo("dataverse", "practice", "contact", "contactid", "modifiedon"),
    "dataverse_sessions": StreamInfo(
        "dataverse", "practice", "client_session", "cr_clientsessionid", "modifiedon"
    ),
    "dataverse_reports": StreamInfo(
        "dataverse", "practice", "client_report", "cr_clientreportid", "modifiedon"
    ),
    "stripe_customers": StreamInfo("stripe", "practice", "customer", "id", "created"),
    "stripe_invoices": StreamInfo("stripe", "practice", "invoice", "id", "created"),
    "stripe_payment_intents": StreamInfo("stripe", "practice", "payment_intent", "id", "created"),
    "stripe_refunds": StreamInfo("stripe", "practice", "refund", "id", "created"),
    "forms_intake_01": StreamInfo(
        "google_forms", "intake_01", "form_response", "responseId", "lastSubmittedTime"
    ),
    "forms_intake_02": StreamInfo(
        "google_forms", "intake_02", "form_response", "responseId", "lastSubmittedTime"
    ),
    "forms_followup": StreamInfo(
        "google_forms", "followup", "form_response", "responseId", "lastSubmittedTime"
    ),
}

DATAVERSE_ENTITY_SETS = {
    "dataverse_contacts": "contacts",
    "dataverse_sessions": "cr_clientsessions",
    "dataverse_reports": "cr_clientreports",
}
STRIPE_RESOURCES = {
    "stripe_customers": "customers",
    "stripe_invoices": "invoices",
    "stripe_payment_intents": "payment_intents",
    "stripe_refunds": "refunds",
}

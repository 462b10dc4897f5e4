"""The billing and questionnaire pages of a client, rendered by their pure callables."""

from __future__ import annotations

import pytest
from kit import REPO

from lorchestra_dagster.callables import CallContext, get_callable
from lorchestra_dagster.callables.vault_billing import balances, money

pytestmark = pytest.mark.unit

CTX = CallContext(catalog_dir=REPO / "jobs", home=REPO / ".unused")
T = "2026-03-01T06:00:00+00:00"
CLIENT = {"client_id": "c1", "first_name": "Ada", "last_name": "Ashgrove", "updated_at": T}


def _invoice(iid: str, status: str, remaining: int, currency: str = "usd") -> dict:
    return {
        "invoice_id": iid,
        "client_id": "c1",
        "number": f"N-{iid}",
        "status": status,
        "currency": currency,
        "amount_due_cents": 12000,
        "amount_paid_cents": 12000 - remaining,
        "amount_remaining_cents": remaining,
        "created_at": f"2026-02-0{iid[-1]}T10:00:00+00:00",
        "due_at": None,
        "updated_at": T,
    }


def test_balance_counts_open_invoices_per_currency():
    invoices = [
        _invoice("i1", "open", 12000),
        _invoice("i2", "open", 5000),
        _invoice("i3", "paid", 0),
        _invoice("i4", "void", 12000),  # voided: nothing is owed
        _invoice("i5", "open", 3000, "eur"),
    ]
    assert balances(invoices) == {"EUR": 3000, "USD": 17000}
    assert money(17000, "usd") == "170.00 USD" and money(None, "usd") == ""


def test_billing_page_per_client_even_without_money():
    out = get_callable("vault_billing")(
        {
            "clients": [CLIENT, {**CLIENT, "client_id": "c2", "first_name": "Ben"}],
            "invoices": [
                _invoice("i1", "open", 12000),
                {**_invoice("i9", "open", 1), "client_id": "x"},
            ],
            "contact_events": [
                {"event_id": "e1", "client_id": "c1", "event_type": "payment",
                 "occurred_at": "2026-02-02T10:00:00+00:00", "amount_cents": 2500,
                 "currency": "usd", "updated_at": T},
                {"event_id": "e2", "client_id": "c1", "event_type": "session",
                 "occurred_at": "2026-02-02T10:00:00+00:00", "amount_cents": None,
                 "currency": None, "updated_at": T},
            ],
        },
        CTX,
    )  # fmt: skip
    assert out["stats"]["skipped"] == 1  # the invoice of no known client
    pages = {i["path"].split("/")[1].split("-")[1]: i["content"] for i in out["items"]}
    assert set(pages) == {"ada", "ben"}
    assert "Balance due: **120.00 USD** (1 open invoice(s))." in pages["ada"]
    assert "| 2026-02-02 | 25.00 USD |" in pages["ada"] and "session" not in pages["ada"]
    assert "_No invoices on record._" in pages["ben"] and "Balance due: none." in pages["ben"]


def test_forms_page_shows_the_question_the_client_saw():
    # b44af840 is PHQ-9 item 1 of intake_01 in the shipped bindings.
    response = {
        "idem_key": "r1",
        "client_id": "c1",
        "form_id": "intake_01",
        "submitted_at": "2026-02-03T09:00:00+00:00",
        "answers": '[{"question_id": "zz", "answer_value": "x"},'
        ' {"question_id": "b44af840", "answer_value": "Several days"}]',
        "updated_at": T,
    }
    out = get_callable("vault_forms")({"clients": [CLIENT], "form_responses": [response]}, CTX)
    [page] = out["items"]
    text = page["content"]
    assert page["path"].endswith("/forms.md")
    assert "## Intake questionnaire (part 1) (2026-02-03)" in text
    assert "| 1 | phq9 | Little interest or pleasure in doing things | Several days |" in text
    assert "| 2 |  | question zz | x |" in text  # unknown question ids come last, by id


def test_today_page_for_a_given_day():
    from datetime import UTC, datetime

    clients = [CLIENT, {**CLIENT, "client_id": "c2", "first_name": "Ben"}]
    sessions = [
        {"session_id": "s1", "client_id": "c1", "session_num": 3, "status": "Inactive",
         "attendance": "no_show", "started_at": "2026-03-10T14:00:00+00:00"},
        {"session_id": "s2", "client_id": "c2", "session_num": 1, "status": "Active",
         "attendance": "scheduled", "started_at": "2026-03-14T09:30:00+00:00"},
        {"session_id": "s3", "client_id": "c2", "session_num": 2, "status": "Active",
         "started_at": "2026-03-30T09:30:00+00:00"},  # beyond the week
    ]  # fmt: skip
    measurements = [
        {"idem_key": "m1", "client_id": "c1", "measure_code": "phq9_total",
         "instrument_code": "phq9", "value_numeric": 14, "severity_label": "Moderate",
         "flags": '[{"code": "phq9_item9"}]', "occurred_at": "2026-03-09T08:00:00+00:00"},
        {"idem_key": "m2", "client_id": "c2", "measure_code": "gad7_total",
         "instrument_code": "gad7", "value_numeric": 3, "severity_label": "Minimal",
         "flags": "[]", "occurred_at": "2026-02-01T08:00:00+00:00"},
    ]  # fmt: skip
    forms = [
        {"idem_key": "f1", "client_id": "c1", "form_id": "intake_01",
         "submitted_at": "2026-03-09T08:00:00+00:00"},
    ]  # fmt: skip
    invoices = [{**_invoice("i1", "open", 12000), "due_at": "2026-03-01T00:00:00+00:00"}]
    ctx = CallContext(
        catalog_dir=REPO / "jobs", home=REPO / ".unused", now=datetime(2026, 3, 10, 7, tzinfo=UTC)
    )
    params = {
        "clients": clients,
        "sessions": sessions,
        "measurements": measurements,
        "form_responses": forms,
        "invoices": invoices,
    }
    [item] = get_callable("vault_today")(params, ctx)["items"]
    page = item["content"]
    assert item["path"] == "today.md" and "# Today, 2026-03-10" in page
    assert "open_flags: 1" in page and "unpaid_invoices: 1" in page
    # safety first: the flag is the first section, linked to the client's measures
    assert page.index("## Safety flags") < page.index("## Sessions")
    assert "| 2026-03-09 | [ashgrove-ada-" in page and "phq9_item9 | phq9 | 14 |" in page
    assert "| today | 14:00 | [ashgrove-ada-" in page and "| 2026-03-14 | 09:30 | [" in page
    # attendance as the source says it: the no-show of today, the booked one of Saturday
    assert "| Session | Attendance |" in page and "Active" not in page
    assert "/contact.md) | 3 | no-show |" in page and "/contact.md) | 1 | scheduled |" in page
    assert "2026-03-30" not in page
    assert "/forms.md) | intake_01 |" in page and "| phq9 | 14 | Moderate |" in page
    assert "| 2026-03-01 | overdue | 120.00 USD |" in page
    # as_of overrides the clock: another day, another page
    other = get_callable("vault_today")({**params, "as_of": "2026-04-01"}, ctx)["items"][0]
    assert "# Today, 2026-04-01" in other["content"]
    assert "_No sessions today or in the next seven days._" in other["content"]


def test_a_clock_callable_makes_its_job_never_skippable():
    from lorchestra_dagster.callables import traits_of
    from lorchestra_dagster.catalog_service import load_report
    from lorchestra_dagster.defs.fingerprints import Inputs
    from lorchestra_dagster.spec.lineage import job_io

    today, billing = traits_of("vault_today"), traits_of("vault_billing")
    assert today is not None and today.clock and billing is not None and not billing.clock
    catalog = load_report(REPO / "jobs").catalog
    for jid, external in (("render_today", True), ("render_billing", False)):
        loaded = catalog.job(jid)
        io = job_io(jid, loaded.stage, loaded.jobdef, str(loaded.path))
        assert Inputs.of(io, loaded.jobdef, loaded.stage).external is external, jid


def test_contact_md_shows_attendance_and_the_booked_session_apart():
    sessions = [
        {"session_id": f"s{n}", "client_id": "c1", "session_num": n, "status": "Inactive",
         "attendance": att, "started_at": f"2026-03-{n:02d}T10:00:00+00:00"}
        for n, att in ((1, "attended"), (2, "cancelled"), (3, "no_show"), (4, "attended"))
    ] + [
        {"session_id": "s5", "client_id": "c1", "session_num": 5, "status": "Active",
         "attendance": "scheduled", "started_at": "2026-04-02T16:30:00+00:00"},
        {"session_id": "s6", "client_id": "c1", "session_num": 6, "status": "Active",
         "attendance": None, "started_at": "2026-04-09T16:30:00+00:00"},  # source says nothing
    ]  # fmt: skip
    ctx = CallContext(catalog_dir=REPO / "jobs", home=REPO / ".unused")
    out = get_callable("vault_client_markdown")({"clients": [CLIENT], "sessions": sessions}, ctx)
    [contact] = [i["content"] for i in out["items"] if i["path"].endswith("contact.md")]
    upcoming = contact.split("## Upcoming sessions", 1)[1].split("\n## ", 1)[0]
    held = contact.split("\n## Sessions\n", 1)[1].split("\n## ", 1)[0]
    assert "| 5 | 2026-04-02 | 16:30 |" in upcoming and "| 4 |" not in upcoming
    assert "Attendance: attended 2, cancelled 1, no-show 1 of 5." in held
    assert "| 2 | 2026-03-02 | cancelled |" in held and "| 3 | 2026-03-03 | no-show |" in held
    assert "| 6 | 2026-04-09 |  |" in held  # nothing invented where the source is silent
    assert "| 5 |" not in held and "Active" not in held
    alone = get_callable("vault_client_markdown")(
        {"clients": [CLIENT], "sessions": sessions[:1]}, ctx
    )["items"][0]["content"]
    assert "_No upcoming session booked._" in alone

"""Projection views: BigQuery SQL that parses, transpiles and runs on DuckDB over real rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlglot
import yaml
from kit import REPO
from vault_practice import ADA, BEN, EXPECTED_VIEW_ROWS, _contact, seed_plan, subject

import lorchestra_dagster.alerts.store  # noqa: F401 - declares derived.alerts, which proj_alerts reads
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.client import make_client
from lorchestra_dagster.storacle.plan import make_plan

VIEW_FILES = sorted((REPO / "jobs" / "views").glob("*.yaml"))


def view_sql(path: Path) -> list[str]:
    job = yaml.safe_load(path.read_text())
    [persist] = [s for s in job["steps"] if s["op"] == "plan.build"]
    assert persist["params"]["method"] == "bq.execute"
    return [item["sql"] for item in persist["params"]["items"]]


@pytest.mark.unit
def test_every_view_job_is_one_bigquery_view() -> None:
    names = set()
    for path in VIEW_FILES:
        job = yaml.safe_load(path.read_text())
        assert job["job_id"] == path.stem
        [sql] = view_sql(path)
        tree = sqlglot.parse_one(sql, read="bigquery")
        assert isinstance(tree, sqlglot.exp.Create) and tree.args["kind"] == "VIEW"
        target = tree.this
        assert target.db == "canonical" and path.stem == f"view_{target.name}"
        names.add(target.name)
        # transpiles for DuckDB without warnings turning into errors
        sqlglot.transpile(
            sql, read="bigquery", write="duckdb", unsupported_level=sqlglot.ErrorLevel.RAISE
        )
    assert names == set(EXPECTED_VIEW_ROWS)


@pytest.fixture
def client(tmp_path: Path):
    settings = Settings.from_env(home=tmp_path / "home", jobs_dir=REPO / "jobs")
    cl = make_client(settings)
    cl.execute_plan(seed_plan())
    yield cl
    cl.close()


def create_views(cl) -> None:
    ops = [("bq.execute", {"sql": sql}) for p in VIEW_FILES for sql in view_sql(p)]
    result = cl.execute_plan(make_plan(ops, {"job_id": "test_views"}))
    assert all("result" in r for r in result["results"])


def upsert(cl, dataset: str, table: str, key: list[str], new: list[dict]) -> None:
    """Write ``new`` into ``dataset.table`` by ``key``, as a plan (how jobs write)."""
    op = {"dataset": dataset, "table": table, "key_columns": key, "rows": new}
    cl.execute_plan(make_plan([("bq.upsert", op)]))


def add_ada_twins(cl) -> None:
    """Two more contacts with Ada's email (one in another case, with a space), one of
    them sorting before Ada: the smallest client_id of a shared email is ``c0a0-twin``."""
    twins = [
        _contact("c0a0-twin", "Ada", "Twin", " ADA@example.com"),
        _contact("c0a9-late", "Ada", "Late", "ada@example.com"),
    ]
    upsert(cl, "canonical", "canonical_objects", ["idem_key"], twins)


def rows(cl, view: str, order: str) -> list[dict]:
    return cl.query({"dataset": "canonical", "table": view, "order_by": order})


@pytest.mark.e2e
def test_views_run_on_duckdb_over_canonical_rows(client) -> None:
    create_views(client)
    for view, count in EXPECTED_VIEW_ROWS.items():
        assert len(client.query({"dataset": "canonical", "table": view})) == count, view

    clients = rows(client, "proj_clients", "client_id")
    assert [c["client_id"] for c in clients] == [ADA, BEN]
    assert clients[0]["email"] == "ada@example.com"  # lower-cased and trimmed
    assert clients[0]["updated_at"] == "2026-03-01T06:00:00+00:00"

    sessions = {s["session_id"]: s for s in rows(client, "proj_sessions", "session_id")}
    assert {k: (s["client_id"], s["session_num"]) for k, s in sessions.items()} == {
        "s1": (ADA, 1),
        "s2": (ADA, 2),
        "s3": (BEN, 1),
    }
    assert sessions["s1"]["started_at"] == "2026-01-05T10:00:00+00:00"
    assert sessions["s1"]["has_transcript"] is True and sessions["s2"]["has_summary"] is False

    [transcript] = rows(client, "proj_transcripts", "transcript_id")
    assert transcript["session_id"] == "s1" and transcript["content"].startswith("T: Hello.")

    docs = rows(client, "proj_clinical_documents", "document_id")
    assert sorted((d["document_type"], d["session_id"], d["document_date"]) for d in docs) == [
        ("progress_report", None, "2026-02-01"),
        ("session_note", "s1", "2026-01-05"),
        ("session_note", "s2", "2026-01-12"),
        ("session_note", "s3", "2026-01-06"),
        ("session_summary", "s1", "2026-01-05"),
    ]

    forms = rows(client, "proj_form_responses", "response_id")
    assert [(f["response_id"], f["client_id"], f["answer_count"]) for f in forms] == [
        ("f1", ADA, 1),
        ("f2", None, 1),
    ]
    assert json.loads(forms[0]["answers"])[0]["question_id"] == "q1"

    events = rows(client, "proj_contact_events", "event_id")
    got = sorted(
        (e["client_id"], e["event_type"], e["occurred_at"][:10], e["amount_cents"]) for e in events
    )
    assert got == sorted(
        [
            (ADA, "email_from_client", "2026-01-03", None),
            (ADA, "email_to_client", "2026-01-04", None),
            (BEN, "email_to_client", "2026-01-04", None),
            (ADA, "session", "2026-01-05", None),
            (ADA, "session", "2026-01-12", None),
            (BEN, "session", "2026-01-06", None),
            (ADA, "form_response", "2026-01-05", None),
            (ADA, "payment", "2026-01-05", 15000),
            (BEN, "payment", "2026-01-06", 15000),  # matched by the Stripe customer's email
            (ADA, "refund", "2026-01-20", 5000),
        ]
    )
    assert len({e["event_id"] for e in events}) == len(events)

    invoices = rows(client, "proj_invoices", "invoice_id")
    assert [
        (i["invoice_id"], i["client_id"], i["status"], i["amount_remaining_cents"])
        for i in invoices
    ] == [
        ("in1", ADA, "paid", 0),
        ("in2", BEN, "open", 15000),  # client by the Stripe customer's email
        ("in3", None, "open", 15000),  # a customer of no known client
    ]
    assert invoices[0]["created_at"].startswith("2026-01-05T10:00:00")

    measures = rows(client, "proj_measurements", "idem_key")
    by_key = {m["idem_key"].rsplit(":", 1)[1] + ":" + (m["client_id"] or "-"): m for m in measures}
    assert set(by_key) == {"phq9_total:" + ADA, "gad7_total:" + ADA, "phq9_total:-"}
    ada_phq = by_key["phq9_total:" + ADA]
    assert ada_phq["value_numeric"] == 14.0 and ada_phq["form_id"] == "intake_01"
    assert json.loads(ada_phq["flags"])[0]["code"] == "phq9_item9"
    assert by_key["phq9_total:-"]["subject_id"] == subject("unknown@example.net")
    marks = {k: (m["prorated"], m["crosses_cutoff"], m["gate"]) for k, m in by_key.items()}
    assert marks == {
        "phq9_total:" + ADA: (False, False, None),
        "gad7_total:" + ADA: (True, True, None),
        "phq9_total:-": (False, False, None),
    }


@pytest.mark.e2e
def test_views_are_idempotent_and_track_new_rows(client) -> None:
    create_views(client)
    create_views(client)  # CREATE OR REPLACE: a second run is harmless
    assert len(client.query({"dataset": "canonical", "table": "proj_clients"})) == 2
    extra = {
        "idem_key": "dataverse:practice:contact:c3#contact",
        "source_system": "dataverse",
        "connection_name": "practice",
        "object_type": "contact",
        "canonical_schema": "iglu:org.canonical/contact/jsonschema/1-0-0",
        "canonical_format": "contact",
        "transform_ref": "t",
        "correlation_id": "t",
        "payload": {
            "contact_id": "c3",
            "first_name": "Cy",
            "last_name": "Cole",
            "email": None,
            "status": "Active",
        },
        "canonicalized_at": "2026-03-02T00:00:00+00:00",
        "created_at": "2026-03-02T00:00:00+00:00",
    }
    upsert(client, "canonical", "canonical_objects", ["idem_key"], [extra])
    ids = [c["client_id"] for c in rows(client, "proj_clients", "client_id")]
    assert ids == [ADA, BEN, "c3"]


def keyset_pages(cl, view: str, key: str, size: int) -> list[dict]:
    """The view read the way a batched job reads it: keyset pages of ``size`` rows."""
    out: list[dict] = []
    after = None
    while True:
        page = cl.query(
            {
                "dataset": "canonical",
                "table": view,
                "keyset": {"column": key, "after": after},
                "limit": size,
            }
        )
        out.extend(page)
        if len(page) < size:
            return out
        after = page[-1][key]


@pytest.mark.e2e
def test_a_shared_email_gives_one_row_with_the_smallest_client_id(client) -> None:
    """Two more contacts with Ada's email: each form response and measure stays one row,
    carrying the smallest client_id, and keyset pages give the same rows as one read."""
    add_ada_twins(client)
    create_views(client)
    for view, key in (("proj_form_responses", "idem_key"), ("proj_measurements", "idem_key")):
        whole = rows(client, view, key)
        assert len(whole) == EXPECTED_VIEW_ROWS[view], view
        assert {r["client_id"] for r in whole} == {"c0a0-twin", None}, view
        assert keyset_pages(client, view, key, 1) == whole, view


def ranged_pages(cl, view: str, key: str, bounds: list[str]) -> list[dict]:
    """The view read the way a page of a batched job reads it (``keyset: '@run.<anchor>.keyset'``):
    key ranges ``(None, b1], (b1, b2], ..., (bn, None)``, the rows with no key in the first."""
    out: list[dict] = []
    edges: list[str | None] = [None, *bounds, None]
    for after, until in zip(edges, edges[1:], strict=False):
        keyset = {"column": key, "after": after, "until": until}
        out.extend(cl.query({"dataset": "canonical", "table": view, "keyset": keyset}))
    return out


def by(key: str, got: list[dict]) -> list[dict]:
    return sorted(got, key=lambda r: (r[key] is None, r[key] or "", json.dumps(r, default=str)))


@pytest.mark.e2e
def test_windowed_views_page_like_one_read_and_keep_the_newest_object(client) -> None:
    """proj_clients, proj_sessions and proj_invoices choose the newest canonical object of a
    key in a CTE before paging: an older copy of Ada's contact, of session s1 and of invoice
    in1 (another connection's idem_key) never shows, and 1-row keyset pages and client_id
    ranges read the same rows as one read."""
    older = "2026-01-01T00:00:00+00:00"
    stale_ada = _contact(ADA, "Old", "Name", "old@example.com")
    stale_ada |= {"idem_key": "dataverse:other:contact:ada#contact", "canonicalized_at": older}
    upsert(client, "canonical", "canonical_objects", ["idem_key"], [stale_ada])
    seeded = {
        r["idem_key"]: r
        for r in client.query({"dataset": "canonical", "table": "canonical_objects"})
    }
    copies = []
    for key in (
        "dataverse:practice:client_session:s1#clinical_session",
        "stripe:practice:invoice:in1#payment_invoice",
    ):
        row = dict(seeded[key])
        row["payload"] = {**json.loads(row["payload"]), "status": "stale copy"}
        copies.append(
            row | {"idem_key": key.replace(":practice:", ":other:"), "canonicalized_at": older}
        )
    upsert(client, "canonical", "canonical_objects", ["idem_key"], copies)
    create_views(client)

    clients = rows(client, "proj_clients", "client_id")
    assert [(c["client_id"], c["first_name"]) for c in clients] == [(ADA, "Ada"), (BEN, "Ben")]
    sessions = rows(client, "proj_sessions", "session_id")
    assert [(s["session_id"], s["session_num"]) for s in sessions] == [
        ("s1", 1), ("s2", 2), ("s3", 1)
    ]  # fmt: skip
    assert "stale copy" not in {s["status"] for s in sessions}
    invoices = rows(client, "proj_invoices", "invoice_id")
    assert [i["invoice_id"] for i in invoices] == ["in1", "in2", "in3"]
    assert "stale copy" not in {i["status"] for i in invoices}
    for view, key in (
        ("proj_clients", "client_id"),
        ("proj_sessions", "session_id"),
        ("proj_invoices", "invoice_id"),
    ):
        whole = rows(client, view, key)
        assert len(whole) == EXPECTED_VIEW_ROWS[view], view
        assert keyset_pages(client, view, key, 1) == whole, view
    for view in ("proj_sessions", "proj_invoices"):
        whole = by("client_id", rows(client, view, "client_id"))
        assert by("client_id", ranged_pages(client, view, "client_id", [ADA, BEN])) == whole, view


@pytest.mark.e2e
def test_every_flag_is_one_alert_row_whatever_the_duplicates(client) -> None:
    """Safety: each PHQ-9 item 9 flag is exactly one proj_alerts row, with the smallest
    client_id of a shared email, even with a second alert row and a second copy of a flag;
    client_id ranges (how the renderers page it) give every flag once, none dropped."""
    add_ada_twins(client)
    flags = client.query({"dataset": "derived", "table": "safety_flags", "order_by": "flag_id"})
    assert len(flags) == 2 and {f["code"] for f in flags} == {"phq9_item9"}
    # the same flag again (another processed_at), and two alert rows for the first flag
    again = {**flags[0], "processed_at": "2026-03-02T00:00:00+00:00"}
    upsert(client, "derived", "safety_flags", ["flag_id", "processed_at"], [again])
    alert = {"flag_id": flags[0]["flag_id"], "code": "phq9_item9", "status": "acknowledged"}
    upsert(
        client,
        "derived",
        "alerts",
        ["alert_id"],
        [alert | {"alert_id": "a-first"}, alert | {"alert_id": "a-second", "status": "open"}],
    )
    create_views(client)

    whole = rows(client, "proj_alerts", "flag_id")
    assert [a["flag_id"] for a in whole] == [f["flag_id"] for f in flags]  # one row per flag
    got = {a["flag_id"]: (a["client_id"], a["alert_id"], a["status"]) for a in whole}
    assert got == {
        flags[0]["flag_id"]: ("c0a0-twin", "a-first", "acknowledged"),
        flags[1]["flag_id"]: (None, whole[1]["alert_id"], "open"),  # no client: still listed
    }
    assert keyset_pages(client, "proj_alerts", "flag_id", 1) == whole
    for bounds in ([], ["c0a0-twin"], [ADA, BEN], ["c0a0-twin", "c0a9-late", "zzz"]):
        paged = ranged_pages(client, "proj_alerts", "client_id", bounds)
        assert by("flag_id", paged) == by("flag_id", whole), bounds

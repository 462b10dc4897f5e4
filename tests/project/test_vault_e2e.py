"""pipeline.views + pipeline.project end to end on a temp home: local.db, vault tree, reruns."""

from __future__ import annotations

import base64
import io
import sqlite3
from pathlib import Path

import pytest
from kit import REPO
from PIL import Image
from run_helpers import run_job, run_pipeline
from vault_practice import ADA, BEN, SQLITE_TABLES, T0, canonical_rows, seed_plan, subject

from lorchestra_dagster.callables.charts import SIZE_PX
from lorchestra_dagster.callables.vault_common import client_folder
from lorchestra_dagster.engine import Services
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.plan import make_plan

pytestmark = pytest.mark.e2e

ADA_DIR = "clients/" + client_folder(
    {"client_id": ADA, "first_name": "Ada", "last_name": "Ashgrove"}
)
BEN_DIR = "clients/" + client_folder({"client_id": BEN, "first_name": "Ben", "last_name": "Birch"})
EXPECTED_FILES = {
    "alerts.md",
    "today.md",
    f"{ADA_DIR}/contact.md",
    f"{ADA_DIR}/measures.md",
    f"{ADA_DIR}/measures.png",
    f"{ADA_DIR}/reports/2026-02-01-progress-report.md",
    f"{ADA_DIR}/sessions/session-1/transcript.md",
    f"{ADA_DIR}/sessions/session-1/session-note.md",
    f"{ADA_DIR}/sessions/session-1/session-summary.md",
    f"{ADA_DIR}/sessions/session-2/session-note.md",
    f"{ADA_DIR}/billing.md",
    f"{ADA_DIR}/forms.md",
    f"{BEN_DIR}/contact.md",
    f"{BEN_DIR}/sessions/session-1/session-note.md",
    f"{BEN_DIR}/billing.md",
    f"{BEN_DIR}/forms.md",
}


def run_both(services: Services) -> dict[str, int]:
    """Run views then project; return rows written per project job."""
    written = {}
    for pipeline_id in ("pipeline.views", "pipeline.project"):
        result = run_pipeline(pipeline_id, services)
        assert result.status == "succeeded", result.failures
        written |= {j.job_id: j.rows_written for j in result.jobs}
    return written


def snapshot(vault: Path) -> dict[str, tuple[int, int, bytes]]:
    """(inode, mtime_ns, bytes) of every vault file but local.db."""
    return {
        str(p.relative_to(vault)): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in vault.rglob("*")
        if p.is_file() and not p.name.startswith("local.db")
    }


def table_rows(db: Path, table: str) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()


@pytest.fixture
def services(tmp_path: Path) -> Services:
    settings = Settings.from_env(home=tmp_path / "home", jobs_dir=REPO / "jobs")
    svc = Services.from_settings(settings)
    svc.client.execute_plan(seed_plan())
    return svc


def test_views_and_project_build_the_vault_and_a_rerun_changes_nothing(services) -> None:
    vault, db = services.settings.vault_dir, services.settings.vault_db
    first = run_both(services)
    assert first["sync_clients"] == 2 and first["render_client_markdown"] == 8

    # local.db: one table per view, every row of the view, keyed
    with sqlite3.connect(db) as con:
        counts = {
            t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in SQLITE_TABLES
        }
        con.execute("CREATE TABLE my_notes (id INTEGER PRIMARY KEY, text TEXT)")
        con.execute("INSERT INTO my_notes (text) VALUES ('owner note')")
        stamps = con.execute("SELECT client_id, projected_at FROM clients").fetchall()
        folders = dict(con.execute("SELECT client_id, client_folder FROM clients").fetchall())
    assert counts == {
        "clients": 2,
        "sessions": 3,
        "transcripts": 1,
        "clinical_documents": 5,
        "form_responses": 2,
        "contact_events": 10,
        "measurements": 3,
        "invoices": 3,
    }

    assert {f"clients/{f}" for f in folders.values()} == {ADA_DIR, BEN_DIR}

    # the vault tree
    files = snapshot(vault)
    assert set(files) == EXPECTED_FILES
    png = files[f"{ADA_DIR}/measures.png"][2]
    assert Image.open(io.BytesIO(png)).size == SIZE_PX
    alerts = files["alerts.md"][2].decode()
    assert "open_alerts: 2" in alerts
    assert (
        f"| critical | 2026-01-05 | [{ADA_DIR.split('/')[1]}]({ADA_DIR}/contact.md) | phq9_item9 "
        in alerts
    )
    assert "## Open safety alerts" in files[f"{ADA_DIR}/contact.md"][2].decode()
    assert "phq9_item9" in files[f"{ADA_DIR}/measures.md"][2].decode()
    assert "unmatched respondent" in alerts and "unknown@example.net" not in alerts
    assert f"projected_at: '{T0}'" in files[f"{ADA_DIR}/contact.md"][2].decode()
    # billing: Ada paid (and was refunded part), Ben owes one open invoice
    ada_bill = files[f"{ADA_DIR}/billing.md"][2].decode()
    assert "Balance due: none." in ada_bill and "| HV-in1 | 2026-01-05 |" in ada_bill
    assert "## Refunds\n\n| Date | Amount |\n|---|---|\n| 2026-01-20 | 50.00 USD |" in ada_bill
    ben_bill = files[f"{BEN_DIR}/billing.md"][2].decode()
    assert "Balance due: **150.00 USD** (1 open invoice(s))." in ben_bill
    assert "open_invoices: 1" in ben_bill and "HV-in3" not in ben_bill
    # questionnaires: Ada's intake, with the question as she saw it; Ben has none
    ada_forms = files[f"{ADA_DIR}/forms.md"][2].decode()
    assert "## Intake questionnaire (part 1) (2026-01-05)" in ada_forms
    assert "submissions: 1" in ada_forms and "| 1 |  | question q1 | Several days |" in ada_forms
    assert "_No questionnaires on record._" in files[f"{BEN_DIR}/forms.md"][2].decode()
    assert "[questionnaires](forms.md)" in files[f"{ADA_DIR}/contact.md"][2].decode()

    # second run: no row written, no file rewritten, the owner's table intact
    second = run_both(services)
    assert {k: v for k, v in second.items() if v} == {}
    assert snapshot(vault) == files
    assert table_rows(db, "my_notes") == [(1, "owner note")]
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT client_id, projected_at FROM clients").fetchall() == stamps


def test_a_changed_note_rewrites_only_its_files(services) -> None:
    vault = services.settings.vault_dir
    run_both(services)
    before = snapshot(vault)
    [note] = [
        r
        for r in canonical_rows()
        if r["idem_key"] == "dataverse:practice:client_session:s3#session_note"
    ]
    note["payload"] = {**note["payload"], "content": "Revised note"}
    note["canonicalized_at"] = "2026-03-05T06:00:00+00:00"
    services.client.execute_plan(
        make_plan(
            [
                (
                    "bq.upsert",
                    {
                        "dataset": "canonical",
                        "table": "canonical_objects",
                        "key_columns": ["idem_key"],
                        "rows": [note],
                        "volatile_columns": ["canonicalized_at"],
                    },
                )
            ]
        )
    )

    written = run_both(services)
    assert {k: v for k, v in written.items() if v} == {
        "sync_clinical_documents": 1,
        "render_client_markdown": 2,
    }
    after = snapshot(vault)
    changed = {p for p in after if after[p] != before[p]}
    assert changed == {f"{BEN_DIR}/sessions/session-1/session-note.md", f"{BEN_DIR}/contact.md"}
    text = after[f"{BEN_DIR}/sessions/session-1/session-note.md"][2].decode()
    assert "Revised note" in text and "projected_at: '2026-03-05T06:00:00+00:00'" in text


def test_render_results_are_base64_png_items(services) -> None:
    """The measures job hands file.write a base64 PNG that decodes to the chart."""
    from lorchestra_dagster.callables import CallContext, collect, get_callable

    run_both(services)
    measurements = services.client.query({"dataset": "canonical", "table": "proj_measurements"})
    clients = services.client.query({"dataset": "canonical", "table": "proj_clients"})
    alerts = services.client.query({"dataset": "canonical", "table": "proj_alerts"})
    out = collect(
        get_callable("vault_measures")(
            {"clients": clients, "measurements": measurements, "alerts": alerts},
            CallContext(catalog_dir=REPO / "jobs", home=services.settings.home),
        )
    )
    png_item = next(i for i in out["items"] if i["path"].endswith(".png"))
    on_disk = (services.settings.vault_dir / png_item["path"]).read_bytes()
    assert base64.b64decode(png_item["content"]) == on_disk


def test_an_empty_warehouse_projects_an_empty_vault(tmp_path: Path) -> None:
    """Before any canonize or formation wrote a row, views and project still succeed."""
    settings = Settings.from_env(home=tmp_path / "empty", jobs_dir=REPO / "jobs")
    services = Services.from_settings(settings)
    written = run_both(services)
    assert written == dict.fromkeys(written, 0) | {"render_alerts": 1, "render_today": 1}
    for view in ("proj_clients", "proj_measurements", "proj_contact_events"):
        assert services.client.query({"dataset": "canonical", "table": view}) == []
    alerts = (settings.vault_dir / "alerts.md").read_text()
    assert "open_alerts: 0" in alerts and "No open safety alerts." in alerts
    assert run_both(services) == dict.fromkeys(written, 0)


def _observation(key: str, email: str, code: str, value: float, at: str) -> dict:
    return {
        "idem_key": key,
        "measurement_event_idem_key": key.rsplit(":", 1)[0],
        "subject_id": subject(email),
        "measure_code": code,
        "instrument_code": code.removesuffix("_total"),
        "value_numeric": value,
        "severity_code": None,
        "severity_label": None,
        "components": {"items": []},
        "flags": [],
        "occurred_at": "2026-02-10T09:00:00+00:00",
        "correlation_id": "test",
        "processed_at": at,
    }


def _upsert_observations(services: Services, rows: list[dict]) -> None:
    op = {"dataset": "derived", "table": "observations", "key_columns": ["idem_key"], "rows": rows}
    services.client.execute_plan(make_plan([("bq.upsert", op)]))


def _measures_run(services: Services) -> tuple[int, int]:
    """Run pipeline.project: (files render_measures drew, state rows it inserted or updated)."""
    result = run_pipeline("pipeline.project", services)
    assert result.status == "succeeded", result.failures
    [job] = [j for j in result.jobs if j.job_id == "render_measures"]
    if job.status == "skipped":
        return 0, 0
    steps = {s.step_id: s for s in job.steps}
    return steps["render"].rows_out, steps["write_state"].rows_written


def _renders(services: Services) -> dict[str, tuple[str, str]]:
    rows = services.client.query({"dataset": "derived", "table": "vault_renders"})
    return {r["client_id"]: (r["input_sha256"], r["rendered_at"]) for r in rows}


def test_measures_are_redrawn_only_for_the_client_whose_scores_changed(services) -> None:
    at = "2026-03-02T06:00:00+00:00"
    ben = _observation("forms:ben-1:gad7_total", "ben@example.com", "gad7_total", 5.0, at)
    _upsert_observations(services, [ben])
    run_both(services)
    state = _renders(services)
    assert set(state) == {ADA, BEN}
    files = snapshot(services.settings.vault_dir)
    assert {f"{d}/measures.{e}" for d in (ADA_DIR, BEN_DIR) for e in ("md", "png")} <= set(files)

    # nothing changed: nobody is drawn, no state row moves (the job may even be skipped)
    assert _measures_run(services) == (0, 0)
    assert _renders(services) == state

    # a new score for Ben: only Ben's two files are drawn, only Ben's state row moves
    later = "2026-03-03T06:00:00+00:00"
    _upsert_observations(services, [{**ben, "value_numeric": 11.0, "processed_at": later}])
    assert _measures_run(services) == (2, 1)
    after = _renders(services)
    assert after[ADA] == state[ADA] and after[BEN][0] != state[BEN][0]
    now = snapshot(services.settings.vault_dir)
    assert {p for p in now if now[p] != files[p]} == {
        f"{BEN_DIR}/measures.md",
        f"{BEN_DIR}/measures.png",
    }

    # files deleted by hand: --payload '{"rerender": true}' draws everyone again
    (services.settings.vault_dir / f"{ADA_DIR}/measures.png").unlink()
    job = run_job("render_measures", services, payload={"rerender": True})
    assert {s.step_id: s.rows_out for s in job.steps}["render"] == 4
    assert (services.settings.vault_dir / f"{ADA_DIR}/measures.png").read_bytes() == now[
        f"{ADA_DIR}/measures.png"
    ][2]


def test_vault_jobs_in_pages_of_one_client_write_the_same_files(services, tmp_path: Path) -> None:
    """Paging by client (a page's reads take its client_id range) changes no byte."""
    import re
    import shutil

    paged_jobs = {
        "render_client_markdown": 250,
        "render_measures": 100,
        "render_billing": 250,
        "render_forms": 250,
    }
    run_pipeline("pipeline.views", services)
    whole = {job: run_job(job, services) for job in [*paged_jobs, "render_today"]}
    assert all(j.status == "succeeded" for j in whole.values())
    expected = snapshot(services.settings.vault_dir)

    jobs = tmp_path / "jobs_paged"
    shutil.copytree(REPO / "jobs", jobs)
    for job, rows in paged_jobs.items():
        yaml_path = jobs / "project" / f"{job}.yaml"
        text = yaml_path.read_text()
        assert f"batch_rows: {rows}" in text
        yaml_path.write_text(text.replace(f"batch_rows: {rows}", "batch_rows: 1"))
    # render_today reads only the columns it shows: the same today.md as every column
    today = jobs / "project" / "render_today.yaml"
    today.write_text(re.sub(r"columns: \[[^\]]*\]", "columns: ['*']", today.read_text()))
    paged_settings = Settings.from_env(home=tmp_path / "home_paged", jobs_dir=jobs)
    paged = Services.from_settings(paged_settings)
    paged.client.execute_plan(seed_plan())
    run_pipeline("pipeline.views", paged)
    one_by_one = {job: run_job(job, paged) for job in [*paged_jobs, "render_today"]}
    for job in paged_jobs:
        summary = one_by_one[job]
        assert summary.status == "succeeded"
        assert summary.rows_written == whole[job].rows_written > 0
        # a page per client, then the empty page past the last client
        steps = {s.step_id: s for s in summary.steps}
        assert steps["read_clients"].attempts == 3 and steps["read_clients"].rows_out == 2
        assert steps["render"].attempts == 3, job
    got = snapshot(paged_settings.vault_dir)
    assert {p: v[2] for p, v in got.items()} == {p: v[2] for p, v in expected.items()}
    assert any(p.endswith("measures.png") for p in got) and "today.md" in got
    cols = ["client_id", "artifact", "input_sha256", "renderer_version"]
    query = {"dataset": "derived", "table": "vault_renders", "columns": cols}
    state = sorted(tuple(r.values()) for r in services.client.query(query))
    assert state and sorted(tuple(r.values()) for r in paged.client.query(query)) == state
    paged.client.close()


def test_sync_invoices_in_pages_of_one_mirrors_the_view_and_prunes(services) -> None:
    """sync_invoices reads proj_invoices in keyset pages (no whole view in memory): pages of
    one invoice give every row of the view, and an invoice gone from the view is pruned."""
    run_pipeline("pipeline.views", services)
    job = run_job("sync_invoices", services, batch_size=1)
    assert job.status == "succeeded"
    steps = {s.step_id: s for s in job.steps}
    assert steps["read"].attempts == 4 and steps["read"].rows_out == 3  # 3 pages + empty one
    db = services.settings.vault_db
    view = services.client.query(
        {"dataset": "canonical", "table": "proj_invoices", "order_by": "invoice_id"}
    )
    with sqlite3.connect(db) as con:
        got = con.execute("SELECT invoice_id, client_id, status FROM invoices ORDER BY 1")
        assert got.fetchall() == [(v["invoice_id"], v["client_id"], v["status"]) for v in view]
    # in3's object loses its invoice_id: the view no longer has it
    [in3] = [r for r in canonical_rows() if r["idem_key"].endswith(":in3#payment_invoice")]
    in3["payload"] = {**in3["payload"], "invoice_id": None}
    in3["canonicalized_at"] = "2026-03-05T06:00:00+00:00"
    op = {"dataset": "canonical", "table": "canonical_objects", "key_columns": ["idem_key"]}
    services.client.execute_plan(make_plan([("bq.upsert", {**op, "rows": [in3]})]))
    assert run_job("sync_invoices", services, batch_size=1).status == "succeeded"
    assert [r[0] for r in table_rows(db, "invoices")] == ["in1", "in2"]

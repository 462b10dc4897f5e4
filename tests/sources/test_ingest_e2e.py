"""pipeline.ingest against the sandbox: faults, exactly-once, idempotent rerun, new objects."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import httpx
import pytest
import yaml
from run_helpers import run_pipeline
from sources_kit import REPO, env_for

from lorchestra_dagster.engine import Services, execute_with
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.sources.sandbox.generate import generate
from lorchestra_dagster.sources.sandbox.server import serve_in_thread
from lorchestra_dagster.sources.sandbox.streams import STREAMS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def practice():
    return generate(12, 3)


def _catalog(root: Path, drop: Path) -> Path:
    """Only the shipped ingest jobs, pipeline and sources.yaml (drop folder moved to tmp)."""
    shutil.copytree(REPO / "jobs" / "ingest", root / "ingest")
    (root / "pipelines").mkdir(parents=True)
    shutil.copy(REPO / "jobs" / "pipelines" / "pipeline.ingest.yaml", root / "pipelines")
    doc = yaml.safe_load((REPO / "jobs" / "sources.yaml").read_text())
    doc["streams"]["drop_folder"]["path"] = str(drop / "*.jsonl")
    for stream in doc["streams"].values():
        if stream["connector"] != "jsonl":
            stream["page_size"] = 7  # several pages per stream
    (root / "sources.yaml").write_text(yaml.safe_dump(doc))
    drop.mkdir(parents=True, exist_ok=True)
    for sample in sorted((REPO / "samples" / "drop_folder").glob("*.jsonl")):
        shutil.copy(sample, drop)
    return root


@pytest.fixture
def setup(tmp_path, _isolated_home, practice):
    handle = serve_in_thread(copy.deepcopy(practice))
    catalog = _catalog(tmp_path / "catalog", tmp_path / "drop")
    settings = Settings.from_env(jobs_dir=catalog, home=_isolated_home)
    services = Services.from_settings(settings, env=env_for(handle))
    yield handle, services, tmp_path / "drop"
    services.client.close()
    handle.stop()


def _counts(services) -> dict[tuple[str, str, str], int]:
    rows = services.client.sql(
        "SELECT source_system, connection_name, object_type, COUNT(*) AS n, "
        "COUNT(DISTINCT external_id) AS d FROM raw.raw_objects GROUP BY 1, 2, 3"
    )
    assert all(r["n"] == r["d"] for r in rows)
    return {(r["source_system"], r["connection_name"], r["object_type"]): r["n"] for r in rows}


def _expected(handle) -> dict[tuple[str, str, str], int]:
    out = {}
    for sid, info in STREAMS.items():
        key = (info.source_system, info.connection_name, info.object_type)
        out[key] = out.get(key, 0) + len(handle.practice.streams[sid])
    out[("jsonl", "drop_folder", "note")] = 5
    return out


def _run(services):
    result = run_pipeline("pipeline.ingest", services, max_workers=2)
    by_job = {j.job_id: j for j in result.jobs}
    failed = {k: j.error for k, j in by_job.items() if j.status != "succeeded"}
    assert not failed, failed
    return by_job


def test_pipeline_ingest_with_faults_then_rerun_then_new_objects(setup):
    handle, services, _ = setup
    for path in (
        "/gmail/v1/users/me/messages",
        "/v1/invoices",
        "/api/data/v9.2/contacts",
        "/v1.0/users/",
        "/v1/forms/intake_01/responses",
    ):
        handle.faults.add("rate_limit", count=2, path_contains=path, retry_after=0.2)
        handle.faults.add("server_error", count=2, path_contains=path)

    _run(services)
    assert len(handle.faults.fired) == 20
    assert _counts(services) == _expected(handle)
    ids = services.client.sql(
        "SELECT source_system, connection_name, object_type, external_id FROM raw.raw_objects "
        "WHERE source_system = 'stripe' AND object_type = 'refund'"
    )
    assert {r["external_id"] for r in ids} == {
        o["id"] for o in handle.practice.streams["stripe_refunds"]
    }
    before = services.client.sql("SELECT * FROM raw.raw_objects ORDER BY idem_key")

    second = _run(services)
    assert {k: j.rows_written for k, j in second.items()} == {k: 0 for k in second}
    assert services.client.sql("SELECT * FROM raw.raw_objects ORDER BY idem_key") == before

    added = handle.state.add_clients(2)
    third = _run(services)
    for sid in STREAMS:
        # the new objects, and the stream's cursor row when it moved
        assert third[f"ingest_{sid}"].rows_written == added[sid] + bool(added[sid]), sid
    assert third["ingest_drop_folder"].rows_written == 0
    assert _counts(services) == _expected(handle)


def test_pages_are_written_as_they_arrive_and_the_cursor_waits_for_the_last(setup):
    """A failure on page 2 keeps page 1 (written as it arrived) but not the cursor, so the
    rerun reads the whole window again and nothing of the source is skipped."""
    handle, services, _ = setup
    sources = services.catalog_dir / "sources.yaml"
    doc = yaml.safe_load(sources.read_text())
    doc["streams"]["gmail_acct1"]["page_size"] = 2
    sources.write_text(yaml.safe_dump(doc))
    env = env_for(handle)
    listed = httpx.get(
        f"{handle.url}/gmail/v1/users/me/messages",
        params={"maxResults": 500},
        headers={"Authorization": f"Bearer {env['GMAIL_ACCT1_TOKEN']}"},
    ).json()["messages"]
    assert len(listed) > 4  # page_size 2: the failing message is on page 2
    handle.faults.add("malformed", count=1, path_contains=f"/messages/{listed[3]['id']}")

    failed = execute_with({"job_id": "ingest_gmail_acct1"}, services)
    assert failed.status == "failed"
    assert failed.error["step_id"] == "fetch"
    steps = {s.step_id: s for s in failed.steps}
    assert steps["write"].rows_written == 2  # page 1, committed before page 2 was asked for
    cursors = {"dataset": "raw", "table": "ingest_cursors", "columns": ["stream", "since"]}
    assert services.client.query(cursors) == []  # a declared table: empty until written

    again = execute_with({"job_id": "ingest_gmail_acct1"}, services)
    assert again.status == "succeeded", again.error
    stored = services.client.sql(
        "SELECT external_id FROM raw.raw_objects WHERE connection_name = 'acct1'"
    )
    assert {r["external_id"] for r in stored} == {m["id"] for m in listed}
    cursor = services.client.query(cursors)
    assert [c["stream"] for c in cursor] == ["gmail_acct1"] and cursor[0]["since"]


def test_drop_folder_consumes_each_file_once_and_dry_run_consumes_nothing(setup):
    handle, services, drop = setup
    first = execute_with({"job_id": "ingest_drop_folder"}, services)
    assert first.status == "succeeded", first.error
    files = services.client.sql("SELECT file_sha256, rows FROM raw.ingest_files")
    assert sorted(f["rows"] for f in files) == [2, 3]

    (drop / "notes_new.jsonl").write_text(
        '{"id": "note-0100", "kind": "note", "title": "t", "body": "b", '
        '"updated_at": "2026-11-28T10:00:00Z"}\n'
    )
    dry = execute_with({"job_id": "ingest_drop_folder", "dry_run": True}, services)
    assert dry.status == "succeeded", dry.error
    assert len(services.client.sql("SELECT * FROM raw.ingest_files")) == 2

    real = execute_with({"job_id": "ingest_drop_folder"}, services)
    assert real.status == "succeeded", real.error
    assert real.rows_written == 2  # one note + one ingest_files row
    again = execute_with({"job_id": "ingest_drop_folder"}, services)
    assert again.rows_written == 0
    notes = services.client.sql(
        "SELECT COUNT(*) AS n FROM raw.raw_objects WHERE source_system = 'jsonl'"
    )
    assert notes == [{"n": 6}]


def test_backfill_window_from_the_envelope(setup):
    handle, services, _ = setup
    objs = handle.practice.streams["stripe_customers"]
    created = sorted(o["created"] for o in objs)
    lo, hi = created[2], created[-3]
    res = execute_with(
        {"job_id": "ingest_stripe_customers", "payload": {"since": lo, "until": hi}}, services
    )
    assert res.status == "succeeded", res.error
    written = {s.step_id: s.rows_written for s in res.steps}
    assert written["write"] == sum(1 for c in created if lo < c < hi)
    assert written["write_cursor"] == 1  # the stream's cursor: MAX(source_ts) of what is in


def test_failing_stream_fails_its_job_only_and_writes_nothing_for_it(setup):
    handle, services, _ = setup
    handle.faults.add("malformed", count=1, path_contains="/v1/refunds")
    result = run_pipeline("pipeline.ingest", services, max_workers=2)
    by_job = {j.job_id: j for j in result.jobs}
    assert by_job["ingest_stripe_refunds"].status == "failed"
    assert "page 1 is malformed" in str(by_job["ingest_stripe_refunds"].error)
    others = [j for k, j in by_job.items() if k != "ingest_stripe_refunds"]
    assert all(j.status == "succeeded" for j in others)
    assert ("stripe", "practice", "refund") not in _counts(services)


STRIPE_JOBS = ["ingest_stripe_customers", "ingest_stripe_invoices", "ingest_stripe_refunds"]


def test_a_source_limit_of_1_runs_its_jobs_one_at_a_time(setup):
    """Three Stripe jobs in one stage with four workers and ``max_concurrent_jobs: 1``. The
    sandbox's request log shows it: each job's requests come as one block, so a job's first
    page was asked for only after the last page of the one before. (The scheduler's own
    tests show jobs of a group that may overlap do.)"""
    handle, services, _ = setup
    root = services.catalog_dir
    doc = yaml.safe_load((root / "sources.yaml").read_text())
    doc["sources"] = {"stripe": {"max_concurrent_jobs": 1}}
    for sid in ("stripe_customers", "stripe_invoices", "stripe_refunds"):
        doc["streams"][sid]["page_size"] = 2  # several pages each
    (root / "sources.yaml").write_text(yaml.safe_dump(doc))
    stage = {"name": "ingest", "jobs": STRIPE_JOBS}
    pipeline = {"pipeline_id": "pipeline.stripe", "stages": [stage]}
    (root / "pipelines" / "pipeline.stripe.yaml").write_text(yaml.safe_dump(pipeline))
    handle.state.latency_s = 0.01  # a vendor's round trip: pages of jobs side by side would mix

    result = run_pipeline("pipeline.stripe", services, max_workers=4)
    assert {j.job_id: j.status for j in result.jobs} == dict.fromkeys(STRIPE_JOBS, "succeeded")
    paths = list(handle.state.paths)
    assert len(paths) > 3 * 3  # several pages per job
    blocks = [p for n, p in enumerate(paths) if n == 0 or paths[n - 1] != p]
    assert sorted(blocks) == ["/v1/customers", "/v1/invoices", "/v1/refunds"]

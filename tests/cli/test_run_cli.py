"""``lorchestra run``, ``pipeline run`` and ``runs`` through the real CLI app."""

from __future__ import annotations

import json
import textwrap

import pytest
from kit import INGEST_STAMPS, raw_seed_job, write_catalog
from typer.testing import CliRunner

from lorchestra_dagster.cli import app

pytestmark = pytest.mark.e2e

JOB = raw_seed_job("load_things", **INGEST_STAMPS)

PIPE = """
pipeline_id: pipeline.things
stages:
- name: ingest
  jobs: [load_things]
"""


@pytest.fixture
def catalog(tmp_path, monkeypatch):
    root = write_catalog(
        tmp_path / "jobs",
        {"ingest/load_things.yaml": JOB, "pipelines/pipeline.things.yaml": PIPE},
    )
    monkeypatch.setenv("LORCHESTRA_JOBS_DIR", str(root))
    return root


def _run(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


ITEMS = json.dumps({"items": [{"id": "a"}, {"id": "b"}]})


def test_run_json_then_rerun_writes_nothing(catalog):
    first = _run("run", "load_things", "--payload", ITEMS, "--json")
    assert first.exit_code == 0, first.output
    out = json.loads(first.output)
    assert {"run_id", "job_id", "status", "rows_read", "rows_written", "steps"} <= set(out)
    assert out["status"] == "succeeded" and out["rows_written"] == 2
    again = json.loads(_run("run", "load_things", "--payload", ITEMS, "--json").output)
    assert again["rows_written"] == 0

    listed = json.loads(_run("runs", "list", "--json").output)
    assert [r["run_id"] for r in listed][:2] == [again["run_id"], out["run_id"]]
    shown = _run("runs", "show", out["run_id"][:10], "--json")
    assert shown.exit_code == 0
    [job] = json.loads(shown.output)["jobs"]
    assert {s["step_id"] for s in job["steps"]} == {"persist", "write"}
    assert json.loads(shown.output)["slowest_step"]["step_id"] in {"persist", "write"}


def test_dry_run_prints_plans_and_writes_nothing(catalog):
    res = _run("run", "load_things", "--payload", ITEMS, "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    [plan] = json.loads(res.stdout)["plans"]
    [op] = plan["ops"]
    assert op == {
        "method": "bq.upsert",
        "target": "raw.raw_objects",
        "rows": 2,
        "inserted": 2,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
    }
    [listed] = json.loads(_run("runs", "list", "--json").output)
    assert listed["dry_run"] is True and listed["launched_by"] == "cli"
    shown = json.loads(_run("runs", "show", listed["run_id"], "--json").output)
    assert shown["rows_written"] == 0 and shown["jobs"][0]["plans"]


def test_failed_run_exits_nonzero_with_root_cause(catalog):
    res = _run("run", "load_things", "--json")
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert out["status"] == "failed" and "items" in out["error"]["message"]


def test_bad_payload_is_rejected(catalog):
    res = CliRunner().invoke(app, ["run", "load_things", "--payload", "{nope"])
    assert res.exit_code != 0
    assert "not JSON" in res.output


def test_pipeline_run_json(catalog, monkeypatch):
    res = _run("pipeline", "run", "pipeline.things", "--json")
    # load_things needs a payload; the pipeline passes none, so it fails loudly.
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert out["pipeline_id"] == "pipeline.things" and out["status"] == "failed"
    assert out["jobs"][0]["job_id"] == "load_things" and out["jobs"][0]["status"] == "failed"
    assert {"job_id", "status", "rows_read", "rows_written"} <= set(out["jobs"][0])


DROPPER = """
job_id: view_dropper
version: '2.0'
steps:
- step_id: persist
  op: plan.build
  params:
    method: bq.execute
    items:
    - sql: DROP SCHEMA raw CASCADE
- step_id: write
  op: storacle.submit
  params: {plan: '@run.persist.plan'}
"""


def test_validate_reports_non_view_sql_and_run_refuses_the_job(catalog):
    assert _run("run", "load_things", "--payload", ITEMS).exit_code == 0
    (catalog / "views").mkdir()
    bad = catalog / "views" / "view_dropper.yaml"
    bad.write_text(textwrap.dedent(DROPPER))
    checked = _run("validate")
    assert checked.exit_code != 0
    assert f"{bad}:10:" in checked.output and "L047" in checked.output
    assert "CREATE [OR REPLACE] VIEW" in checked.output
    refused = _run("run", "view_dropper")
    assert refused.exit_code != 0 and "failed validation" in refused.output
    rows = json.loads(_run("sql", "SELECT count(*) AS n FROM raw.raw_objects", "--json").output)
    assert rows == [{"n": 2}]


TIMED = """
job_id: load_timed
version: '2.0'
steps:
- step_id: persist
  op: plan.build
  params:
    method: bq.upsert
    dataset: raw
    table: raw_objects
    key_columns: [idem_key]
    payload_wrap: true
    id_field: id
    source_ts_field: when
    field_defaults: {source_system: demo, connection_name: demo-main, object_type: thing}
    items: '@payload.items'
- step_id: write
  op: storacle.submit
  params: {plan: '@run.persist.plan'}
"""
PLANTED = "Wilhelmina Okonkwo-Marker-4410"


def test_a_bad_value_never_reaches_output_errors_or_dagster_events(catalog, _isolated_home):
    """A client's name in a timestamp field: the run fails naming the field, never the value."""
    import dagster as dg

    from lorchestra_dagster import launch
    from lorchestra_dagster.settings import Settings

    (catalog / "ingest" / "load_timed.yaml").write_text(textwrap.dedent(TIMED))
    payload = json.dumps({"items": [{"id": "a", "when": PLANTED}]})
    failed = _run("run", "load_timed", "--payload", payload, "--json")
    assert failed.exit_code != 0
    assert "source_ts" in failed.output and PLANTED not in failed.output
    run_id = json.loads(failed.output)["run_id"]
    shown = _run("runs", "show", run_id, "--json").output
    assert "source_ts" in shown and PLANTED not in shown
    with launch.open_instance(Settings.from_env()) as instance:
        events = instance.all_logs(run_id)
        assert any(e.dagster_event and e.dagster_event.is_failure for e in events)
        text = dg.serialize_value(events)
    assert PLANTED not in text and "Okonkwo" not in text


def test_dry_run_plan_counts_what_would_change(catalog, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    assert _run("run", "load_things", "--payload", ITEMS).exit_code == 0
    changed = json.dumps({"items": [{"id": "a"}, {"id": "b", "extra": 1}, {"id": "c"}]})
    res = _run("run", "load_things", "--payload", changed, "--dry-run")
    assert res.exit_code == 0, res.output
    assert "plan (dry run" in res.output
    row = next(ln for ln in res.output.splitlines() if "raw.raw_objects" in ln)
    assert [c.strip() for c in row.strip("│ ").split("│")][1:] == [
        "raw.raw_objects", "bq.upsert", "3", "1", "1", "1", "0"
    ]  # fmt: skip
    assert "would insert 1, update 1, delete 0; 1 unchanged" in res.output
    # ... and nothing was written.
    rows = json.loads(_run("sql", "SELECT count(*) AS n FROM raw.raw_objects", "--json").stdout)
    assert rows == [{"n": 2}]


@pytest.mark.unit
def test_plan_file_targets_hide_client_folders():
    from lorchestra_dagster.engine.handlers import file_pattern

    assert file_pattern("alerts.md") == "alerts.md"
    assert file_pattern("clients/ashgrove-bram-b37e870b/contact.md") == "clients/*/contact.md"
    assert file_pattern("clients/x-y-1/sessions/2026-01-02/transcript.md") == (
        "clients/*/*/*/transcript.md"
    )
    assert file_pattern("clients/x-y-1/docs/intake-2026.md") == "clients/*/*/*.md"
    assert file_pattern("clients/bram.md") == "clients/*.md"


def test_launch_names_each_job_as_it_starts(catalog):
    """The CLI's progress bar shows the jobs in flight: launch calls on_start per job."""
    from lorchestra_dagster.launch import launch

    started: list[str] = []
    finished: list[str] = []
    result = launch(
        "pipeline.things",
        kind="pipeline",
        on_start=started.append,
        progress=lambda s: finished.append(s.job_id),
    )
    assert started == ["load_things"] and finished == ["load_things"]
    assert result.jobs[0].job_id == "load_things"


def test_runs_retry_reruns_the_failed_jobs_in_a_new_run(catalog):
    failed = json.loads(_run("pipeline", "run", "pipeline.things", "--json").stdout)
    assert failed["status"] == "failed"
    res = _run("runs", "retry", failed["run_id"][:10], "--json")
    again = json.loads(res.stdout)
    assert again["run_id"] != failed["run_id"] and again["pipeline_id"] == "pipeline.things"
    assert [j["job_id"] for j in again["jobs"]] == ["load_things"]
    ok = json.loads(_run("run", "load_things", "--payload", ITEMS, "--json").stdout)
    nothing = _run("runs", "retry", ok["run_id"])
    assert nothing.exit_code == 0 and "nothing to retry" in nothing.output


def test_plan_is_a_dry_run_of_a_job_or_pipeline(catalog):
    res = _run("plan", "load_things", "--json")
    out = json.loads(res.stdout)
    assert out["dry_run"] is True and out["job_id"] == "load_things"
    res = _run("plan", "things", "--json")  # pipeline.things by its short name
    out = json.loads(res.stdout)
    assert out["dry_run"] is True and out["pipeline_id"] == "pipeline.things"
    assert json.loads(_run("runs", "list", "--json").stdout)[0]["dry_run"] is True

"""``lorchestra doctor`` and the preflight of ``run`` / ``pipeline run``: one line per problem."""

from __future__ import annotations

import json

import pytest
from kit import REPO, free_port
from typer.testing import CliRunner

from lorchestra_dagster.cli import app
from lorchestra_dagster.defs.pipelines import flatten
from lorchestra_dagster.sources.sandbox.generate import generate
from lorchestra_dagster.sources.sandbox.server import sandbox_env, serve_in_thread
from lorchestra_dagster.spec import load_catalog

pytestmark = pytest.mark.e2e

VARS = sorted(set(sandbox_env()))


@pytest.fixture(autouse=True)
def shipped_catalog(monkeypatch):
    monkeypatch.setenv("LORCHESTRA_JOBS_DIR", str(REPO / "jobs"))
    for var in VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def sandbox():
    handle = serve_in_thread(generate(2, 3))
    yield handle
    handle.stop()


def _cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_doctor_ready_with_the_sandbox(sandbox, monkeypatch):
    monkeypatch.setenv("LORCHESTRA_SANDBOX_URL", sandbox.url)
    for key, value in sandbox_env().items():
        monkeypatch.setenv(key, value)
    res = _cli("doctor", "--json")
    out = json.loads(res.stdout)
    assert res.exit_code == 0, res.stdout
    assert out["ok"] is True and out["catalog"] == str(REPO / "jobs")
    areas = {f["area"] for f in out["findings"]}
    assert {"home", "catalog", "backend", "instance", "daemon", "storacle", "source"} <= areas
    [reach] = [f for f in out["findings"] if f["subject"] == sandbox.url]
    assert reach["status"] == "ok" and "13 stream(s)" in reach["detail"]
    # No daemon in a test: a warning with its fix, not a problem.
    [daemon] = [f for f in out["findings"] if f["area"] == "daemon"]
    assert daemon["status"] == "warn" and daemon["fix"]


def test_doctor_names_each_missing_variable_once_with_its_fix():
    res = _cli("doctor", "--offline")
    assert res.exit_code == 1
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("fail")]
    assert len(lines) == len(VARS)  # one line per variable, not per stream
    stripe = [ln for ln in lines if "STRIPE_API_KEY" in ln]
    assert len(stripe) == 1 and "4 stream(s)" in stripe[0]
    assert "-> export STRIPE_API_KEY=..." in stripe[0] and "lorchestra sandbox up" in stripe[0]
    assert "sk_test" not in res.stdout  # never a value


def test_doctor_dead_sandbox_url_names_url_and_variable(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("LORCHESTRA_SANDBOX_URL", url)
    for key, value in sandbox_env().items():
        monkeypatch.setenv(key, value)
    res = _cli("doctor")
    assert res.exit_code == 1
    [line] = [ln for ln in res.stdout.splitlines() if ln.startswith("fail")]
    assert url in line and "connection refused" in line
    assert "LORCHESTRA_SANDBOX_URL points there: lorchestra sandbox up" in line


def test_pipeline_preflight_stops_before_any_job():
    res = _cli("pipeline", "run", "pipeline.daily_all")
    assert res.exit_code == 1
    assert sum("STRIPE_API_KEY" in ln for ln in res.output.splitlines()) == 1
    assert sum(ln.startswith("error:") for ln in res.output.splitlines()) == len(VARS)
    assert "nothing ran" in res.output
    runs = json.loads(_cli("runs", "list", "--json").stdout)
    assert runs == []  # no Dagster run was started
    as_json = json.loads(_cli("pipeline", "run", "daily_all", "--json").stdout)
    assert as_json["status"] == "not_started"
    assert sorted(p["subject"] for p in as_json["problems"]) == VARS


def test_run_unknown_job_suggests_without_a_run_line():
    res = _cli("run", "ingest_stripe_customer")
    assert res.exit_code == 1
    assert "did you mean ingest_stripe_customers" in res.output
    assert "failed" not in res.output and " run " not in res.output
    assert json.loads(_cli("runs", "list", "--json").stdout) == []


def test_pipeline_list_and_unknown_pipeline():
    res = _cli("pipeline", "list", "--json")
    rows = {r["pipeline_id"]: r for r in json.loads(res.stdout)}
    assert rows["pipeline.daily_all"]["stages"][0] == "ingest"
    catalog = load_catalog(REPO / "jobs")
    for pid in ("pipeline.daily_all", "pipeline.ingest"):
        assert rows[pid]["jobs"] == len(flatten(catalog, pid).job_ids) > 1
    assert rows["pipeline.ingest"]["jobs"] == len(catalog.jobs_in_stage("ingest"))
    text = _cli("pipeline", "list")
    assert "pipeline.daily_all" in text.stdout and str(REPO / "jobs") in text.output
    bad = _cli("pipeline", "run", "daily")
    assert bad.exit_code == 1 and "did you mean pipeline.daily_all" in bad.output


def test_pipeline_select_runs_only_those_jobs_and_needs_only_their_credentials():
    # A view needs no credential: the preflight of the selection passes without any.
    res = _cli("pipeline", "run", "daily_all", "--select", "view_proj_clients", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [j["job_id"] for j in out["jobs"]] == ["view_proj_clients"]
    assert out["pipeline_id"] == "pipeline.daily_all" and out["status"] == "succeeded"
    # +job pulls in the ingest job, and with it its missing credential.
    res = _cli("pipeline", "run", "daily_all", "-s", "+canonize_stripe_invoice", "--json")
    assert res.exit_code == 1
    assert [p["subject"] for p in json.loads(res.stdout)["problems"]] == ["STRIPE_API_KEY"]


def test_run_and_plan_select_take_jobs_of_the_whole_catalog():
    # `run --select` needs no pipeline: two views of the catalog, one Dagster run. The views
    # are independent (lineage keeps their own slices), so either may finish first.
    res = _cli("run", "--select", "view_proj_clients", "-s", "view_proj_sessions", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert sorted(j["job_id"] for j in out["jobs"]) == ["view_proj_clients", "view_proj_sessions"]
    assert out["status"] == "succeeded" and out["launched_by"] == "cli"
    (run,) = json.loads(_cli("runs", "list", "--json").stdout)
    assert run["run_id"] == out["run_id"] and run["pipeline_id"] is None
    # JOB_ID with --select is one more token; +job reaches upstream into ingest.
    res = _cli("run", "canonize_stripe_invoice", "-s", "+canonize_stripe_invoice", "--json")
    assert res.exit_code == 1
    assert [p["subject"] for p in json.loads(res.stdout)["problems"]] == ["STRIPE_API_KEY"]
    # A token that selects nothing says what is near, before any run exists.
    bad = _cli("run", "--select", "view_proj_client")
    assert bad.exit_code == 1 and "did you mean view_proj_clients" in bad.output
    assert len(json.loads(_cli("runs", "list", "--json").stdout)) == 1
    empty = _cli("run")
    assert empty.exit_code == 2 and "--select" in empty.output
    # `plan --select` without a pipeline: the same selection as a dry run.
    res = _cli("plan", "--select", "view_proj_clients")
    assert res.exit_code == 0, res.output
    assert "selected 1 job(s): view_proj_clients" in res.output
    assert "1 job(s): 1 ok, 0 failed" in res.output and "dry run: nothing written" in res.output

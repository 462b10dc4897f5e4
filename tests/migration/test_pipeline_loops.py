"""Pipeline ``loop`` stages: jobs run once per item of an earlier job's output.

The original's shape: ``loop: {over: '@run.<job_id>.items', payload: {k: '@item.x',
m: '@payload.m'}, jobs: [...]}``, a pipeline-level ``payload``, and
``stop_on_failure`` inside the loop. Runs go through Dagster (``launch``), the
one engine.
"""

from __future__ import annotations

import pytest
from kit import upsert_job
from migration_kit import issues_of, services_for, write_catalog
from run_helpers import run_pipeline

from lorchestra_dagster.callables import register, result
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.spec import load_catalog

pytestmark = pytest.mark.e2e


@register("test_loop_echo")
def _echo(params, ctx):
    """One item per call, built from the envelope payload the loop resolved."""
    if params.get("session_id") == "boom":
        raise PermanentError("cannot extract this session")
    return result([{"session_id": params["session_id"], "model": params["model"]}], input=1)


SEED = upsert_job("seed_sessions", "derived", "loop_sessions", "@payload.sessions", "session_id")

PEEK = """\
job_id: peek
version: '2.0'
steps:
- step_id: read
  op: storacle.query
  params:
    dataset: derived
    table: loop_sessions
    columns: [session_id, client_id]
    order_by: session_id
"""

EXTRACT = """\
job_id: extract_one
version: '2.0'
steps:
- step_id: extract
  op: call
  params:
    callable: test_loop_echo
    session_id: '@payload.session_id'
    model: '@payload.model'
- step_id: persist
  op: plan.build
  params:
    method: bq.upsert
    dataset: derived
    table: loop_extracts
    key_columns: [session_id]
    items: '@run.extract.items'
- step_id: write
  op: storacle.submit
  params: {plan: '@run.persist.plan'}
"""


def _pipeline(stop: bool) -> str:
    return f"""\
pipeline_id: pipeline.extract_batch
description: Query, then loop over the rows
payload:
  model: tiny-1
stages:
  - name: query_phase
    jobs: [peek]
  - name: extraction
    loop:
      over: '@run.peek.items'
      stop_on_failure: {str(stop).lower()}
      payload:
        session_id: '@item.session_id'
        client: '@item.client_id'
        model: '@payload.model'
      jobs: [extract_one]
stop_on_failure: false
"""


def _catalog(tmp_path, stop: bool = False):
    return write_catalog(
        tmp_path / "jobs",
        {
            "ingest/seed_sessions.yaml": SEED,
            "debug/peek.yaml": PEEK,
            "llm/extract_one.yaml": EXTRACT,
            "pipeline/pipeline.extract_batch.yaml": _pipeline(stop),
        },
    )


def _seed(svc, sessions):
    from run_helpers import run_job

    job = run_job("seed_sessions", svc, payload={"sessions": sessions})
    assert job.status == "succeeded", job.error


def test_loop_runs_the_jobs_once_per_item_with_item_and_pipeline_payload(tmp_path, _isolated_home):
    cat = _catalog(tmp_path)
    pdef = load_catalog(cat).pipelines["pipeline.extract_batch"]
    assert pdef.payload == {"model": "tiny-1"}
    assert pdef.stages[1].loop is not None and pdef.stages[1].loop.jobs == ["extract_one"]
    with services_for(cat, _isolated_home) as svc:
        _seed(
            svc, [{"session_id": "s1", "client_id": "c1"}, {"session_id": "s2", "client_id": "c2"}]
        )
        res = run_pipeline("pipeline.extract_batch", svc)
        assert res.status == "succeeded", [j.error for j in res.jobs]
        rows = svc.client.query({"dataset": "derived", "table": "loop_extracts"})
    assert sorted((r["session_id"], r["model"]) for r in rows) == [
        ("s1", "tiny-1"),
        ("s2", "tiny-1"),
    ]
    [loop_job] = [j for j in res.jobs if j.job_id == "extract_one"]
    assert loop_job.status == "succeeded"


@pytest.mark.parametrize("stop", [True, False])
def test_stop_on_failure_inside_the_loop(tmp_path, _isolated_home, stop):
    cat = _catalog(tmp_path, stop=stop)
    with services_for(cat, _isolated_home) as svc:
        _seed(svc, [{"session_id": s, "client_id": "c"} for s in ("a1", "boom", "z9")])
        res = run_pipeline("pipeline.extract_batch", svc)
        rows = svc.client.query({"dataset": "derived", "table": "loop_extracts"})
    assert res.status == "failed"
    [loop_job] = [j for j in res.jobs if j.job_id == "extract_one"]
    assert loop_job.status == "failed" and "cannot extract" in str(loop_job.error)
    done = sorted(r["session_id"] for r in rows)
    # stop: the item after the failure never runs; otherwise every other item does
    assert done == (["a1"] if stop else ["a1", "z9"])


def test_loop_over_a_job_of_no_earlier_stage_is_an_error_at_its_line(tmp_path):
    bad = _pipeline(False).replace("@run.peek.items", "@run.extract_one.items")
    cat = write_catalog(
        tmp_path / "jobs",
        {
            "llm/extract_one.yaml": EXTRACT,
            "debug/peek.yaml": PEEK,
            "pipeline/pipeline.x.yaml": bad.replace("pipeline.extract_batch", "pipeline.x"),
        },
    )
    [(code, line, message)] = issues_of(cat, "pipeline/pipeline.x.yaml")
    assert code == "L052" and line == 10
    assert "extract_one" in message and "earlier stage" in message

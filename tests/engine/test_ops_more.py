"""compute.llm, job.run and a whole job over the HTTP transport to a real storacle server."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import uvicorn
from kit import free_port, write_catalog
from serve_helpers import serving
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lorchestra_dagster.engine import Services, execute_with
from lorchestra_dagster.settings import Settings

pytestmark = pytest.mark.e2e

LLM_JOB = """
job_id: summarize
version: '2.0'
steps:
- step_id: ask
  op: compute.llm
  retry: {attempts: 2, backoff_s: 0.01}
  params:
    prompt: Summarise in one word.
    model: tiny
    items: '@payload.items'
"""

CHILD_OK = """
job_id: child_ok
version: '2.0'
steps:
- step_id: persist
  op: plan.build
  params:
    method: bq.insert
    dataset: wal
    table: notes
    items: [{note_id: n1}]
- step_id: write
  op: storacle.submit
  params: {plan: '@run.persist.plan'}
"""

CHILD_BAD = """
job_id: child_bad
version: '2.0'
steps:
- step_id: ask
  op: compute.llm
  params: {prompt: hi}
"""

PARENT = """
job_id: parent
version: '2.0'
steps:
- step_id: first
  op: job.run
  params: {job_id: child_ok}
- step_id: second
  op: job.run
  continue_on_error: true
  params: {job_id: child_bad}
"""

PARENT_STRICT = """
job_id: parent_strict
version: '2.0'
steps:
- step_id: only
  op: job.run
  params: {job_id: child_bad}
"""


def _catalog(root: Path) -> Path:
    return write_catalog(
        root,
        {
            "misc/summarize.yaml": LLM_JOB,
            "misc/child_ok.yaml": CHILD_OK,
            "misc/child_bad.yaml": CHILD_BAD,
            "misc/parent.yaml": PARENT,
            "misc/parent_strict.yaml": PARENT_STRICT,
        },
    )


@pytest.fixture
def fake_llm():
    """A loopback server speaking the OpenAI chat-completions wire format."""
    seen: list[dict] = []
    state = {"fail_first": 0}

    async def chat(request: Request):
        body = await request.json()
        seen.append({"auth": request.headers.get("authorization"), **body})
        if state["fail_first"] > 0:
            state["fail_first"] -= 1
            return JSONResponse({"error": {"message": "busy"}}, status_code=503)
        words = len(body["messages"][0]["content"].split())
        return JSONResponse(
            {"choices": [{"message": {"role": "assistant", "content": f"words:{words}"}}]}
        )

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", seen, state
    server.should_exit = True
    thread.join(timeout=5)


def _services(tmp_path, home, env=None, url=None):
    env = {**(env or {}), **({"STORACLE_URL": url} if url else {})}
    settings = Settings.from_env(env, jobs_dir=_catalog(tmp_path / "jobs"), home=home)
    return Services.from_settings(settings, env=env)


def test_llm_without_configuration_fails_clearly(tmp_path, _isolated_home):
    svc = _services(tmp_path, _isolated_home)
    res = execute_with({"job_id": "summarize", "payload": {"items": [{"a": 1}]}}, svc)
    assert res.status == "failed"
    assert "no LLM is configured" in res.error["message"]
    assert res.steps[0].attempts == 1


def test_llm_against_a_loopback_endpoint_with_a_retry(tmp_path, _isolated_home, fake_llm):
    url, seen, state = fake_llm
    state["fail_first"] = 1
    env = {"LORCHESTRA_LLM_URL": url, "LORCHESTRA_LLM_API_KEY": "k-test"}
    svc = _services(tmp_path, _isolated_home, env=env)
    res = execute_with({"job_id": "summarize", "payload": {"items": [{"a": 1}, {"b": 2}]}}, svc)
    assert res.status == "succeeded", res.error
    assert res.steps[0].attempts == 2  # the 503 was transient
    assert [s["model"] for s in seen] == ["tiny"] * 3
    assert seen[-1]["auth"] == "Bearer k-test"


def test_job_run_runs_children_and_continue_on_error(tmp_path, _isolated_home):
    svc = _services(tmp_path, _isolated_home)
    res = execute_with({"job_id": "parent"}, svc)
    assert res.status == "succeeded"
    assert [s.status for s in res.steps] == ["succeeded", "failed"]
    assert "child job 'child_bad' failed" in res.steps[1].error["message"]
    # The child's write counts for the parent's step (one Dagster run, one record).
    assert res.rows_written == 1 and res.steps[0].rows_written == 1
    assert [r["note_id"] for r in svc.client.query({"dataset": "wal", "table": "notes"})] == ["n1"]
    strict = execute_with({"job_id": "parent_strict"}, svc)
    assert strict.status == "failed" and "child_bad" in strict.error["message"]


def test_a_job_over_http_to_a_real_storacle_server(tmp_path, _isolated_home):
    with serving(_isolated_home) as served:
        svc = _services(tmp_path, _isolated_home, url=served.url)
        first = execute_with({"job_id": "child_ok"}, svc)
        assert first.status == "succeeded" and first.rows_written == 1
        rows = svc.client.query({"dataset": "wal", "table": "notes"})
        assert [r["note_id"] for r in rows] == ["n1"]

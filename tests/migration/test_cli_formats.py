"""JobDefs in ``.json`` files, ``--ctx`` as JSON, and the original's pipeline ids on the CLI."""

from __future__ import annotations

import json

import pytest
from migration_kit import issues_of, write_catalog
from typer.testing import CliRunner

from lorchestra_dagster.callables import register, result
from lorchestra_dagster.cli import app
from lorchestra_dagster.spec import load_catalog

pytestmark = pytest.mark.e2e

SEEN: dict = {}


@register("test_remember_ctx")
def _remember(params, ctx):
    SEEN["params"] = {k: v for k, v in params.items() if k != "items"}
    return result([], input=0)


JOB_JSON = {
    "job_id": "note_ctx",
    "version": "2.0",
    "steps": [
        {
            "step_id": "remember",
            "op": "call",
            "params": {"callable": "test_remember_ctx", "who": "@ctx.who", "n": "@ctx.n?"},
        }
    ],
}

PIPE = """\
pipeline_id: pipeline.notes
stages:
  - name: notes
    jobs: [note_ctx]
stop_on_failure: false
"""


@pytest.fixture
def catalog(tmp_path, monkeypatch):
    root = write_catalog(
        tmp_path / "jobs",
        {
            "debug/note_ctx.json": json.dumps(JOB_JSON, indent=2),
            "pipeline/pipeline.notes.yaml": PIPE,
        },
    )
    monkeypatch.setenv("LORCHESTRA_JOBS_DIR", str(root))
    return root


def _run(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_a_json_jobdef_loads_validates_and_locates_errors(catalog):
    assert "note_ctx" in load_catalog(catalog).jobs
    assert issues_of(catalog, "debug/note_ctx.json") == []
    bad = dict(JOB_JSON, job_id="bad_json", steps=[{"step_id": "x", "op": "nope"}])
    (catalog / "debug" / "bad_json.json").write_text(json.dumps(bad, indent=2))
    [(code, line, _msg)] = issues_of(catalog, "debug/bad_json.json")
    assert code == "L030" and line == 7


def test_ctx_as_json_or_pairs(catalog):
    out = _run("run", "note_ctx", "--ctx", '{"who": "ben", "n": 3}', "--json")
    assert out.exit_code == 0, out.output
    assert SEEN["params"] == {"who": "ben", "n": 3}
    out = _run("run", "note_ctx", "--ctx", "who=amy", "--json")
    assert out.exit_code == 0, out.output
    assert SEEN["params"] == {"who": "amy", "n": None}


def test_bad_ctx_json_is_a_usage_error(catalog):
    out = CliRunner().invoke(app, ["run", "note_ctx", "--ctx", '{"who": '])
    assert out.exit_code == 2
    assert "--ctx" in out.output


@pytest.mark.parametrize("name", ["pipeline.notes", "notes"])
def test_pipeline_run_takes_the_original_id(catalog, name):
    out = _run("pipeline", "run", name, "--ctx", '{"who": "zoe"}', "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["pipeline_id"] == "pipeline.notes"
    assert SEEN["params"]["who"] == "zoe"

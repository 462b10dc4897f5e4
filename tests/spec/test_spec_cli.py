"""The catalog commands through typer's CliRunner, and one real ``lorchestra validate`` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lorchestra_dagster.cli import app

runner = CliRunner()


@pytest.mark.unit
def test_validate_clean_catalog_exits_zero(write_catalog):
    root = write_catalog({})
    result = runner.invoke(app, ["validate", "--jobs-dir", str(root)])
    assert result.exit_code == 0, result.output
    assert "OK: 2 job(s), 1 pipeline(s)" in result.output


@pytest.mark.unit
def test_validate_reports_path_line_col_code(write_catalog):
    root = write_catalog(
        {
            "ingest/ingest_demo.yaml": "job_id: ingest_demo\nversion: '2.0'\nsteps:\n"
            "- step_id: a\n  op: storacle.qery\n  params: {}\n",
            "sources.yaml": "password: hunter2\n",
        }
    )
    result = runner.invoke(app, ["validate", "--jobs-dir", str(root)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert f"{root}/ingest/ingest_demo.yaml:5:7: L030 unknown op 'storacle.qery'" in lines[0]
    assert any(line.startswith(f"{root}/sources.yaml:1:11: L060 ") for line in lines)
    assert "hunter2" not in result.stdout  # the secret itself is never printed
    # sources.yaml without streams: is also an invalid stream file (L070)
    assert lines[-1].startswith("3 error(s)")


@pytest.mark.unit
def test_validate_json_and_env_default(write_catalog, monkeypatch):
    root = write_catalog({"ingest/extra.yaml": "job_id: wrong\nversion: '2.0'\nsteps: []\n"})
    monkeypatch.setenv("LORCHESTRA_JOBS_DIR", str(root))
    result = runner.invoke(app, ["validate", "--format", "json"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["ok"] is False and out["errors"] == len(out["issues"]) >= 2
    assert {i["code"] for i in out["issues"]} >= {"L020", "L013"}
    assert set(out["issues"][0]) == {"path", "line", "col", "code", "message", "severity"}


@pytest.mark.unit
def test_validate_unknown_callable_uses_registry(write_catalog):
    root = write_catalog(
        {
            "ingest/ingest_demo.yaml": "job_id: ingest_demo\nversion: '2.0'\nsteps:\n"
            "- step_id: a\n  op: call\n  params: {callable: definitely_not_registered}\n"
        }
    )
    result = runner.invoke(app, ["validate", "--jobs-dir", str(root), "--format", "json"])
    codes = [i["code"] for i in json.loads(result.stdout)["issues"]]
    assert "L040" in codes


@pytest.mark.unit
def test_schema_command():
    result = runner.invoke(app, ["schema", "--kind", "job"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "lorchestra JobDef v2.0"
    result = runner.invoke(app, ["schema"])
    assert "oneOf" in json.loads(result.stdout)
    assert runner.invoke(app, ["schema", "--kind", "nope"]).exit_code != 0


@pytest.mark.unit
def test_jobs_list_and_show(write_catalog):
    root = write_catalog({})
    result = runner.invoke(app, ["jobs", "list", "--jobs-dir", str(root), "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [(r["job_id"], r["stage"], r["steps"]) for r in rows] == [
        ("canonize_demo", "canonize", 4),
        ("ingest_demo", "ingest", 4),
    ]
    assert rows[1]["path"] == str(root / "ingest/ingest_demo.yaml")
    table = runner.invoke(app, ["jobs", "list", "--jobs-dir", str(root)])
    assert table.exit_code == 0 and "ingest_demo" in table.stdout
    shown = runner.invoke(app, ["jobs", "show", "ingest_demo", "--jobs-dir", str(root)])
    assert shown.exit_code == 0
    body = json.loads(shown.stdout)
    assert body["stage"] == "ingest" and len(body["job_def_sha256"]) == 64
    assert body["jobdef"]["steps"][0]["op"] == "storacle.query"
    missing = runner.invoke(app, ["jobs", "show", "ingest_dem", "--jobs-dir", str(root)])
    assert missing.exit_code == 1 and "did you mean ingest_demo" in missing.output


@pytest.mark.unit
def test_compile_command(write_catalog):
    job = (
        "job_id: ctx_job\nversion: '2.0'\nsteps:\n- step_id: read\n  op: storacle.query\n"
        "  params: {dataset: '@ctx.ds', table: '@payload.table', limit: '@payload.n'}\n"
    )
    root = write_catalog({"views/ctx_job.yaml": job})
    args = ["compile", "ctx_job", "--jobs-dir", str(root), "--ctx", "ds=raw"]
    result = runner.invoke(app, [*args, "--payload", '{"table": "t", "n": 5}'])
    assert result.exit_code == 0, result.output
    inst = json.loads(result.stdout)
    assert inst["steps"][0]["params"] == {"dataset": "raw", "table": "t", "limit": 5}
    again = runner.invoke(app, [*args, "--payload", '{"table": "t", "n": 5}'])
    assert json.loads(again.stdout)["job_def_sha256"] == inst["job_def_sha256"]
    failed = runner.invoke(app, args)
    assert failed.exit_code == 1 and "@payload.table" in failed.output
    assert runner.invoke(app, [*args, "--payload", "[1]"]).exit_code != 0
    assert runner.invoke(app, [*args, "--ctx", "novalue"]).exit_code != 0


@pytest.mark.e2e
def test_real_process_validate(write_catalog, tmp_path):
    root = write_catalog({"ingest/bad.yaml": "job_id: bad\nversion: '2.0'\nsteps: [\n"})
    exe = Path(sys.executable).with_name("lorchestra")
    env = {**os.environ, "LORCHESTRA_JOBS_DIR": str(root)}
    proc = subprocess.run(
        [str(exe), "validate"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 1, proc.stderr
    assert "catalog/ingest/bad.yaml:4:1: L001 YAML syntax error" in proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("1 error(s)")

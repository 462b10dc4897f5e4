"""compile_job: deterministic hash, resolved refs, if/skip, dependency edges, errors."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from spec_fixtures import QUERY_JOB

from lorchestra_dagster.errors import CompileError
from lorchestra_dagster.spec import (
    Envelope,
    JobDef,
    canonical_json,
    compile_job,
    job_def_sha256,
    load_catalog,
)

pytestmark = pytest.mark.unit

COND_JOB = """\
job_id: cond
version: '2.0'
table: clients
window: '@payload.window?'
steps:
- step_id: read
  op: storacle.query
  params:
    dataset: '@ctx.dataset'
    table: '@self.table'
    filters: {day: '@payload.day?'}
    limit: '@ctx.limit?'
- step_id: maybe
  op: call
  if: '@ctx.enrich?'
  params: {callable: enrich, items: '@run.read.items'}
- step_id: always
  op: call
  if: true
  params: {callable: passthrough, items: '@run.read.items', day: '@run.envelope.ctx.dataset'}
- step_id: never
  op: call
  if: false
  params: {callable: passthrough}
"""


def _jobdef(text: str) -> JobDef:
    return JobDef.model_validate(yaml.safe_load(text))


def test_hash_is_sha256_of_canonical_json_and_deterministic():
    jd = _jobdef(QUERY_JOB)
    dumped = jd.model_dump(by_alias=True, exclude_none=True)
    expected = hashlib.sha256(
        json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert job_def_sha256(jd) == expected
    a = compile_job(jd, Envelope(job_id="ingest_demo"))
    b = compile_job(_jobdef(QUERY_JOB), {"job_id": "ingest_demo", "ctx": {"other": 1}})
    assert a.job_def_sha256 == b.job_def_sha256 == expected
    # Key order and explicit defaults do not change the hash; a real change does.
    reordered = yaml.safe_load(QUERY_JOB)
    reordered = dict(reversed(list(reordered.items())))
    reordered["steps"][0]["continue_on_error"] = False
    assert job_def_sha256(JobDef.model_validate(reordered)) == expected
    changed = QUERY_JOB.replace("table: raw_objects", "table: raw_objects2")
    assert job_def_sha256(_jobdef(changed)) != expected
    assert canonical_json({"b": 1, "a": [1]}) == '{"a":[1],"b":1}'


def test_compile_resolves_refs_and_skips():
    env = Envelope(job_id="cond", ctx={"dataset": "raw", "enrich": ""}, payload={"day": "d1"})
    inst = compile_job(_jobdef(COND_JOB), env)
    assert [s.step_id for s in inst.steps] == ["read", "always"]
    assert inst.skipped_steps == ["maybe", "never"]
    read = inst.step("read")
    assert read.params == {
        "dataset": "raw",
        "table": "clients",
        "filters": {"day": "d1"},
        "limit": None,
    }
    always = inst.step("always")
    assert always.params["items"] == "@run.read.items"
    assert always.params["day"] == "@run.envelope.ctx.dataset"
    assert always.depends_on == ["read"]
    assert read.depends_on == []
    assert read.retry.attempts == 3 and read.retry.backoff_s == 1.0
    assert inst.envelope == env and inst.version == "2.0"


def test_missing_ctx_key_is_a_compile_error_naming_it():
    with pytest.raises(CompileError) as info:
        compile_job(_jobdef(COND_JOB), Envelope(job_id="cond"))
    assert "@ctx.dataset" in str(info.value) and "'dataset'" in str(info.value)
    assert info.value.step_id == "read" and info.value.job_id == "cond"


def test_run_ref_to_skipped_step_is_a_compile_error():
    text = COND_JOB + (
        "- step_id: late\n  op: call\n  params: {callable: x, items: '@run.never.items'}\n"
    )
    with pytest.raises(CompileError, match="skipped"):
        compile_job(_jobdef(text), Envelope(job_id="cond", ctx={"dataset": "raw"}))


def test_run_ref_to_later_step_is_a_compile_error():
    text = (
        "job_id: j\nversion: '2.0'\nsteps:\n"
        "- step_id: a\n  op: storacle.submit\n  params: {plan: '@run.b.plan'}\n"
        "- step_id: b\n  op: plan.build\n  params: {items: [], method: wal.append, table: t}\n"
    )
    with pytest.raises(CompileError, match="later step"):
        compile_job(_jobdef(text), Envelope(job_id="j"))


def test_if_must_be_compile_time():
    text = COND_JOB.replace("if: '@ctx.enrich?'", "if: '@run.read.items'")
    with pytest.raises(CompileError, match="'if'"):
        compile_job(_jobdef(text), Envelope(job_id="cond", ctx={"dataset": "raw"}))


def test_envelope_must_name_the_job():
    with pytest.raises(CompileError, match="envelope names job"):
        compile_job(_jobdef(QUERY_JOB), Envelope(job_id="other"))


def test_compile_loaded_job_loads_yaml_extras(write_catalog):
    job = (
        "job_id: with_extra\nversion: '2.0'\ntarget: queries/t.yaml\nsteps:\n"
        "- step_id: read\n  op: storacle.query\n"
        "  params: {dataset: raw, table: '@self.target.table'}\n"
    )
    root = write_catalog({"views/with_extra.yaml": job, "queries/t.yaml": "table: clients\n"})
    loaded = load_catalog(root).job("with_extra")
    inst = compile_job(loaded, Envelope(job_id="with_extra"))
    assert inst.step("read").params["table"] == "clients"
    assert inst.source_path == str(root / "views/with_extra.yaml")
    # A raw JobDef given the catalog dir resolves the same file lazily, same params.
    raw = JobDef.model_validate(yaml.safe_load(job))
    inst2 = compile_job(raw, Envelope(job_id="with_extra"), catalog_dir=root)
    assert inst2.step("read").params == inst.step("read").params


@pytest.mark.parametrize(
    ("flag", "runs"),
    [
        ("false", False),
        ("0", False),
        ("No", False),
        ("", False),
        ("true", True),
        ("yes", True),
        (1, True),
        (0, False),
        ([], False),
        ({"a": 1}, True),
    ],
)
def test_if_truthiness_reads_cli_strings(flag, runs):
    env = Envelope(job_id="cond", ctx={"dataset": "raw", "enrich": flag})
    inst = compile_job(_jobdef(COND_JOB), env)
    assert ("maybe" in inst.skipped_steps) is (not runs)

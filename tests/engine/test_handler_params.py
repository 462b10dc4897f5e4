"""Handlers take their op's params model, validated once after ``@run`` references resolve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kit import write_catalog

from lorchestra_dagster.callables import register, result
from lorchestra_dagster.engine import Services, execute_with
from lorchestra_dagster.engine.handlers import HANDLERS, PARAMS_MODELS, step_params
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.spec.instance import ResolvedStep
from lorchestra_dagster.spec.models import STEP_BY_OP
from lorchestra_dagster.spec.params import LogDumpParams, PlanBuildParams

SECRET = "jane.doe@example.com"


@register("test_contacts")
def _contacts(params, ctx):
    """Rows carrying a value that must never reach an error or a record."""
    return result([{"email": SECRET, "n": 1}], input=0)


WRONG_TYPE = """
job_id: wrong_type
version: '2.0'
steps:
- step_id: src
  op: call
  params: {callable: test_contacts}
- step_id: build
  op: plan.build
  params:
    method: bq.upsert
    dataset: raw
    table: contacts
    key_columns: '@run.src.items'
    items: '@run.src.items'
"""

DUMP = """
job_id: dump
version: '2.0'
steps:
- step_id: src
  op: call
  params: {callable: test_contacts}
- step_id: look
  op: log.dump
  params: {items: '@run.src.items', sample: 3}
"""


def _services(tmp_path: Path, home: Path) -> Services:
    files = {"misc/wrong_type.yaml": WRONG_TYPE, "misc/dump.yaml": DUMP}
    jobs = write_catalog(tmp_path / "jobs", files)
    return Services.from_settings(Settings.from_env({}, jobs_dir=jobs, home=home), env={})


def test_every_op_takes_the_params_model_of_its_step() -> None:
    assert set(PARAMS_MODELS) == set(HANDLERS) == set(STEP_BY_OP)
    for op, model in PARAMS_MODELS.items():
        assert model is STEP_BY_OP[op].model_fields["params"].annotation


@pytest.mark.e2e
def test_the_handler_is_handed_its_model(tmp_path, _isolated_home, monkeypatch) -> None:
    seen: list[object] = []
    real = HANDLERS["log.dump"]

    def spy(step, params, state, services):
        seen.append(params)
        return real(step, params, state, services)

    monkeypatch.setitem(HANDLERS, "log.dump", spy)
    res = execute_with({"job_id": "dump"}, _services(tmp_path, _isolated_home))
    assert res.status == "succeeded", res.error
    [params] = seen
    assert isinstance(params, LogDumpParams)
    assert params.sample == 3 and params.file is None
    assert params.items == [{"email": SECRET, "n": 1}]


@pytest.mark.e2e
def test_a_wrong_type_resolved_from_run_names_job_step_and_field_not_the_value(
    tmp_path, _isolated_home
) -> None:
    res = execute_with({"job_id": "wrong_type"}, _services(tmp_path, _isolated_home))
    assert res.status == "failed"
    err = res.error
    assert (err["job_id"], err["step_id"], err["code"]) == ("wrong_type", "build", "invalid_params")
    assert "key_columns" in err["message"] and "'build'" in err["message"]
    assert "'wrong_type'" in err["message"]
    assert "items" not in err["message"].split("resolved:")[1]  # items was a valid list
    build = next(s for s in res.steps if s.step_id == "build")
    assert build.status == "failed" and build.rows_written == 0
    # Neither the message nor any record quotes the value the reference resolved to.
    record = json.dumps(res.model_dump(mode="json"))
    assert SECRET not in record


def _step(op: str) -> ResolvedStep:
    return ResolvedStep(step_id="s", op=op, params={})


def test_rows_are_neither_copied_nor_walked() -> None:
    """5,000 items pass into the model as the same row objects (pydantic checks the list)."""
    items = [{"idem_key": f"k{i}", "payload": {"n": i}} for i in range(5000)]
    params = step_params(_step("plan.build"), {"method": "bq.insert", "items": items}, "j")
    assert isinstance(params, PlanBuildParams)
    assert isinstance(params.items, list) and len(params.items) == 5000
    assert all(got is row for got, row in zip(params.items, items, strict=True))


def test_every_bad_field_is_named_once() -> None:
    with pytest.raises(PermanentError) as info:
        step_params(
            _step("plan.build"),
            {"method": "bq.upsert", "items": {"who": SECRET}, "table": [SECRET], "nope": SECRET},
            "job",
        )
    err = info.value
    assert err.data["fields"] == ["items", "nope", "table"]
    assert err.job_id == "job" and err.step_id == "s" and err.code == "invalid_params"
    assert SECRET not in str(err) and err.__cause__ is None

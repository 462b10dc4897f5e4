"""Models: discriminated steps, extras, params_dict, run records, manifests, JSON Schema."""

from __future__ import annotations

import jsonschema
import pytest
import yaml
from pydantic import ValidationError
from spec_fixtures import CANON_JOB, PIPELINE, QUERY_JOB

from lorchestra_dagster.spec import (
    CallStep,
    JobDef,
    PipelineDef,
    PlanBuildStep,
    StoracleQueryStep,
    json_schema,
    parse_step,
)

pytestmark = pytest.mark.unit


def test_steps_dispatch_on_op_and_params_are_typed():
    jd = JobDef.model_validate(yaml.safe_load(QUERY_JOB))
    assert [type(s) for s in jd.steps][:3] == [StoracleQueryStep, CallStep, PlanBuildStep]
    assert jd.steps[0].params.dataset == "raw"
    call = jd.step("ingest")
    # call params keep every key for the callable, by alias, without unset defaults
    assert call.params_dict() == {
        "callable": "injest",
        "source": "demo",
        "config": {"since": "@run.cursor.items[0].since"},
    }
    assert jd.steps[0].params_dict() == {
        "dataset": "raw",
        "table": "ingest_watermarks",
        "columns": ["MAX(watermark) AS since"],
        "filters": {"stream": "demo"},
    }


def test_extras_collected_and_round_trip():
    data = yaml.safe_load(QUERY_JOB)
    data["query"] = {"x": 1}
    data["deps"] = ["ingest/ingest_other"]
    jd = JobDef.model_validate(data)
    assert jd.extras == {"query": {"x": 1}} and jd.deps == ["ingest/ingest_other"]
    again = JobDef.model_validate(jd.model_dump(by_alias=True))
    assert again == jd


def test_step_if_alias_and_unknown_keys_forbidden():
    step = parse_step({"step_id": "a", "op": "call", "if": False, "params": {"callable": "x"}})
    assert step.if_ is False
    with pytest.raises(ValidationError):
        parse_step(
            {
                "step_id": "a",
                "op": "storacle.query",
                "params": {"dataset": "d", "table": "t", "frob": 1},
            }
        )
    with pytest.raises(ValidationError):
        parse_step({"step_id": "a", "op": "nope"})


def test_pipeline_model():
    p = PipelineDef.model_validate(yaml.safe_load(PIPELINE))
    assert p.stop_on_failure is True and p.stages[1].jobs == ["canonize_demo"]


@pytest.mark.parametrize("kind", ["job", "pipeline", "all"])
def test_json_schema_is_valid_and_accepts_the_fixtures(kind):
    schema = json_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    docs = {"job": [QUERY_JOB, CANON_JOB], "pipeline": [PIPELINE]}
    accepted = docs.get(kind, docs["job"] + docs["pipeline"])
    for text in accepted:
        errors = list(validator.iter_errors(yaml.safe_load(text)))
        assert not errors, [e.message for e in errors]


def test_json_schema_rejects_typos_and_unknown_ops():
    validator = jsonschema.Draft202012Validator(json_schema("job"))
    data = yaml.safe_load(QUERY_JOB)
    data["steps"][0]["params"]["colums"] = ["a"]
    assert list(validator.iter_errors(data))
    data = yaml.safe_load(QUERY_JOB)
    data["steps"][0]["op"] = "storacle.qery"
    assert list(validator.iter_errors(data))
    schema = json_schema("job")
    assert "extras" not in schema["properties"]
    ops = schema["properties"]["steps"]["items"]["discriminator"]["mapping"]
    assert set(ops) == {
        "storacle.query",
        "call",
        "plan.build",
        "storacle.submit",
        "compute.llm",
        "job.run",
        "log.dump",
    }

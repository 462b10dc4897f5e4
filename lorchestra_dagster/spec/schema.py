"""JSON Schema of the YAML formats and the methods table, generated from the models.

Editors pick the schema up through a ``# yaml-language-server: $schema=<file>``
comment at the top of a job file. ``methods_table`` is the table of ops and
plan methods in docs/architecture.md (``tests/spec/test_schema.py`` keeps the
page equal to it); both come from the registries, never written by hand.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel

from lorchestra_dagster.spec.models import STEP_MODELS, JobDef, PipelineDef, op_name
from lorchestra_dagster.storacle.params import PLAN_PARAMS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _schema(model: type, title: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")  # type: ignore[attr-defined]
    return {"$schema": SCHEMA_DIALECT, **schema, "title": title}


def json_schema(kind: Literal["job", "pipeline", "all"] = "all") -> dict[str, Any]:
    """The JSON Schema of JobDef (``job``), PipelineDef (``pipeline``) or both (``all``).

    ``all`` is one schema accepting either document, so a single
    ``$schema`` comment serves every file of a catalog.
    """
    job = _schema(JobDef, "lorchestra JobDef v2.0")
    pipeline = _schema(PipelineDef, "lorchestra PipelineDef")
    if kind == "job":
        return job
    if kind == "pipeline":
        return pipeline
    defs: dict[str, Any] = {}
    for name, sub in (("JobDef", job), ("PipelineDef", pipeline)):
        sub = dict(sub)
        sub.pop("$schema", None)
        defs.update(sub.pop("$defs", {}))
        defs[name] = sub
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "lorchestra catalog file",
        "oneOf": [{"$ref": "#/$defs/JobDef"}, {"$ref": "#/$defs/PipelineDef"}],
        "$defs": defs,
    }


def _fields(model: type[BaseModel]) -> str:
    """``name`` for a required field, ``name=default`` for the others."""
    out = []
    for name, info in model.model_fields.items():
        if info.is_required():
            out.append(name)
            continue
        default = info.get_default(call_default_factory=True)
        out.append(f"{name}={json.dumps(default)}")
    return ", ".join(out)


def methods_table() -> str:
    """Markdown tables of every op (``STEP_MODELS``) and plan method (``PLAN_PARAMS``)."""
    lines = [
        "| op | params model | outputs | traits |",
        "|---|---|---|---|",
    ]
    for step in STEP_MODELS:
        params = step.model_fields["params"].annotation
        name = getattr(params, "__name__", str(params))
        outputs = ", ".join(sorted(step.outputs)) if step.outputs is not None else "(open)"
        traits = [
            t
            for t, on in (
                (f"{step.table_io}s tables", step.table_io is not None),
                ("keyset batches", step.keyset_batches),
                (f"runs params.{step.callable_param}", step.callable_param is not None),
                (f"records {step.recorded_output}", step.recorded_output is not None),
            )
            if on
        ]
        lines.append(f"| `{op_name(step)}` | `{name}` | {outputs} | {', '.join(traits) or '-'} |")
    lines += [
        "",
        "| plan method | params model | backend | traits | params |",
        "|---|---|---|---|---|",
    ]
    for method, model in sorted(PLAN_PARAMS.items()):
        traits = [
            t
            for t, on in (
                ("reads", model.reads),
                ("rows", model.carries_rows()),
                ("per item", model.per_item),
                ("whole input", model.whole_input),
                ("sql items", model.sql_items),
                (f"dataset {model.fixed_dataset}", model.fixed_dataset is not None),
            )
            if on
        ]
        lines.append(
            f"| `{method}` | `{model.__name__}` | {model.backend} | "
            f"{', '.join(traits) or '-'} | {_fields(model)} |"
        )
    return "\n".join(lines) + "\n"

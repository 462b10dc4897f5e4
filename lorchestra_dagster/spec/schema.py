"""JSON Schema of the YAML formats, generated from the models (never hand-written).

Editors pick it up through a ``# yaml-language-server: $schema=<file>`` comment
at the top of a job file.
"""

from __future__ import annotations

from typing import Any, Literal

from lorchestra_dagster.spec.models import JobDef, PipelineDef

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

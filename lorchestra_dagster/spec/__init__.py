"""The spec layer: typed YAML formats, references, compile, catalog validation.

Pure code (pydantic and PyYAML only): nothing here touches storage or Dagster,
so it tests in milliseconds and every layer above can rely on it.
"""

from lorchestra_dagster.spec.catalog import Catalog, CatalogFile, LoadedJob, load_catalog
from lorchestra_dagster.spec.compile import canonical_json, compile_job, job_def_sha256
from lorchestra_dagster.spec.instance import JobInstance, ResolvedStep
from lorchestra_dagster.spec.issues import CODES, Issue
from lorchestra_dagster.spec.models import (
    OP_OUTPUTS,
    OPS,
    AnyStep,
    CallStep,
    ComputeLlmStep,
    Envelope,
    JobDef,
    JobRunStep,
    PipelineDef,
    PlanBuildStep,
    RetryPolicy,
    Stage,
    Step,
    StoracleQueryStep,
    StoracleSubmitStep,
    parse_step,
)
from lorchestra_dagster.spec.params import (
    CallParams,
    ComputeLlmParams,
    JobRunParams,
    PlanBuildParams,
    StoracleQueryParams,
    StoracleSubmitParams,
)
from lorchestra_dagster.spec.refs import (
    Ref,
    iter_refs,
    parse_ref,
    resolve_compile_refs,
    resolve_run_refs,
)
from lorchestra_dagster.spec.schema import json_schema
from lorchestra_dagster.spec.validate import validate_catalog, validate_loaded
from lorchestra_dagster.spec.yamlpos import YamlDoc, YamlSyntaxError, load_yaml_file, load_yaml_text

__all__ = [
    "CODES",
    "Catalog",
    "CatalogFile",
    "Issue",
    "LoadedJob",
    "YamlDoc",
    "YamlSyntaxError",
    "json_schema",
    "load_catalog",
    "load_yaml_file",
    "load_yaml_text",
    "validate_catalog",
    "validate_loaded",
    "OP_OUTPUTS",
    "OPS",
    "AnyStep",
    "CallParams",
    "CallStep",
    "ComputeLlmParams",
    "ComputeLlmStep",
    "Envelope",
    "JobDef",
    "JobInstance",
    "JobRunParams",
    "JobRunStep",
    "PipelineDef",
    "PlanBuildParams",
    "PlanBuildStep",
    "Ref",
    "ResolvedStep",
    "RetryPolicy",
    "Stage",
    "Step",
    "StoracleQueryParams",
    "StoracleQueryStep",
    "StoracleSubmitParams",
    "StoracleSubmitStep",
    "canonical_json",
    "compile_job",
    "iter_refs",
    "job_def_sha256",
    "parse_ref",
    "parse_step",
    "resolve_compile_refs",
    "resolve_run_refs",
]

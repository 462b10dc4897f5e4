"""The YAML formats as pydantic models: JobDef v2.0, Step variants, PipelineDef, Envelope.

Steps are a discriminated union on ``op`` so each op's params are typed and
the generated JSON Schema tells an editor exactly which keys exist. Every
model forbids unknown keys except JobDef's top level, whose unknown keys are
*extras* addressable as ``@self.<key>`` (DESIGN.md §2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from lorchestra_dagster.spec.legacy import implied_reads
from lorchestra_dagster.spec.params import (
    CallParams,
    ComputeLlmParams,
    JobRunParams,
    LogDumpParams,
    PlanBuildParams,
    RefStr,
    StoracleQueryParams,
    StoracleSubmitParams,
)

#: Rows per keyset page and per plan when a run names none (the envelope's ``batch_size``).
DEFAULT_BATCH_SIZE = 5000
STEP_ID_PATTERN = r"^[a-z0-9_]+$"


class RetryPolicy(BaseModel):
    """How a step that raises a *transient* error is retried (permanent errors never are)."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=3, ge=1, le=20, description="Total attempts, first included")
    backoff_s: float = Field(default=1.0, ge=0, description="First wait; doubles per attempt")
    max_backoff_s: float = Field(default=30.0, ge=0, description="Upper bound of one wait")


class Step(BaseModel):
    """Fields every step has; the subclasses fix ``op`` and type ``params``.

    Validate a raw step with ``parse_step`` (or as part of a JobDef): the
    union dispatches on ``op``.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    #: Output keys the op's handler returns; None: open (callables add keys).
    #: Validation flags ``@run.<step>.<key>`` naming a key the op never produces.
    outputs: ClassVar[frozenset[str] | None] = None
    #: Issue code of a missing required param of this op (None: the generic L012).
    missing_param_code: ClassVar[str | None] = None
    #: An output key the executor keeps on the step's record (``StepResult.shape``): only a
    #: description of the data, never the data (log.dump's ``shape``).
    recorded_output: ClassVar[str | None] = None
    #: The param naming the registered callable the op runs (None: it runs none).
    callable_param: ClassVar[str | None] = None
    #: How the op touches warehouse tables, for lineage: ``read`` a slice (``dataset``,
    #: ``table``, ``filters``), ``write`` through the plan method its ``method`` param
    #: names (that method's params model says where), None: no table of its own.
    table_io: ClassVar[Literal["read", "write"] | None] = None
    #: Its ``batch_key`` (or ``incremental.source_key``) pages the job: the executor runs
    #: the steps downstream of it once per keyset page.
    keyset_batches: ClassVar[bool] = False

    step_id: str = Field(pattern=STEP_ID_PATTERN, description="Unique within the job, [a-z0-9_]")
    op: str = Field(description="Operation (each Step subclass fixes one)")
    params: Any = Field(default=None, description="Op params (typed per op)")
    if_: bool | RefStr | None = Field(
        default=None,
        alias="if",
        description="Compile-time condition: a bool, or a @ctx/@payload/@self reference "
        "resolving to a truthy value; false skips the step",
    )
    continue_on_error: bool = Field(
        default=False, description="A failure of this step does not fail the job"
    )
    timeout_s: float | None = Field(default=None, gt=0, description="Wall-clock limit per attempt")
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Retry policy for transient errors"
    )

    def params_dict(self) -> dict[str, Any]:
        """Params as a plain dict (by alias, unset defaults left out) for the engine."""
        params = self.params
        if params is None:
            return {}
        if isinstance(params, BaseModel):
            return params.model_dump(by_alias=True, exclude_unset=True)
        return dict(params)


class StoracleQueryStep(Step):
    """Read rows through the data plane; output ``{items}``."""

    #: A batched query (``batch_key``) also outputs ``keyset``: its page's key range.
    outputs = frozenset({"items", "keyset"})
    missing_param_code = "L042"
    table_io = "read"
    keyset_batches = True

    op: Literal["storacle.query"] = Field(description="Read rows")
    params: StoracleQueryParams = Field(description="Query params")


class CallStep(Step):
    """Run a registered pure callable; output ``{schema_version, items, stats, ...}``."""

    callable_param = "callable"

    op: Literal["call"] = Field(description="Run a callable")
    params: CallParams = Field(description="callable + its input")


class PlanBuildStep(Step):
    """Turn items into a deterministic write plan; output ``{plan}``."""

    outputs = frozenset({"plan", "rows", "batches"})
    missing_param_code = "L043"
    table_io = "write"

    op: Literal["plan.build"] = Field(description="Build a write plan")
    params: PlanBuildParams = Field(description="Plan params")


class StoracleSubmitStep(Step):
    """Submit plans to the data plane; any error op fails the step."""

    outputs = frozenset({"result"})

    op: Literal["storacle.submit"] = Field(description="Submit plans")
    params: StoracleSubmitParams = Field(description="Plan reference(s)")


class ComputeLlmStep(Step):
    """An LLM step, dispatched to the configured compute handler (fails when none is)."""

    outputs = frozenset({"items", "stats"})

    op: Literal["compute.llm"] = Field(description="LLM compute")
    params: ComputeLlmParams = Field(
        default_factory=ComputeLlmParams, description="Free-form handler params"
    )


class JobRunStep(Step):
    """Run another job; a child failure fails the step unless continue_on_error."""

    outputs = frozenset({"result"})

    op: Literal["job.run"] = Field(description="Run a job")
    params: JobRunParams = Field(description="Child job and envelope")


class LogDumpStep(Step):
    """Describe items by shape (counts, fields, keys, hashes) in the run record; output ``{items}``.

    The original's debug op, kept for its catalogs (``debug/*.yaml``) without its flaw: it
    wrote client data in clear to a file.
    """

    outputs = frozenset({"items", "shape"})
    recorded_output = "shape"

    op: Literal["log.dump"] = Field(description="Describe items by their shape")
    params: LogDumpParams = Field(description="Items, and an optional file for the description")


#: The op registry: one Step subclass per op (its ``op`` literal, params model and
#: outputs). The JSON Schema, validation, the docs table and the engine's handler
#: check are all derived from it; a new op is one class here plus its handler.
STEP_MODELS: tuple[type[Step], ...] = (
    StoracleQueryStep,
    CallStep,
    PlanBuildStep,
    StoracleSubmitStep,
    ComputeLlmStep,
    JobRunStep,
    LogDumpStep,
)


def op_name(model: type[Step]) -> str:
    """The op a Step subclass fixes (the single value of its ``op`` literal)."""
    (name,) = get_args(model.model_fields["op"].annotation)
    return str(name)


OPS: tuple[str, ...] = tuple(op_name(m) for m in STEP_MODELS)
STEP_BY_OP: dict[str, type[Step]] = {op_name(m): m for m in STEP_MODELS}
#: Output keys of each op whose outputs are closed (``call`` is open).
OP_OUTPUTS: dict[str, frozenset[str]] = {
    op_name(m): m.outputs for m in STEP_MODELS if m.outputs is not None
}


def callable_of(op: Any, params: Mapping[str, Any]) -> Any:
    """The callable a step of ``op`` with these raw params runs (its ``callable_param``).

    None for an op that runs no callable (or an unknown op): raw params, so a
    step that failed validation is still read.
    """
    model = STEP_BY_OP.get(op) if isinstance(op, str) else None
    key = model.callable_param if model is not None else None
    return params.get(key) if key is not None else None


AnyStep = Annotated[
    StoracleQueryStep
    | CallStep
    | PlanBuildStep
    | StoracleSubmitStep
    | ComputeLlmStep
    | JobRunStep
    | LogDumpStep,
    Field(discriminator="op"),
]
_STEP_ADAPTER: TypeAdapter[Step] = TypeAdapter(AnyStep)


def parse_step(data: Any) -> Step:
    """Validate one raw step dict into the ``Step`` subclass its ``op`` names."""
    return _STEP_ADAPTER.validate_python(data)


def _jobdef_schema_extra(schema: dict[str, Any]) -> None:
    # In YAML, extras are top-level keys, not a nested "extras" mapping.
    schema.get("properties", {}).pop("extras", None)
    schema["additionalProperties"] = {"description": "An extra, addressable as @self.<key>"}


class JobDef(BaseModel):
    """A job (``jobs/<stage>/<job_id>.yaml``): ordered steps plus extras.

    Unknown top-level keys are collected into ``extras`` (addressable as
    ``@self.<key>``); an extra whose value ends in ``.yaml`` is loaded from that
    file, relative to the catalog, when referenced.
    """

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, json_schema_extra=_jobdef_schema_extra
    )
    KNOWN_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"job_id", "version", "description", "steps", "deps", "backfill_of", "extras"}
    )

    job_id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="Equals the file stem")
    version: Literal["2.0"] = Field(description="Format version, the string '2.0'")
    description: str | None = Field(default=None, description="What the job does")
    steps: list[AnyStep] = Field(min_length=1, description="Steps, run in order")
    deps: list[str] | None = Field(
        default=None,
        description="Asset ids ('<stage>/<job_id>') this job depends on beyond inferred lineage",
    )
    backfill_of: str | None = Field(
        default=None,
        description="Live job whose slice this job rewrites for an explicit window (a "
        "backfill): lineage takes its writes as the live job's, so the two form no cycle",
    )
    extras: dict[str, Any] = Field(
        default_factory=dict, description="Unknown top-level keys, addressable as @self.<key>"
    )

    @model_validator(mode="before")
    @classmethod
    def _collect_extras(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = {k: v for k, v in data.items() if k in cls.KNOWN_KEYS}
        extras = cls.merged_extras(data)
        if extras or "extras" in out:
            out["extras"] = extras
        return out

    @classmethod
    def merged_extras(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """A job file's extras: the ``extras:`` mapping, then its top-level unknown keys,
        which win over a nested key of the same name (validation reads the same merge)."""
        nested = data.get("extras")
        extras = dict(nested) if isinstance(nested, dict) else {}
        extras.update({k: v for k, v in data.items() if k not in cls.KNOWN_KEYS})
        return extras

    @model_validator(mode="after")
    def _explicit_reads(self) -> JobDef:
        """A ``storacle.query`` before each reader call without items (see ``spec.legacy``)."""
        out: list[AnyStep] = []
        taken = {s.step_id for s in self.steps}
        for step in self.steps:
            reads = (
                implied_reads(step.params.callable, step.params.model_extra or {})
                if isinstance(step, CallStep) and step.params.items is None
                else None
            )
            if reads is None:
                out.append(step)  # the callable reports a missing param when it runs
                continue
            update: dict[str, Any] = {}
            for param, query in reads.items():
                step_id = f"{step.step_id}_{'source' if param == 'items' else param}"
                while step_id in taken:
                    step_id += "_"
                taken.add(step_id)
                out.append(
                    StoracleQueryStep.model_validate(
                        {"step_id": step_id, "op": op_name(StoracleQueryStep), "params": query,
                         "retry": step.retry}
                    )
                )  # fmt: skip
                update[param] = f"@run.{step_id}.items"
            dumped = step.params.model_dump(by_alias=True)
            params = step.params.model_validate({**dumped, **update})
            out.append(step.model_copy(update={"params": params}))
        if len(out) != len(self.steps):
            self.steps = out
        return self

    def step(self, step_id: str) -> Step:
        """The step named ``step_id`` (KeyError when absent)."""
        for s in self.steps:
            if s.step_id == step_id:
                return s
        raise KeyError(step_id)


class LoopSpec(BaseModel):
    """A stage that runs its jobs once per item of an earlier job's output.

    ``over`` captures the output of a job of an earlier stage of the same
    pipeline (``@run.<job_id>.items``); ``payload`` is each iteration's envelope
    payload, its values literals, ``@item.<path>`` (the current item) or
    ``@payload.<path>`` (the pipeline's payload).
    """

    model_config = ConfigDict(extra="forbid")

    over: str = Field(
        pattern=r"^@run\.[A-Za-z0-9_.\-]+(\.[A-Za-z0-9_\[\]]+)*$",
        description="@run.<job_id>.<path> of a job in an earlier stage",
    )
    payload: dict[str, Any] = Field(
        default_factory=dict, description="Per-item payload: literals, @item.x, @payload.x"
    )
    jobs: list[str] = Field(min_length=1, description="Jobs run for every item")
    stop_on_failure: bool = Field(
        default=False, description="A failed iteration stops the remaining items"
    )


class Stage(BaseModel):
    """One stage of a pipeline: its jobs run concurrently (or, with ``loop``, per item)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Stage name (ingest, canonize, ...)")
    jobs: list[str] = Field(
        default_factory=list, description="Job ids or pipeline ids, run concurrently"
    )
    loop: LoopSpec | None = Field(default=None, description="Run jobs once per captured item")

    @model_validator(mode="after")
    def _jobs_or_loop(self) -> Stage:
        if bool(self.jobs) == (self.loop is not None):
            raise ValueError("a stage has either 'jobs' or 'loop' (with its own 'jobs')")
        return self

    @property
    def members(self) -> list[str]:
        """The job or pipeline ids this stage runs, loop or not."""
        return list(self.loop.jobs) if self.loop is not None else list(self.jobs)


class PipelineDef(BaseModel):
    """A pipeline: stages in order, the jobs of a stage concurrently."""

    model_config = ConfigDict(extra="forbid")

    pipeline_id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="e.g. pipeline.daily_all")
    description: str | None = Field(default=None, description="What the pipeline does")
    stages: list[Stage] = Field(min_length=1, description="Stages, run in order")
    stop_on_failure: bool = Field(
        default=False, description="A failed stage stops the pipeline before the next stage"
    )
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="Payload of every job of the pipeline (the run's payload overrides it)",
    )


class Envelope(BaseModel):
    """What a run is asked to do: the job, its inputs, and how."""

    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(description="Job to run")
    ctx: dict[str, Any] = Field(default_factory=dict, description="Context (@ctx.*)")
    payload: dict[str, Any] = Field(default_factory=dict, description="Payload (@payload.*)")
    dry_run: bool = Field(default=False, description="Build and show plans, write nothing")
    limit: int | None = Field(default=None, ge=0, description="Cap on rows read per query")
    jobs_dir: str | None = Field(default=None, description="Catalog directory")
    batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE, ge=1, description="Rows per batch (one plan each)"
    )
    run_id: str | None = Field(default=None, description="Run id (generated when absent)")
    parent_run_id: str | None = Field(default=None, description="Pipeline or parent job run")

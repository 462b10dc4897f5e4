"""Typed params of each op, so the JSON Schema is precise and typos fail.

``storacle.query``'s params are storacle's ``QueryParams`` (built from it, not
copied), and ``plan.build``'s methods are storacle's registry
(``storacle/params.py``): spec imports the data plane, never the reverse.

Any param value may instead be a reference string (``RefStr``): the types
below are therefore ``T | RefStr``. Ops whose params are open by design
(``call`` passes everything but ``callable`` to the callable, ``compute.llm``
is handler-dispatched) allow extra keys; the others forbid them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, InstanceOf, JsonValue, create_model
from pydantic.json_schema import SkipJsonSchema

from lorchestra_dagster.spec.refs import REF_PATTERN
from lorchestra_dagster.storacle.params import PLAN_METHODS
from lorchestra_dagster.storacle.plan import Plan
from lorchestra_dagster.storacle.query import QueryParams

RefStr = Annotated[
    str,
    Field(
        pattern=REF_PATTERN,
        description="A reference: @ctx.x, @payload.x, @self.x, @run.<step>.path (optional '?')",
    ),
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _referable(
    model: type[BaseModel], name: str, doc: str, refs: tuple[str, ...], **extra: Any
) -> type[BaseModel]:
    """The step params of a data-plane model: the same fields, ``refs`` also ``| RefStr``.

    Built from storacle's model so the two cannot drift: a field, type,
    constraint or description added there is in the job schema at once (an
    optional field defaults to None here: unset, storacle's default applies).
    ``extra`` adds step-only fields (``(annotation, FieldInfo)``, as
    ``create_model`` takes them). Storacle validates the resolved params again.
    """
    fields: dict[str, Any] = {}
    for field, info in model.model_fields.items():
        typ: Any = info.annotation
        if info.metadata:
            typ = Annotated[typ, *info.metadata]
        if field in refs:
            typ = typ | RefStr
        if info.is_required():
            fields[field] = (typ, Field(description=info.description))
        else:
            # Unset means storacle's default: the step (and its hash) holds only what
            # the YAML says.
            fields[field] = (typ | None, Field(default=None, description=info.description))
    out: type[BaseModel] = create_model(name, __base__=_Params, __doc__=doc, **fields, **extra)
    return out


if TYPE_CHECKING:  # a model built at import; mypy sees its base

    class StoracleQueryParams(BaseModel):
        """Params of ``storacle.query`` (built from storacle's ``QueryParams``)."""

else:
    StoracleQueryParams = _referable(
        QueryParams,
        "StoracleQueryParams",
        "Params of ``storacle.query``: a read through the data plane (``storacle/query.py``).",
        refs=("columns", "filters", "parse_json_columns", "limit", "incremental", "keyset"),
        batch_key=(
            str | None,
            Field(default=None, description="Column the engine pages on when reading in batches"),
        ),
        batch_rows=(
            int | None,
            Field(
                default=None,
                ge=1,
                description="Rows per page of this batched read (default: pages of about 4 MiB); "
                "for an anchor whose few rows pull many rows of other reads, e.g. clients",
            ),
        ),
    )


class CallParams(BaseModel):
    """Params of ``call``: ``callable`` names a registered callable, the rest is its input."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    callable: str = Field(description="Name of a registered callable (lorchestra validate lists)")
    items: list[Any] | RefStr | None = Field(default=None, description="Input items, usually a ref")
    config: dict[str, Any] | RefStr | None = Field(
        default=None, description="Callable-specific configuration"
    )


class PlanBuildParams(_Params):
    """Params of ``plan.build``: items in, a deterministic write plan out."""

    items: list[Any] | RefStr = Field(
        description="Rows to write (file.write: {path, content, encoding}; bq.execute: {sql})"
    )
    method: str = Field(
        description="Write method",
        json_schema_extra={"enum": cast(JsonValue, sorted(PLAN_METHODS))},
    )
    dataset: str | RefStr | None = Field(default=None, description="Target dataset (bq.*)")
    table: str | RefStr | None = Field(default=None, description="Target table")
    key_columns: list[str] | RefStr | None = Field(default=None, description="Upsert key")
    payload_wrap: bool | None = Field(default=None, description="Wrap each item as {payload}")
    id_field: str | None = Field(default=None, description="Item field giving the object id")
    field_defaults: dict[str, Any] | RefStr | None = Field(
        default=None, description="Columns filled when absent"
    )
    auto_external_id: bool | None = Field(default=None, description="external_id from id_field")
    auto_timestamp_columns: list[str] | None = Field(
        default=None, description="Columns set to the run's timestamp"
    )
    skip_update_columns: list[str] | None = Field(
        default=None, description="Columns kept from the existing row on update"
    )
    volatile_columns: list[str] | None = Field(
        default=None, description="Columns ignored when deciding a row is unchanged"
    )
    idem_key_suffix: str | RefStr | None = Field(default=None, description="idem_key '#suffix'")
    fields: list[str] | None = Field(default=None, description="Allowlist of output columns")
    field_map: dict[str, str] | None = Field(default=None, description="Rename columns {from: to}")
    source_ts_field: str | None = Field(
        default=None, description="Dotted item path giving source_ts (epoch s/ms or ISO-8601)"
    )
    db: str | None = Field(default=None, description="sqlite.sync database, relative to the vault")
    delete_missing: bool | None = Field(
        default=None, description="sqlite.sync: delete rows whose key is not in items"
    )
    prune: bool | None = Field(
        default=None,
        description="sqlite.sync: items are keys only; delete the rows whose key is not among "
        "them, write nothing else (the last step of a sync written in batches)",
    )


class StoracleSubmitParams(_Params):
    """Params of ``storacle.submit``: send one or more plans to the data plane."""

    # Once resolved, the reference is the plan.build output itself: a ``Plan`` model, a plan
    # set (dict) or a list of them, taken as they are (not in the job schema: YAML holds refs).
    plan: (
        RefStr
        | list[RefStr]
        | dict[str, Any]
        | SkipJsonSchema[InstanceOf[Plan] | list[InstanceOf[Plan] | dict[str, Any]]]
    ) = Field(description="A reference to a plan.build output plan (or a list of them)")


class JobRunParams(_Params):
    """Params of ``job.run``: run another job with its own envelope."""

    job_id: str | RefStr = Field(description="Job to run")
    ctx: dict[str, Any] | RefStr | None = Field(default=None, description="Child envelope ctx")
    payload: dict[str, Any] | RefStr | None = Field(
        default=None, description="Child envelope payload"
    )


class LogDumpParams(_Params):
    """Params of ``log.dump``: describe a step's items by their shape, never their values.

    The original lorchestra wrote the items themselves to ``file`` (clear JSON of client
    data); here the step records, and ``file`` receives, only counts, field names with their
    types, keys and hashes, which is enough to find a bad record (``lorchestra runs show``).
    """

    items: list[Any] | RefStr = Field(description="The items to describe (a @run reference)")
    file: str | None = Field(
        default=None,
        description="Also write the description here as JSON (0600); a relative path is "
        "relative to LORCHESTRA_HOME; never the items' values",
    )
    sample: int = Field(
        default=20, ge=0, le=1000, description="How many items get a key and hash line"
    )


class ComputeLlmParams(BaseModel):
    """Params of ``compute.llm``: free-form, read by the configured compute handler."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    prompt: str | RefStr | None = Field(default=None, description="Prompt or template")
    model: str | None = Field(default=None, description="Model name for the handler")
    items: list[Any] | RefStr | None = Field(default=None, description="Input items")

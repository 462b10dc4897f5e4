"""Typed params of each op, so the JSON Schema is precise and typos fail.

Any param value may instead be a reference string (``RefStr``): the types
below are therefore ``T | RefStr``. Ops whose params are open by design
(``call`` passes everything but ``callable`` to the callable, ``compute.llm``
is handler-dispatched) allow extra keys; the others forbid them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lorchestra_dagster.spec.refs import REF_PATTERN

RefStr = Annotated[
    str,
    Field(
        pattern=REF_PATTERN,
        description="A reference: @ctx.x, @payload.x, @self.x, @run.<step>.path (optional '?')",
    ),
]

#: Write methods ``plan.build`` knows (DESIGN.md §2); validation prefers the storacle list.
DEFAULT_PLAN_METHODS: tuple[str, ...] = (
    "bq.upsert",
    "bq.insert",
    "bq.execute",
    "sqlite.sync",
    "file.write",
    "wal.append",
)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FilterCondition(_Params):
    """One condition of the list form of ``filters``."""

    column: str = Field(description="Column name (validated and quoted, never spliced)")
    op: Literal["=", "!=", "<>", "<", ">", "<=", ">=", "in", "not_in", "is_null", "not_null"] = (
        Field(default="=", description="Comparison; in/not_in take a list value")
    )
    value: Any = Field(default=None, description="Bound parameter value (or a reference)")


class IncrementalSpec(_Params):
    """Read only source rows the target does not have yet."""

    mode: Literal["left_anti", "not_exists"] = Field(description="Anti-join strategy")
    target_dataset: str = Field(description="Dataset of the table already written")
    target_table: str = Field(description="Table already written")
    source_key: str = Field(description="Key column in the source table")
    target_key: str = Field(description="Key column in the target table")
    join_key_suffix: str | None = Field(
        default=None, description="Target key is '<source key>#<suffix>'"
    )
    source_ts: str | None = Field(default=None, description="Source timestamp column")
    target_ts: str | None = Field(default=None, description="Target timestamp column")


class KeysetSpec(_Params):
    """Keyset paging: rows with ``after < column <= until`` ordered by ``column``.

    A batched job's other reads take ``keyset: '@run.<anchor>.keyset'``: the key
    range of the anchor's current page, so they read only that page's rows.
    """

    column: str = Field(description="Monotonic key column to page on")
    after: Any = Field(default=None, description="Last value already read (None: from start)")
    until: Any = Field(
        default=None, description="Last value of this page, inclusive (None: to the end)"
    )


class StoracleQueryParams(_Params):
    """Params of ``storacle.query``: a read through the data plane."""

    dataset: str = Field(description="Dataset (schema) to read, e.g. raw")
    table: str = Field(description="Table or view to read")
    columns: list[str] | RefStr | None = Field(
        default=None, description="Columns or simple expressions ('MAX(x) AS y'); default ['*']"
    )
    filters: dict[str, Any] | list[FilterCondition] | RefStr | None = Field(
        default=None, description="{col: value} equalities or [{column, op, value}]"
    )
    parse_json_columns: list[str] | RefStr | None = Field(
        default=None, description="JSON columns returned parsed instead of as text"
    )
    limit: int | RefStr | None = Field(default=None, description="Maximum rows to return")
    order_by: str | list[str] | None = Field(
        default=None, description="Column(s) to order by; prefix '-' or suffix ' DESC'"
    )
    incremental: IncrementalSpec | RefStr | None = Field(
        default=None, description="Anti-join against a target so reruns read nothing new"
    )
    keyset: KeysetSpec | RefStr | None = Field(default=None, description="Keyset paging")
    batch_key: str | None = Field(
        default=None, description="Column the engine pages on when reading in batches"
    )
    batch_rows: int | None = Field(
        default=None,
        ge=1,
        description="Rows per page of this batched read (default: pages of about 4 MiB); "
        "for an anchor whose few rows pull many rows of other reads, e.g. clients",
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
        json_schema_extra={"enum": list(DEFAULT_PLAN_METHODS)},
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

    plan: RefStr | list[RefStr] | dict[str, Any] = Field(
        description="A reference to a plan.build output plan (or a list of them)"
    )


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

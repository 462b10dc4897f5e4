"""Typed params of every plan method, validated at the storacle boundary: the registry.

Each class is one method (``PlanParams`` registers it by its ``method``);
``PLAN_PARAMS`` maps every method to its model, and the method sets below are
derived from the classes' traits. Validation (service), dispatch (backends,
on the model's type), ``plan.build``'s checks and shaping, lineage, the job
JSON Schema's method list and the methods table in docs/architecture.md all
read them. A wrong type or a missing key becomes JSON-RPC -32602 naming the
op and field, before any backend is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.storacle.method import PlanParams
from lorchestra_dagster.storacle.query import QueryParams  # registers bq.query

__all__ = [
    "PLAN_METHODS",
    "PLAN_PARAMS",
    "PER_ITEM_METHODS",
    "ROW_METHODS",
    "TABLE_ROW_METHODS",
    "WAREHOUSE_METHODS",
    "ExecuteParams",
    "FileWriteParams",
    "InsertParams",
    "PlanParams",
    "QueryParams",
    "SqliteSyncParams",
    "UpsertParams",
    "WalAppendParams",
    "describe_invalid",
    "parse_params",
]


def _flat_rows(rows: list[Any]) -> list[Any]:
    """Each row must be an object with string keys. Checked by hand so pydantic does
    not copy every row of a 5,000-row batch (the rows are passed through as-is)."""
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"row {n} is {type(row).__name__}, expected an object")
    return rows


Rows = Annotated[list[Any], AfterValidator(_flat_rows)]


class UpsertParams(PlanParams):
    """``bq.upsert``: keyed upsert of flat rows into ``dataset.table``."""

    method = "bq.upsert"
    per_item = True

    dataset: str = Field(description="Target dataset")
    table: str = Field(description="Target table")
    key_columns: list[str] = Field(min_length=1, description="Columns that identify a row")
    rows: Rows = Field(description="Rows; deduped by key, last wins")
    skip_update_columns: list[str] = Field(
        default_factory=list, description="Written on insert only (e.g. first_seen)"
    )
    volatile_columns: list[str] = Field(
        default_factory=list,
        description="Ignored when deciding whether a row changed (e.g. last_seen)",
    )


class InsertParams(PlanParams):
    """``bq.insert``: append rows."""

    method = "bq.insert"

    dataset: str = Field(description="Target dataset")
    table: str = Field(description="Target table")
    rows: Rows = Field(description="Rows to append")


class ExecuteParams(PlanParams):
    """``bq.execute``: one DDL statement (views, tables, schemas)."""

    method = "bq.execute"
    sql_items = True

    sql: str = Field(description="One CREATE/DROP statement")
    dialect: str = Field(default="bigquery", description="Dialect the SQL is written in")


class WalAppendParams(PlanParams):
    """``wal.append``: append rows to ``wal.<table>``."""

    method = "wal.append"
    per_item = True
    fixed_dataset = "wal"

    table: str = Field(description="Table in the wal dataset")
    rows: Rows = Field(description="Rows to append")


class SqliteSyncParams(PlanParams):
    """``sqlite.sync``: make a vault SQLite table hold exactly ``rows`` (by key)."""

    method = "sqlite.sync"
    backend = "sqlite"
    per_item = True
    whole_input = True

    table: str = Field(description="Table inside the vault database")
    key_columns: list[str] = Field(min_length=1, description="Columns that identify a row")
    rows: Rows = Field(description="The complete set of rows the table should hold")
    db: str = Field(default="local.db", description="Database path relative to the vault root")
    delete_missing: bool = Field(default=True, description="Delete rows whose key is not in rows")
    prune: bool = Field(
        default=False,
        description="Rows are keys only: delete the rows whose key is not among them and "
        "write nothing else (a sync sent in batches ends with one prune of every key)",
    )
    volatile_columns: list[str] = Field(
        default_factory=list, description="Ignored when deciding whether a row changed"
    )

    @classmethod
    def target(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"dataset": params.get("db") or "local.db", "table": params.get("table")}


class FileWriteParams(PlanParams):
    """``file.write``: one file under the vault root."""

    method = "file.write"
    backend = "files"

    path: str = Field(description="Path relative to the vault root")
    content: str = Field(description="File content (text, or base64 with encoding=base64)")
    encoding: Literal["utf-8", "base64"] = Field(default="utf-8", description="Content encoding")

    @classmethod
    def target(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"dataset": None, "table": None, "path": params.get("path")}


#: The registry: every plan method's params model, by method name.
PLAN_PARAMS: Mapping[str, type[PlanParams]] = MappingProxyType(PlanParams.registry)
PLAN_METHODS: frozenset[str] = frozenset(PLAN_PARAMS)
#: Methods the warehouse applies (``bq.*`` and ``wal.append``).
WAREHOUSE_METHODS = frozenset(m for m, c in PLAN_PARAMS.items() if c.backend == "warehouse")
#: Methods whose ops carry rows (``plan.build`` shapes its items into them).
ROW_METHODS = frozenset(m for m, c in PLAN_PARAMS.items() if c.carries_rows())
#: Methods that put rows in a warehouse table (lineage writes; ``bq.execute`` is free SQL).
TABLE_ROW_METHODS = ROW_METHODS & WAREHOUSE_METHODS
#: Methods whose target ``plan.build`` may take from each item when no ``table`` is given.
PER_ITEM_METHODS = frozenset(m for m, c in PLAN_PARAMS.items() if c.per_item)


def parse_params(method: str, params: Any) -> PlanParams:
    """Validate one op's params into its method's model.

    Raises:
        PermanentError: ``unknown_method`` for a method outside the registry.
        pydantic.ValidationError: params of the wrong shape (callers name the op).
    """
    model = PLAN_PARAMS.get(method)
    if model is None:
        raise PermanentError(f"unknown plan method {method!r}", code="unknown_method")
    return model.model_validate(params)


def describe_invalid(err: ValidationError) -> str:
    """The first five problems of a validation error: field paths and messages, no values."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in err.errors()[:5]
    )

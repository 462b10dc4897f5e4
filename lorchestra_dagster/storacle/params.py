"""Typed params of every plan method, validated at the storacle boundary.

A wrong type or a missing key becomes JSON-RPC -32602 naming the op and field,
before any backend is touched.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lorchestra_dagster.storacle.query import QueryParams


def _flat_rows(rows: list[Any]) -> list[Any]:
    """Each row must be an object with string keys. Checked by hand so pydantic does
    not copy every row of a 5,000-row batch (the rows are passed through as-is)."""
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"row {n} is {type(row).__name__}, expected an object")
    return rows


Rows = Annotated[list[Any], AfterValidator(_flat_rows)]


class UpsertParams(BaseModel):
    """``bq.upsert``: keyed upsert of flat rows into ``dataset.table``."""

    model_config = ConfigDict(extra="forbid")

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


class InsertParams(BaseModel):
    """``bq.insert``: append rows."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(description="Target dataset")
    table: str = Field(description="Target table")
    rows: Rows = Field(description="Rows to append")


class ExecuteParams(BaseModel):
    """``bq.execute``: one DDL statement (views, tables, schemas)."""

    model_config = ConfigDict(extra="forbid")

    sql: str = Field(description="One CREATE/DROP statement")
    dialect: str = Field(default="bigquery", description="Dialect the SQL is written in")


class WalAppendParams(BaseModel):
    """``wal.append``: append rows to ``wal.<table>``."""

    model_config = ConfigDict(extra="forbid")

    table: str = Field(description="Table in the wal dataset")
    rows: Rows = Field(description="Rows to append")


class SqliteSyncParams(BaseModel):
    """``sqlite.sync``: make a vault SQLite table hold exactly ``rows`` (by key)."""

    model_config = ConfigDict(extra="forbid")

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


class FileWriteParams(BaseModel):
    """``file.write``: one file under the vault root."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Path relative to the vault root")
    content: str = Field(description="File content (text, or base64 with encoding=base64)")
    encoding: Literal["utf-8", "base64"] = Field(default="utf-8", description="Content encoding")


PARAMS_BY_METHOD: dict[str, type[BaseModel]] = {
    "bq.upsert": UpsertParams,
    "bq.insert": InsertParams,
    "bq.execute": ExecuteParams,
    "bq.query": QueryParams,
    "wal.append": WalAppendParams,
    "sqlite.sync": SqliteSyncParams,
    "file.write": FileWriteParams,
}

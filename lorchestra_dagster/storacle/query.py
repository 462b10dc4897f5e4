"""Validated parameters of ``storacle.query`` / ``bq.query``.

Kept apart from the SQL builder so the engine and validation can check a step's
params without importing sqlglot machinery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lorchestra_dagster.storacle.method import PlanParams

FilterOp = Literal["=", "!=", "<>", "<", ">", "<=", ">=", "in", "not_in", "is_null", "not_null"]


class Filter(BaseModel):
    """One typed predicate ``column op value`` (value bound, never spliced)."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="Column of the source table")
    op: FilterOp = Field(default="=", description="Comparison operator")
    value: Any = Field(default=None, description="Bound value; a list for in/not_in")


class Incremental(BaseModel):
    """Return only source rows the target has not seen (or has seen older)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["left_anti", "not_exists"] = Field(description="Join strategy; same rows")
    target_dataset: str = Field(description="Dataset of the table already written")
    target_table: str = Field(description="Table already written")
    source_key: str = Field(description="Key column of the source table")
    target_key: str = Field(description="Key column of the target table")
    join_key_suffix: str | None = Field(
        default=None, description="Target key = source key || '#' || suffix"
    )
    source_ts: str | None = Field(default=None, description="Source change timestamp column")
    target_ts: str | None = Field(
        default=None, description="Target timestamp; rows with source_ts > target_ts return"
    )

    def timestamps(self, source_dataset: str, source_table: str) -> tuple[str | None, str | None]:
        """``(source_ts, target_ts)`` to compare, defaults included.

        ``left_anti`` with neither set compares ``last_seen`` with
        ``canonicalized_at`` when the declared source and target tables have
        them, as the original did, so a raw row updated after it was canonized
        is read again. Writing ``source_ts: null`` keeps the key-only join.
        """
        if self.mode != "left_anti" or {"source_ts", "target_ts"} & self.model_fields_set:
            return self.source_ts, self.target_ts
        from lorchestra_dagster.storacle.tables import declared

        src = declared(source_dataset, source_table)
        tgt = declared(self.target_dataset, self.target_table)
        if src is not None and tgt is not None:
            if "last_seen" in src.columns and "canonicalized_at" in tgt.columns:
                return "last_seen", "canonicalized_at"
        return None, None


class Keyset(BaseModel):
    """Keyset paging: rows with ``after < column <= until`` ordered by ``column``."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="Paging column (unique, sortable)")
    after: Any = Field(default=None, description="Last value of the previous page; null = start")
    until: Any = Field(
        default=None,
        description="Last value of this page (inclusive); null = to the end. With no "
        "``after``, rows whose column is null are included too (the first of a series "
        "of ranges)",
    )


class QueryParams(PlanParams):
    """Params of ``storacle.query`` (a read of one table), and of ``bq.query`` in a plan."""

    method = "bq.query"
    reads = True

    dataset: str = Field(description="Dataset of the table to read")
    table: str = Field(description="Table to read")
    columns: list[str] = Field(default_factory=lambda: ["*"], description="Column expressions")
    filters: dict[str, Any] | list[Filter] | None = Field(
        default=None, description="{col: value} equalities or a list of typed filters"
    )
    parse_json_columns: list[str] = Field(
        default_factory=list, description="Columns returned as parsed JSON"
    )
    limit: int | None = Field(default=None, ge=0, le=1_000_000_000, description="Maximum rows")
    order_by: list[str] | str | None = Field(default=None, description="'col' or 'col DESC'")
    incremental: Incremental | None = Field(default=None, description="Unseen rows only")
    keyset: Keyset | None = Field(default=None, description="Keyset paging")

    @field_validator("columns")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("columns must not be empty (use ['*'])")
        return v

    def filter_list(self) -> list[Filter]:
        """Filters as typed predicates (``{col: None}`` means IS NULL)."""
        if self.filters is None:
            return []
        if isinstance(self.filters, dict):
            return [
                Filter(column=c, op="is_null" if v is None else "=", value=v)
                for c, v in self.filters.items()
            ]
        return list(self.filters)


def keyset_pages(
    read: Callable[[dict[str, Any]], list[dict[str, Any]]],
    params: Mapping[str, Any],
    key: str,
    rows: int,
) -> Iterator[list[dict[str, Any]]]:
    """The rows of one read in keyset pages of ``rows`` on the unique column ``key``.

    ``read`` takes query params (a client's ``query``, or a backend's through
    ``QueryParams``); the last page is the first one shorter than ``rows``, so a read
    that fits in one page is one query.
    """
    after: Any = None
    while True:
        page = read({**params, "keyset": {"column": key, "after": after}, "limit": rows})
        if page:
            yield page
        if len(page) < rows:
            return
        after = page[-1][key]

"""plan.build: turn items into warehouse rows and a storacle plan.

Pure functions: the row-shaping order is part of the JobDef contract (DESIGN.md
section 2) and must never depend on I/O, so it is tested in isolation. The
order is: payload_wrap, auto_external_id, field_defaults, timestamps,
correlation_id, idem_key from id_field, suffix, source_ts, field_map, fields.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from lorchestra_dagster.errors import PermanentError, fingerprint
from lorchestra_dagster.spec.params import PlanBuildParams
from lorchestra_dagster.storacle.params import (
    PER_ITEM_METHODS,
    ExecuteParams,
    FileWriteParams,
    InsertParams,
    PlanParams,
    QueryParams,
    SqliteSyncParams,
    UpsertParams,
    WalAppendParams,
)
from lorchestra_dagster.timestamps import parse_utc

PLANSET_VERSION = "storacle.planset/1.0.0"
#: Auto timestamps that record "processed at" and that incremental reads compare with
#: the source's change time: never volatile by default (see ``volatile_columns``).
LAST_PROCESSED = frozenset({"canonicalized_at", "processed_at"})


def get_path(obj: Any, path: str) -> Any:
    """Follow a dotted path (``a.b.0.c``) through dicts and lists; ``None`` when absent."""
    cur = obj
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.lstrip("-").isdigit():
            idx = int(part)
            cur = cur[idx] if -len(cur) <= idx < len(cur) else None
        else:
            return None
        if cur is None:
            return None
    return cur


def parse_source_ts(value: Any) -> str | None:
    """Normalise a source clock value to ISO-8601 UTC.

    Vendors disagree: Stripe sends epoch seconds, Gmail epoch milliseconds as a
    string, Graph/Dataverse/Forms ISO-8601. Anything above 1e11 is taken as
    milliseconds (1e11 seconds is the year 5138).
    """
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        if value is None:
            return None
        raise PermanentError(f"source_ts value of type {type(value).__name__} is not a time")
    try:
        parsed = parse_utc(value)
    except ValueError:
        raise PermanentError(
            f"source_ts value ({fingerprint(value)}) is not ISO-8601 or epoch"
        ) from None
    return parsed.isoformat() if parsed is not None else None


def _resolved(value: Any, name: str) -> Any:
    """A param that may be a reference in the YAML, now resolved (a str left is a bug)."""
    if isinstance(value, str):
        raise PermanentError(f"plan.build param {name!r} is an unresolved reference")
    return value


def shape_rows(
    items: list[dict[str, Any]],
    params: PlanBuildParams,
    *,
    correlation_id: str,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Apply plan.build's row shaping to every item, in the documented order."""
    now_iso = (now or datetime.now(tz=UTC)).isoformat()
    payload_wrap = bool(params.payload_wrap)
    id_field = params.id_field
    auto_external_id = bool(params.auto_external_id)
    defaults: dict[str, Any] = _resolved(params.field_defaults, "field_defaults") or {}
    ts_cols = params.auto_timestamp_columns or []
    suffix = params.idem_key_suffix
    source_ts_field = params.source_ts_field
    field_map = params.field_map or {}
    fields = params.fields

    rows: list[dict[str, Any]] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise PermanentError(f"plan.build item {n} is a {type(item).__name__}, not an object")
        row: dict[str, Any] = {"payload": item} if payload_wrap else dict(item)
        ident = get_path(item, id_field) if id_field else None
        if id_field and ident is None:
            raise PermanentError(f"plan.build item {n} has no id at {id_field!r}")
        if auto_external_id and ident is not None:
            row["external_id"] = str(ident)
        for key, value in defaults.items():
            if row.get(key) is None:
                row[key] = copy.deepcopy(value)
        for col in ts_cols:
            row[col] = now_iso
        if row.get("correlation_id") is None:
            row["correlation_id"] = correlation_id
        if id_field and row.get("idem_key") is None:
            parts = [row.get(k) for k in ("source_system", "connection_name", "object_type")]
            if any(p is None for p in parts):
                raise PermanentError(
                    "plan.build with id_field needs source_system, connection_name and "
                    "object_type (set them in field_defaults)"
                )
            row["idem_key"] = ":".join(str(p) for p in [*parts, ident])
        if suffix:
            if row.get("idem_key") is None:
                raise PermanentError(f"plan.build item {n} has no idem_key to suffix")
            row["idem_key"] = f"{row['idem_key']}#{suffix}"
        if source_ts_field:
            row["source_ts"] = parse_source_ts(get_path(item, source_ts_field))
        for target, source in field_map.items():
            row[target] = get_path(row, source)
        if fields is not None:
            row = {k: row.get(k) for k in fields}
        rows.append(row)
    return rows


def is_per_item(params: PlanBuildParams) -> bool:
    """True when ``plan.build`` takes its targets from the items (no ``table`` param).

    The original's per-item mode: ``{table, rows, ...}`` items from bq_reader or the
    ``projection/bq_rows_to_sqlite_sync`` transform, for the methods whose params
    model says ``per_item``.
    """
    return params.method in PER_ITEM_METHODS and not params.table


def _db_of(item: dict[str, Any]) -> str | None:
    """The vault database an item names: ``db``, or the file name of ``sqlite_path``.

    The original wrote absolute paths (``~/clinical-vault/local.db``); here every
    SQLite file lives in the vault, so only the file name is kept.
    """
    if item.get("db"):
        return str(item["db"])
    path = item.get("sqlite_path")
    if isinstance(path, str) and path:
        return path.replace("\\", "/").rsplit("/", 1)[-1]
    return None


def per_item_ops(
    items: list[Any], params: PlanBuildParams, *, correlation_id: str
) -> list[tuple[str, dict[str, Any]]]:
    """One op per item for per-item mode, rows shaped by the step's shaping params.

    Each item is ``{table, rows, ...}``; the method's per-item builder
    (``PER_ITEM_BUILDERS``) turns it into the op. ``columns`` (when given) is
    the exact column list of the table.
    """
    method = params.method
    builder = PER_ITEM_BUILDERS.get(method)
    if builder is None:
        raise PermanentError(f"plan.build {method} has no per-item mode", code="invalid_params")
    ops: list[tuple[str, dict[str, Any]]] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("table") or "rows" not in item:
            got = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise PermanentError(
                f"plan.build {method} item {n} has no target: with no 'table' param each "
                f"item needs 'table' and 'rows' (got keys {got})",
                code="invalid_params",
            )
        raw = item["rows"]
        if not isinstance(raw, list):
            raise PermanentError(f"plan.build {method} item {n}: 'rows' must be a list")
        rows = shape_rows(raw, params, correlation_id=correlation_id)
        columns = item.get("columns")
        if isinstance(columns, list) and columns:
            rows = [{c: row.get(c) for c in columns} for row in rows]
        ops.append((method, builder(n, item, rows, params)))
    return ops


PerItemBuilder = Callable[
    [int, dict[str, Any], list[dict[str, Any]], PlanBuildParams], dict[str, Any]
]
#: How per-item mode turns one item (its number, the item, its shaped rows, the step's
#: params) into op params, per plan method; a test checks every ``per_item`` method has one.
PER_ITEM_BUILDERS: dict[str, PerItemBuilder] = {}


def builds_per_item(model: type[PlanParams]) -> Callable[[PerItemBuilder], PerItemBuilder]:
    """Register the per-item op builder of ``model``'s method."""

    if not model.per_item:
        raise TypeError(f"plan method {model.method!r} has no per-item mode (per_item)")

    def deco(fn: PerItemBuilder) -> PerItemBuilder:
        PER_ITEM_BUILDERS[model.method] = fn
        return fn

    return deco


@builds_per_item(WalAppendParams)
def _wal_item(
    _n: int, item: dict[str, Any], rows: list[Any], _p: PlanBuildParams
) -> dict[str, Any]:
    return {"table": item["table"], "rows": rows}


@builds_per_item(UpsertParams)
def _upsert_item(
    n: int, item: dict[str, Any], rows: list[Any], params: PlanBuildParams
) -> dict[str, Any]:
    if not item.get("dataset") or not item.get("key_columns"):
        raise PermanentError(
            f"plan.build {UpsertParams.method} item {n} needs 'dataset' and 'key_columns' "
            "with its 'table' and 'rows'",
            code="invalid_params",
        )
    return {
        "dataset": item["dataset"],
        "table": item["table"],
        "rows": rows,
        "key_columns": list(item["key_columns"]),
        "skip_update_columns": list(
            item.get("skip_update_columns") or params.skip_update_columns or []
        ),
        "volatile_columns": volatile_columns(params),
    }


@builds_per_item(SqliteSyncParams)
def _sqlite_item(
    _n: int, item: dict[str, Any], rows: list[Any], params: PlanBuildParams
) -> dict[str, Any]:
    """Keys on the item's ``key_columns``, else the step's, else ``idem_key`` when the rows
    have one, else every column (a full mirror)."""
    columns = item.get("columns")
    keys = item.get("key_columns") or _resolved(params.key_columns, "key_columns")
    if not keys:
        names = list(columns or (rows[0] if rows else []))
        keys = ["idem_key"] if "idem_key" in names else names
    op: dict[str, Any] = {
        "table": item["table"],
        "key_columns": list(keys) or ["idem_key"],
        "rows": rows,
        "delete_missing": _delete_missing(params),
        "volatile_columns": [*volatile_columns(params), *(item.get("volatile_columns") or [])],
    }
    db = _db_of(item) or params.db
    if db:
        op["db"] = db
    return op


def chunks(rows: list[Any], size: int) -> Iterator[list[Any]]:
    """Split into batches of at most ``size`` (each becomes one atomic plan)."""
    size = max(1, int(size))
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _delete_missing(params: PlanBuildParams) -> bool:
    """sqlite.sync's ``delete_missing``: unset means storacle's default (delete)."""
    return True if params.delete_missing is None else params.delete_missing


def volatile_columns(params: PlanBuildParams) -> list[str]:
    """Columns that change every run without the data changing.

    Timestamps stamped by plan.build and the run's correlation id differ on every
    run; comparing them would turn every rerun into an update, so they are only
    written when some other column changed (and on insert).

    ``LAST_PROCESSED`` timestamps are the exception: incremental reads compare
    them (``left_anti`` defaults to ``last_seen`` vs ``canonicalized_at``), so a
    row that was read again is written again, or it would be read on every run.
    """
    if params.volatile_columns is not None:
        return list(params.volatile_columns)
    auto = [c for c in params.auto_timestamp_columns or [] if c not in LAST_PROCESSED]
    return [*auto, "correlation_id"]


OpBuilder = Callable[[list[Any], PlanBuildParams], list[dict[str, Any]]]
#: How plan.build turns one batch into op params, per plan method (keyed by the method
#: its params model registers; a test checks every registered method has one).
BUILDERS: dict[str, OpBuilder] = {}


def builds(model: type[PlanParams]) -> Callable[[OpBuilder], OpBuilder]:
    """Register the op builder of ``model``'s method."""

    def deco(fn: OpBuilder) -> OpBuilder:
        BUILDERS[model.method] = fn
        return fn

    return deco


def build_ops(
    rows_or_items: list[dict[str, Any]], params: PlanBuildParams
) -> list[tuple[str, dict[str, Any]]]:
    """Plan ops for one batch of already-shaped rows (or raw items for execute/file.write)."""
    method = params.method
    builder = BUILDERS.get(method)
    if builder is None:
        raise PermanentError(f"unknown plan method {method!r}")
    return [(method, op) for op in builder(rows_or_items, params)]


# A param the op needs but the step left unset goes to storacle as None, so its
# validation names the op and field (``lorchestra validate`` reports it first: L043).


@builds(UpsertParams)
def _upsert(rows: list[Any], params: PlanBuildParams) -> list[dict[str, Any]]:
    return [
        {
            "dataset": params.dataset,
            "table": params.table,
            "key_columns": _resolved(params.key_columns, "key_columns"),
            "rows": rows,
            "skip_update_columns": list(params.skip_update_columns or []),
            "volatile_columns": volatile_columns(params),
        }
    ]


@builds(InsertParams)
def _insert(rows: list[Any], params: PlanBuildParams) -> list[dict[str, Any]]:
    return [{"dataset": params.dataset, "table": params.table, "rows": rows}]


@builds(WalAppendParams)
def _wal(rows: list[Any], params: PlanBuildParams) -> list[dict[str, Any]]:
    return [{"table": params.table, "rows": rows}]


@builds(SqliteSyncParams)
def _sqlite(rows: list[Any], params: PlanBuildParams) -> list[dict[str, Any]]:
    op: dict[str, Any] = {
        "table": params.table,
        "key_columns": _resolved(params.key_columns, "key_columns"),
        "rows": rows,
        "delete_missing": _delete_missing(params),
        "volatile_columns": volatile_columns(params),
    }
    if params.db:
        op["db"] = params.db
    if params.prune:
        op["prune"] = True
    return [op]


@builds(ExecuteParams)
def _execute(items: list[Any], params: PlanBuildParams) -> list[dict[str, Any]]:
    ops = []
    for n, item in enumerate(items):
        sql = item.get("sql") if isinstance(item, dict) else item
        if not isinstance(sql, str) or not sql.strip():
            raise PermanentError(f"bq.execute item {n} has no 'sql' string")
        dialect = (item.get("dialect") if isinstance(item, dict) else None) or "bigquery"
        ops.append({"sql": sql, "dialect": dialect})
    return ops


@builds(FileWriteParams)
def _file(items: list[Any], params: PlanBuildParams) -> list[dict[str, Any]]:
    ops = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("path") or "content" not in item:
            raise PermanentError(f"file.write item {n} needs 'path' and 'content'")
        ops.append(
            {
                "path": item["path"],
                "content": item["content"],
                "encoding": item.get("encoding", "utf-8"),
            }
        )
    return ops


@builds(QueryParams)
def _query(_items: list[Any], params: PlanBuildParams) -> list[dict[str, Any]]:
    given = params.model_fields_set - {"method", "items"}
    return [{k: getattr(params, k) for k in sorted(given)}]

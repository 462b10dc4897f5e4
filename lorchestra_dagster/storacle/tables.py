"""Declared warehouse tables and type inference for the rest.

The known tables get fixed column types (JSON payloads, UTC timestamps), so the
first write of a sparse batch cannot pin a column to the wrong type. Any other
table is created from its first batch with types inferred from the values.
Types are DuckDB names; other backends map them in their adapter.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

VARCHAR = "VARCHAR"
JSON = "JSON"
TIMESTAMP = "TIMESTAMPTZ"
BIGINT = "BIGINT"
DOUBLE = "DOUBLE"
BOOLEAN = "BOOLEAN"
COLUMN_TYPES = (VARCHAR, JSON, TIMESTAMP, BIGINT, DOUBLE, BOOLEAN)

DATASETS = ("raw", "canonical", "derived", "wal", "ops")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ISO_TS = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}(:?\d{2})?)$")


class TableSchema(BaseModel):
    """Columns (in order) and logical key of one table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(description="Dataset (a DuckDB schema, a BigQuery dataset)")
    table: str = Field(description="Table name inside the dataset")
    columns: dict[str, str] = Field(description="Column name -> type, in declaration order")
    key: tuple[str, ...] = Field(default=(), description="Logical key columns (not enforced)")


def table(dataset: str, name: str, key: tuple[str, ...], /, **columns: str) -> TableSchema:
    """A declaration: ``columns`` in order (name -> storacle type), ``key`` its logical key."""
    return TableSchema(dataset=dataset, table=name, columns=columns, key=key)


_t = table  # short, for the declarations below


_V, _J, _TS, _I, _D, _B = VARCHAR, JSON, TIMESTAMP, BIGINT, DOUBLE, BOOLEAN

#: Every declared table, by (dataset, table). Storacle declares the data tables below;
#: the layers that own other tables hand theirs over with ``declare`` (the engine's
#: run tables: ``engine/tables.py``; the alert sync's: ``alerts/store.py``), so
#: storacle never imports them.
DECLARED: dict[tuple[str, str], TableSchema] = {}


def declare(*schemas: TableSchema) -> None:
    """Add table declarations (idempotent; a different second declaration is refused).

    Raises:
        ValueError: ``dataset.table`` is already declared with other columns or key.
    """
    for schema in schemas:
        key = (schema.dataset, schema.table)
        known = DECLARED.get(key)
        if known is not None and known != schema:
            raise ValueError(
                f"table {schema.dataset}.{schema.table} is declared twice, differently"
            )
        DECLARED[key] = schema


declare(
        _t(
            "raw", "raw_objects", ("idem_key",),
            idem_key=_V, source_system=_V, connection_name=_V, object_type=_V,
            external_id=_V, payload=_J, source_ts=_TS, first_seen=_TS, last_seen=_TS,
            correlation_id=_V,
        ),
        # Per stream, the source clock an ingest job read up to; written after its last page.
        _t("raw", "ingest_cursors", ("stream",), stream=_V, since=_TS),
        _t(
            "raw", "ingest_files", ("file_sha256",),
            file_sha256=_V, stream=_V, path=_V, rows=_I, consumed_at=_TS,
        ),
        _t(
            "canonical", "canonical_objects", ("idem_key",),
            idem_key=_V, source_system=_V, connection_name=_V, object_type=_V,
            canonical_schema=_V, canonical_format=_V, transform_ref=_V, correlation_id=_V,
            payload=_J, canonicalized_at=_TS, created_at=_TS,
        ),
        _t(
            "derived", "measurement_events", ("idem_key",),
            idem_key=_V, canonical_idem_key=_V, binding_id=_V, binding_version=_V,
            form_id=_V, subject_id=_V, occurred_at=_TS, metadata=_J, correlation_id=_V,
            processed_at=_TS,
        ),
        _t(
            "derived", "observations", ("idem_key",),
            idem_key=_V, measurement_event_idem_key=_V, subject_id=_V, measure_code=_V,
            instrument_code=_V, value_numeric=_D, severity_code=_V, severity_label=_V,
            components=_J, flags=_J, occurred_at=_TS, correlation_id=_V, processed_at=_TS,
        ),
        _t(
            # one row per submission and safety rule fired (or quarantine); never deleted
            "derived", "safety_flags", ("flag_id",),
            flag_id=_V, measurement_event_idem_key=_V, subject_id=_V, form_id=_V,
            instrument_code=_V, item=_I, code=_V, severity=_V, message=_V, reason=_V,
            item_value=_I, active=_B, occurred_at=_TS, correlation_id=_V, processed_at=_TS,
        ),
        _t(
            # render_measures' own state: what each client's files were drawn from
            "derived", "vault_renders", ("client_id", "artifact"),
            client_id=_V, artifact=_V, input_sha256=_V, renderer_version=_V,
            rendered_at=_TS, correlation_id=_V,
        ),
)  # fmt: skip


def declared(dataset: str, table: str) -> TableSchema | None:
    """The declared schema of ``dataset.table`` or None for an inferred table."""
    return DECLARED.get((dataset, table))


def is_identifier(name: object) -> bool:
    """True for a plain SQL identifier (``[A-Za-z_][A-Za-z0-9_]*``)."""
    return isinstance(name, str) and bool(_IDENT.match(name)) and len(name) <= 128


def infer_type(values: Iterable[Any]) -> str:
    """Column type for a set of Python values (None ignored; mixed kinds -> VARCHAR).

    Values have usually crossed a JSON boundary, so datetimes arrive as ISO-8601
    strings; a column whose every value is a full ISO timestamp with an offset
    is typed TIMESTAMPTZ.
    """
    kinds: set[str] = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add(BOOLEAN)
        elif isinstance(v, int):
            kinds.add(BIGINT)
        elif isinstance(v, float):
            kinds.add(DOUBLE)
        elif isinstance(v, dict | list | tuple):
            kinds.add(JSON)
        elif isinstance(v, dt.datetime):
            kinds.add(TIMESTAMP)
        elif isinstance(v, str) and _ISO_TS.match(v):
            kinds.add(TIMESTAMP)
        else:
            kinds.add(VARCHAR)
        if len(kinds) > 2:
            break
    if len(kinds) == 1:
        return kinds.pop()
    if kinds == {BIGINT, DOUBLE}:
        return DOUBLE
    return VARCHAR


def infer_columns(rows: list[Mapping[str, Any]]) -> dict[str, str]:
    """Column -> type for a batch of rows, columns in first-seen order."""
    order: dict[str, None] = {}
    for row in rows:
        for name in row:
            order.setdefault(name, None)
    return {name: infer_type(row.get(name) for row in rows) for name in order}

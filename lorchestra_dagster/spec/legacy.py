"""Steps of the original's catalogs that read storage inside a callable, made explicit.

The original's ``bq_reader`` and ``measurement_projector`` callables queried BigQuery
themselves. Here callables
are pure, so a ``call`` of ``bq_reader`` without ``items`` gets the read it
implies as a ``storacle.query`` step of its own, inserted just before it
(``<step_id>_source``) and wired in with ``items: @run.<step_id>_source.items``.
The YAML stays as the original wrote it; lineage, compile and the run record
see the read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _bq_reader(params: dict[str, Any]) -> dict[str, Any] | None:
    table = params.get("projection")
    if not isinstance(table, str):
        return None
    return {"dataset": params.get("dataset") or "canonical", "table": table}


def _measurement_projector(params: dict[str, Any]) -> dict[str, Any] | None:
    """Canonical objects of one schema (and connection) not formed yet or re-canonized since."""
    schema = params.get("canonical_schema")
    if not isinstance(schema, str):
        return None
    filters: dict[str, Any] = {"canonical_schema": schema}
    if params.get("connection_name"):
        filters["connection_name"] = params["connection_name"]
    return {
        "dataset": "canonical",
        "table": "canonical_objects",
        "columns": [
            "idem_key",
            "source_system",
            "connection_name",
            "object_type",
            "canonical_schema",
            "transform_ref",
            "payload",
            "correlation_id",
        ],
        "filters": filters,
        "parse_json_columns": ["payload"],
        "incremental": {
            "mode": "left_anti",
            "target_dataset": "derived",
            "target_table": params.get("measurement_table") or "measurement_events",
            "source_key": "idem_key",
            "target_key": "canonical_object_id",
            "source_ts": "canonicalized_at",
            "target_ts": "processed_at",
        },
    }


#: callable name -> the storacle.query params of the read it implies (None: cannot tell)
READER_CALLABLES: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
    "bq_reader": _bq_reader,
    "measurement_projector": _measurement_projector,
}


def implied_read(callable_name: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """The ``storacle.query`` params a reader callable implies, or None (not a reader, or
    its params do not say which table). ``JobDef`` inserts the step; this module knows
    only the original's callables, never the models, so it imports nothing of the spec."""
    build = READER_CALLABLES.get(callable_name)
    return build(params) if build is not None else None

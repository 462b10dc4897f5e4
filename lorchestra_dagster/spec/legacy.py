"""Steps of the original's catalogs that read storage inside a callable, made explicit.

The original's ``bq_reader``, ``measurement_projector`` and ``observation_projector``
callables queried BigQuery themselves. Here callables
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


#: Params of the original's callables that stay refused here, with what to write instead
#: (``lorchestra validate`` reports them as L048 at the param's line).
REFUSED_PARAMS: dict[str, dict[str, str]] = {
    "file_renderer": {
        name: "free SQL over the vault's SQLite is not run here; read the rows with a "
        "storacle.query step over the projection the table mirrors and pass them as "
        "items: '@run.<step>.items'"
        for name in ("query", "sqlite_path")
    },
}


def _observation_projector(params: dict[str, Any]) -> dict[str, Any] | None:
    """Form responses not scored yet (or re-canonized since), as the formation job reads."""
    if not isinstance(params.get("binding_id"), str):
        return None
    return {
        "dataset": "canonical",
        "table": "canonical_objects",
        "columns": ["idem_key", "payload", "correlation_id"],
        "filters": {"canonical_format": "form_response"},
        "parse_json_columns": ["payload"],
        "incremental": {
            "mode": "not_exists",
            "target_dataset": "derived",
            "target_table": params.get("measurement_table") or "measurement_events",
            "source_key": "idem_key",
            "target_key": "idem_key",
            "source_ts": "canonicalized_at",
            "target_ts": "processed_at",
        },
    }


def _active_flags(params: dict[str, Any]) -> dict[str, Any] | None:
    """The active safety flags on record, so a re-scored submission can clear its old ones."""
    if not isinstance(params.get("binding_id"), str):
        return None
    return {
        "dataset": "derived",
        "table": "safety_flags",
        "columns": ["*"],
        "filters": {"active": True},
    }


Reader = Callable[[dict[str, Any]], dict[str, Any] | None]
#: callable name -> the storacle.query params of the read it implies (None: cannot tell)
READER_CALLABLES: dict[str, Reader] = {
    "bq_reader": _bq_reader,
    "measurement_projector": _measurement_projector,
    "observation_projector": _observation_projector,
}
#: callable name -> {param: read} for further inputs a reader callable needs, each its own
#: ``storacle.query`` step ``<step_id>_<param>`` before the items read.
EXTRA_READS: dict[str, dict[str, Reader]] = {
    "observation_projector": {"previous_flags": _active_flags},
}


def implied_reads(callable_name: str, params: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Param -> the ``storacle.query`` params of each read a reader callable implies
    (further inputs first, ``items`` last), or None (not a reader, or its params do not say
    which table). ``JobDef`` inserts the steps; this module knows only the original's
    callables, never the models, so it imports nothing of the spec."""
    build = READER_CALLABLES.get(callable_name)
    query = build(params) if build is not None else None
    if query is None:
        return None
    reads: dict[str, dict[str, Any]] = {}
    for param, reader in EXTRA_READS.get(callable_name, {}).items():
        more = reader(params)
        if more is not None and param not in params:
            reads[param] = more
    reads["items"] = query
    return reads

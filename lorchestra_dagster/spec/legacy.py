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

#: callable name -> the storacle.query params of the read it implies (None: cannot tell)
READER_CALLABLES: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
    "bq_reader": _bq_reader,
    "measurement_projector": _measurement_projector,
}


def expand_reads(steps: list[Any]) -> list[Any]:
    """``steps`` with a ``storacle.query`` before each reader call that has no items."""
    from lorchestra_dagster.spec.models import CallStep, StoracleQueryStep

    out: list[Any] = []
    taken = {s.step_id for s in steps}
    for step in steps:
        build = READER_CALLABLES.get(step.params.callable) if isinstance(step, CallStep) else None
        query = build(step.params.model_extra or {}) if build is not None else None
        if query is None or step.params.items is not None:
            out.append(step)  # the callable reports a missing param when it runs
            continue
        source_id = f"{step.step_id}_source"
        while source_id in taken:
            source_id += "_"
        taken.add(source_id)
        out.append(
            StoracleQueryStep.model_validate(
                {"step_id": source_id, "op": "storacle.query", "params": query, "retry": step.retry}
            )
        )
        params = step.params.model_copy(update={"items": f"@run.{source_id}.items"})
        out.append(step.model_copy(update={"params": params}))
    return out

"""Steps of the original's catalogs that read storage inside a callable, made explicit.

The original's ``bq_reader`` callable queried BigQuery itself. Here callables
are pure, so a ``call`` of ``bq_reader`` without ``items`` gets the read it
implies as a ``storacle.query`` step of its own, inserted just before it
(``<step_id>_source``) and wired in with ``items: @run.<step_id>_source.items``.
The YAML stays as the original wrote it; lineage, compile and the run record
see the read.
"""

from __future__ import annotations

from typing import Any

#: callable name -> (param naming the table, param naming the dataset, default dataset)
READER_CALLABLES: dict[str, tuple[str, str, str]] = {
    "bq_reader": ("projection", "dataset", "canonical"),
}


def expand_reads(steps: list[Any]) -> list[Any]:
    """``steps`` with a ``storacle.query`` before each reader call that has no items."""
    from lorchestra_dagster.spec.models import CallStep, StoracleQueryStep

    out: list[Any] = []
    taken = {s.step_id for s in steps}
    for step in steps:
        spec = READER_CALLABLES.get(step.params.callable) if isinstance(step, CallStep) else None
        if spec is None or step.params.items is not None:
            out.append(step)
            continue
        table_key, dataset_key, default_dataset = spec
        extra = step.params.model_extra or {}
        table = extra.get(table_key)
        if not isinstance(table, str):
            out.append(step)  # the callable reports the missing param when it runs
            continue
        source_id = f"{step.step_id}_source"
        while source_id in taken:
            source_id += "_"
        taken.add(source_id)
        query = {"dataset": extra.get(dataset_key) or default_dataset, "table": table}
        out.append(
            StoracleQueryStep.model_validate(
                {"step_id": source_id, "op": "storacle.query", "params": query, "retry": step.retry}
            )
        )
        params = step.params.model_copy(update={"items": f"@run.{source_id}.items"})
        out.append(step.model_copy(update={"params": params}))
    return out

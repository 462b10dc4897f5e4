"""The original's ``observation_projector``: formation scoring under the original's name.

The original's ``proj_obs_<binding>`` jobs were one call (``binding_id``) that
read BigQuery itself, scored, and returned ``bq.upsert`` items, then
``plan.build`` + ``storacle.submit``. Here the reads are explicit steps the spec
layer inserts (``spec.legacy``: the form responses not scored yet, and the
active safety flags), and scoring is the ``finalform`` callable itself, forced
to the job's binding: one scorer, one set of safety rules.

It returns per-item targets, in the order they must land: ``derived.safety_flags``
first (a risk answer reaches the clinician even if a later write fails), then
the observations, then the events (an event marks a submission as done). The
rows are stamped ``processed_at`` here because the original's jobs name no
timestamp columns, and the alert sync and the incremental read both need it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lorchestra_dagster.callables.base import CallContext, register, result
from lorchestra_dagster.callables.finalform import run as finalform
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.instruments.registry import load_bindings


@register("observation_projector", per_item_targets=True)
def observation_projector(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """Score the form responses of ``binding_id`` into flag, observation and event rows.

    Params:
        binding_id: the binding scored (required); responses of other forms are skipped.
        binding_version: optional; must equal the binding's version when given.
        measurement_table / observation_table: target tables (defaults
            measurement_events / observations, in ``derived``).
        items, previous_flags: read by the steps ``spec.legacy`` inserts.
    """
    binding_id = params.get("binding_id")
    if not isinstance(binding_id, str) or not binding_id:
        raise PermanentError("observation_projector: binding_id is required", code="E_PARAMS")
    binding = load_bindings(ctx.catalog_dir).get(binding_id)
    if binding is None:
        raise PermanentError(f"observation_projector: unknown binding {binding_id!r}")
    wanted = params.get("binding_version")
    if wanted is not None and str(wanted) != binding.version:
        raise PermanentError(
            f"observation_projector: binding {binding_id} is version {binding.version}, "
            f"the job asks for {wanted}"
        )
    rows = params.get("items") or []
    mine = [r for r in rows if _form_id(r) == binding.form_id]
    scored = finalform(
        {"items": mine, "previous_flags": params.get("previous_flags") or [],
         "config": {"binding_id": binding_id}},
        ctx,
    )  # fmt: skip
    now = (ctx.now or datetime.now(tz=UTC)).isoformat()
    observations = str(params.get("observation_table") or "observations")
    events = str(params.get("measurement_table") or "measurement_events")
    targets = (
        ("safety_flags", scored["safety_flags"], ["flag_id"]),
        (observations, scored["observations"], ["idem_key"]),
        (events, scored["items"], ["idem_key"]),
    )
    items = [
        {"dataset": "derived", "table": table, "key_columns": keys,
         "rows": [{**row, "processed_at": now} for row in batch]}
        for table, batch, keys in targets
        if batch
    ]  # fmt: skip
    out = result(items, input=len(rows), skipped=len(rows) - len(mine))
    out["stats"]["quarantined"] = scored["stats"].get("quarantined", 0)
    return out


def _form_id(row: dict[str, Any]) -> Any:
    payload = row.get("payload")
    return payload.get("form_id") if isinstance(payload, dict) else None

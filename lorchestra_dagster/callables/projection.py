"""The original's projection callables: ``bq_reader`` and ``view_creator`` (pure).

``bq_reader`` packages the rows of a projection (read by the ``storacle.query``
step the spec layer puts before it, see ``spec.legacy``) as one ``sqlite.sync``
item ``{sqlite_path, table, columns, rows}``, stamping ``projected_at``;
``plan.build`` takes that target per item. ``view_creator`` turns
``<catalog>/projections/<name>.sql`` into the one ``CREATE OR REPLACE VIEW``
that ``bq.execute`` accepts (the data plane checks it before it runs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lorchestra_dagster.callables.base import CallContext, register, result
from lorchestra_dagster.errors import PermanentError

PROJECTIONS_DIR = "projections"
#: Dataset a bare SELECT's view goes in, as the original's canonical projections.
VIEW_DATASET = "canonical"


def _required(params: dict[str, Any], *names: str, who: str) -> None:
    missing = [n for n in names if not params.get(n)]
    if missing:
        raise PermanentError(f"{who}: missing required params {missing}", code="E_PARAMS")


@register("bq_reader", per_item_targets=True)
def bq_reader(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """Rows of ``projection`` as one sqlite.sync item for vault table ``table``.

    Params: ``projection`` (view read), ``sqlite_path`` (only its file name is
    kept: every SQLite file lives in the vault), ``table``, optional
    ``dataset`` and ``key_columns``; ``items`` are the rows read.
    """
    _required(params, "projection", "sqlite_path", "table", who="bq_reader")
    rows = params.get("items") or []
    projected_at = datetime.now(tz=UTC).isoformat()
    out_rows = [{**row, "projected_at": projected_at} for row in rows]
    columns = [*(list(rows[0]) if rows else []), "projected_at"] if rows else []
    item: dict[str, Any] = {
        "sqlite_path": params["sqlite_path"],
        "table": params["table"],
        "columns": columns,
        "rows": out_rows,
        # the run's own clock: a row whose data did not change is not rewritten for it
        "volatile_columns": ["projected_at"],
    }
    if params.get("key_columns"):
        item["key_columns"] = list(params["key_columns"])
    return result([item], input=len(rows))


@register("view_creator")
def view_creator(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """``{sql}`` of view ``projection_name`` from ``projections/<name>.sql`` (BigQuery SQL).

    A file holding a bare SELECT becomes ``CREATE OR REPLACE VIEW
    <dataset>.<name> AS <select>`` (``dataset`` param, default canonical; the data
    plane accepts views in canonical and derived only); a file holding a whole
    CREATE VIEW is used as is.
    """
    _required(params, "projection_name", who="view_creator")
    name = str(params["projection_name"])
    if not name.replace("_", "").isalnum():
        raise PermanentError("view_creator: projection_name must be [A-Za-z0-9_]")
    path = ctx.catalog_dir / PROJECTIONS_DIR / f"{name}.sql"
    if not path.is_file():
        raise PermanentError(
            f"view_creator: no SQL for projection {name!r} (expected {PROJECTIONS_DIR}/{name}.sql "
            "under the catalog)",
            file=str(path),
        )
    dataset = str(params.get("dataset") or VIEW_DATASET)
    if not dataset.replace("_", "").isalnum():
        raise PermanentError("view_creator: dataset must be [A-Za-z0-9_]")
    sql = path.read_text(encoding="utf-8").strip().rstrip(";").strip()
    if not sql.upper().startswith("CREATE"):
        sql = f"CREATE OR REPLACE VIEW {dataset}.{name} AS\n{sql}"
    return result([{"sql": sql, "dialect": "bigquery"}], input=0)


@register("measurement_projector", per_item_targets=True)
def measurement_projector(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """Canonical form responses (``items``, read by the step ``spec.legacy`` inserts) as
    one ``bq.upsert`` item of ``derived.<measurement_table>`` rows, one per response.

    Params: ``canonical_schema`` (required), ``event_subtype`` (the binding id,
    required), ``event_type`` (default form), ``measurement_table`` (default
    measurement_events). The event's id is the canonical object's idem_key, so a
    re-canonized response updates its event instead of adding one.
    """
    _required(params, "canonical_schema", "event_subtype", who="measurement_projector")
    table = str(params.get("measurement_table") or "measurement_events")
    subtype = params["event_subtype"]
    now = datetime.now(tz=UTC).isoformat()
    rows = []
    for record in params.get("items") or []:
        payload = record.get("payload")
        if not isinstance(payload, dict):
            raise PermanentError(
                f"measurement_projector: {record.get('idem_key')} has no payload object"
            )
        respondent = payload.get("respondent") or {}
        key = record["idem_key"]
        rows.append(
            {
                "idem_key": key,
                "measurement_event_id": key,
                "canonical_object_id": key,
                "subject_id": respondent.get("id")
                or respondent.get("email")
                or payload.get("respondent_email"),
                "event_type": params.get("event_type") or "form",
                "event_subtype": subtype,
                "occurred_at": payload.get("submitted_at"),
                "received_at": now,
                "source_system": record.get("source_system"),
                "source_entity": record.get("object_type"),
                "source_id": payload.get("response_id") or payload.get("submission_id"),
                "form_id": payload.get("form_id"),
                "binding_id": subtype,
                "metadata": {},
                "correlation_id": record.get("correlation_id"),
                "processed_at": now,
            }
        )
    items = []
    if rows:
        items.append(
            {"dataset": "derived", "table": table, "rows": rows, "key_columns": ["idem_key"]}
        )
    return result(items, input=len(params.get("items") or []))

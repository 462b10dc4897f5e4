"""Plant canonical form responses and read alerts back, as the pipeline would."""

from __future__ import annotations

from typing import Any

from test_finalform import _intake_01

from lorchestra_dagster.storacle.plan import make_plan


def canonical_rows(n: int, *, prefix: str = "R") -> list[dict[str, Any]]:
    """``n`` intake_01 submissions with PHQ-9 item 9 = 2 (canonical_objects rows)."""
    rows = []
    for i in range(n):
        row = _intake_01(f"{prefix}{i:05d}")
        row["payload"]["respondent_email"] = f"client{i}@example.org"
        rows.append(row)
    return rows


def plant(client: Any, rows: list[dict[str, Any]], at: str = "2026-11-28T06:00:00+00:00") -> None:
    """Upsert canonical form_response rows (canonicalized at ``at``)."""
    out = [
        {
            "idem_key": r["idem_key"],
            "source_system": r["source_system"],
            "connection_name": r["connection_name"],
            "object_type": r["object_type"],
            "canonical_schema": "iglu:org.canonical/form_response/jsonschema/1-0-0",
            "canonical_format": "form_response",
            "transform_ref": "forms/google_forms_to_canonical@1.0.0",
            "correlation_id": "seed",
            "payload": r["payload"],
            "canonicalized_at": at,
            "created_at": at,
        }
        for r in rows
    ]
    op = {
        "dataset": "canonical",
        "table": "canonical_objects",
        "key_columns": ["idem_key"],
        "rows": out,
    }
    client.execute_plan(make_plan([("bq.upsert", op)], {"run_id": "seed"}).model_dump(mode="json"))


def events(client: Any, kind: str = "clinical_safety_alert") -> list[dict[str, Any]]:
    return client.query(
        {
            "dataset": "ops",
            "table": "events",
            "columns": ["event_id", "kind", "severity", "details"],
            "filters": {"kind": kind},
            "parse_json_columns": ["details"],
        }
    )

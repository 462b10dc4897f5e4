"""``ops.events`` rows: what the sensors and the alert sync record for operators.

Ids derive from kind + key, so recording the same thing twice (a re-tick, two
faces syncing the same flag) is a no-op. Details hold codes, counts and ids,
never a value from a form or a record.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import lorchestra_dagster.engine.tables  # noqa: F401 - declares ops.events, ops.cursors
from lorchestra_dagster.storacle.params import UpsertParams


def event_id(kind: str, key: str) -> str:
    return hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()[:32]


def event_row(
    *,
    kind: str,
    key: str,
    severity: str,
    run_id: str | None = None,
    job_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id(kind, key),
        "kind": kind,
        "occurred_at": datetime.now(tz=UTC).isoformat(),
        "run_id": run_id,
        "job_id": job_id,
        "severity": severity,
        "details": details or {},
    }


def events_op(rows: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The plan op that upserts ``rows`` into ``ops.events`` (first ``occurred_at`` kept)."""
    return (
        UpsertParams.method,
        {
            "dataset": "ops",
            "table": "events",
            "key_columns": ["event_id"],
            "rows": rows,
            "skip_update_columns": ["occurred_at"],
            "volatile_columns": ["occurred_at"],
        },
    )


def record_event(client: Any, *, kind: str, key: str, severity: str, **kw: Any) -> str:
    """Upsert one ``ops.events`` row; returns its id."""
    from lorchestra_dagster.storacle.plan import make_plan

    row = event_row(kind=kind, key=key, severity=severity, **kw)
    plan = make_plan([events_op([row])], {"job_id": "dagster.sensors", "step_id": kind})
    client.execute_plan(plan.model_dump(mode="json"))
    return str(row["event_id"])

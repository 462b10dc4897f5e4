"""The engine's tables in the warehouse's ``ops`` dataset, handed to storacle to declare.

Storacle creates a declared table with its typed columns on first write and
reads its types back (``storacle/tables.py``); it owns only the data tables.
These belong to the layers above it: the run records and the ``ops``
bookkeeping the alert sync writes through the engine's runs. Importing this
module declares them (``lorchestra_dagster.engine`` imports it, and so does
the CLI, whose ``storacle serve`` answers for other processes).
"""

from __future__ import annotations

from lorchestra_dagster.storacle.tables import (
    BIGINT,
    BOOLEAN,
    DOUBLE,
    JSON,
    TIMESTAMP,
    VARCHAR,
    TableSchema,
    declare,
    table,
)

_V, _J, _TS, _I, _D, _B = VARCHAR, JSON, TIMESTAMP, BIGINT, DOUBLE, BOOLEAN

RUN_TABLES: tuple[TableSchema, ...] = (
    # ops.runs / ops.step_runs: nothing writes them any more (the run history is
    # Dagster's); declared so warehouses from before keep typed columns when they
    # are read or migrated to BigQuery (bigquery_migrate).
    table(
        "ops", "runs", ("run_id",),
        run_id=_V, kind=_V, job_id=_V, pipeline_id=_V, parent_run_id=_V, status=_V,
        dry_run=_B, started_at=_TS, finished_at=_TS, duration_s=_D, rows_read=_I,
        rows_written=_I, job_def_sha256=_V, error=_J, manifest=_J,
    ),
    table(
        "ops", "step_runs", ("run_id", "step_id"),
        run_id=_V, step_id=_V, op=_V, status=_V, attempts=_I, started_at=_TS,
        finished_at=_TS, duration_s=_D, rows_in=_I, rows_out=_I, rows_written=_I,
        manifest=_J, error=_J,
    ),
    table(
        # positions of readers that page a table by (timestamp, key), e.g. alert sync
        "ops", "cursors", ("name",),
        name=_V, position_ts=_TS, position_key=_V, updated_at=_TS,
    ),
    table(
        "ops", "events", ("event_id",),
        event_id=_V, kind=_V, occurred_at=_TS, run_id=_V, job_id=_V, severity=_V,
        details=_J,
    ),
)  # fmt: skip

declare(*RUN_TABLES)

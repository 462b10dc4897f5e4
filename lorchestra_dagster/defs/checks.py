"""Asset checks on every table-writing asset, computed in the warehouse.

For each warehouse table an asset writes (its slice: table plus the constant
columns its ``field_defaults`` fix): keys are unique, keys are never null,
and the slice has rows (a warning, not an error: an empty source is legal).
Formation also checks that no submission waits in quarantine.
Canonize assets also check that the payloads the run wrote validate against
their ``canonical_schema`` (the canonize helper's schema loader; the whole slice on
a first materialization). Only counts and key columns are reported, never values.

The checks are declared on the catalog op (``catalog_assets.py``) and
evaluated there, in the worker thread of the job that just wrote rows: no
step or process of their own, and nothing to recheck on a day a job wrote
nothing (its last results still stand).
"""

import json
from collections.abc import Iterator
from typing import Any

import dagster as dg

from lorchestra_dagster.spec.lineage import JobIO, Slice
from lorchestra_dagster.storacle.query import keyset_pages

#: Rows per page of the schema check's read.
SCHEMA_CHECK_PAGE = 2_000


def _count_row(client: Any, sl: Slice, keys: list[str]) -> dict[str, int]:
    if len(keys) == 1:
        key_expr = keys[0]
    else:
        key_expr = "CONCAT(" + ", '|', ".join(f"COALESCE(CAST({k} AS VARCHAR), '')" for k in keys)
        key_expr += ")"
    columns = ["COUNT(*) AS n", f"COUNT(DISTINCT {key_expr}) AS distinct_keys"]
    columns += [f"COUNT({k}) AS nn_{i}" for i, k in enumerate(keys)]
    rows = client.query(
        {"dataset": sl.dataset, "table": sl.table, "columns": columns, "filters": dict(sl.filters)}
    )
    return {k: int(v or 0) for k, v in (rows[0] if rows else {}).items()}


def _table_results(
    key: dg.AssetKey, client: Any, sl: Slice, keys: list[str]
) -> Iterator[dg.AssetCheckResult]:
    counts = _count_row(client, sl, keys)
    n = counts.get("n", 0)
    null_keys = {k: n - counts.get(f"nn_{i}", 0) for i, k in enumerate(keys)}
    common = {"dagster/table_name": sl.table_name, "slice": sl.describe()}
    # One key column: COUNT(DISTINCT) skips nulls. Several: nulls were coalesced into the concat.
    keyed_rows = n - null_keys[keys[0]] if len(keys) == 1 else n
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="unique_keys",
        passed=counts.get("distinct_keys", 0) == keyed_rows,
        metadata={**common, "rows": n, "distinct_keys": counts.get("distinct_keys", 0)},
    )
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="non_null_keys",
        passed=not any(null_keys.values()),
        metadata={**common, **{f"null_{k}": v for k, v in null_keys.items()}},
    )
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="row_count",
        passed=n > 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={**common, "dagster/row_count": n},
    )


def _schema_result(
    key: dg.AssetKey, client: Any, catalog_dir: Any, sl: Slice, since: str | None, written: int = 0
) -> dg.AssetCheckResult:
    """Validate the payloads the job (re)wrote in this run: ``canonicalized_at >= since``,
    the job's start (every row of the slice when ``since`` is None: its first
    materialization, or a slice brought from elsewhere).

    An unchanged row is not rewritten, so it keeps the result of the run that wrote it;
    a day with one new row validates one payload, not the whole slice again. The rows
    are read in keyset pages with the payload as text, parsed one row at a time, so
    neither memory nor the collector's work grows with the slice.

    ``written`` is what the job wrote: a scoped check that finds fewer rows than that (a
    job that does not stamp ``canonicalized_at``) checks the whole slice instead, so no
    written row goes unchecked.
    """
    from lorchestra_dagster.callables.transforms import schema_validator

    filters: list[dict[str, Any]] = [{"column": c, "value": v} for c, v in sl.filters]
    if since is not None:
        filters.append({"column": "canonicalized_at", "op": ">=", "value": since})
    invalid: dict[str, int] = {}
    first_bad: list[str] = []
    checked = 0
    read = {
        "dataset": sl.dataset,
        "table": sl.table,
        "columns": ["idem_key", "canonical_schema", "payload"],
        "filters": filters,
    }
    for rows in keyset_pages(client.query, read, "idem_key", SCHEMA_CHECK_PAGE):
        for row in rows:
            uri = str(row.get("canonical_schema"))  # "None" names no schema: invalid
            try:
                payload = row.get("payload")
                doc = json.loads(payload) if isinstance(payload, str) else payload
                errors = list(schema_validator(catalog_dir, uri).iter_errors(doc))
            except Exception as exc:  # noqa: BLE001 - a missing/bad schema or payload fails the check
                errors = [exc]
            if errors:
                invalid[uri] = invalid.get(uri, 0) + 1
                if len(first_bad) < 5:
                    first_bad.append(str(row.get("idem_key")))
        checked += len(rows)
    if since is not None and checked < written:
        return _schema_result(key, client, catalog_dir, sl, None)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="payloads_match_schema",
        passed=not invalid,
        metadata={
            "checked": checked,
            "scope": "rows written by this run" if since is not None else "the whole slice",
            "invalid": sum(invalid.values()),
            "invalid_by_schema": dg.MetadataValue.json(invalid),
            "first_invalid_keys": dg.MetadataValue.json(first_bad),
        },
    )


def _writes_flags(io: JobIO) -> bool:
    return any((w.dataset, w.table) == ("derived", "safety_flags") for w in io.writes)


def _quarantine_result(key: dg.AssetKey, client: Any) -> dg.AssetCheckResult:
    """Quarantined submissions still waiting for a fix (counts and alert ids, no answers)."""
    from lorchestra_dagster.alerts.store import alert_id_of

    rows = client.query(
        {
            "dataset": "derived",
            "table": "safety_flags",
            "columns": ["flag_id"],
            "filters": {"code": "submission_quarantined", "active": True},
            "order_by": ["flag_id"],
        }
    )
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="no_quarantined_submissions",
        passed=not rows,
        metadata={
            "quarantined": len(rows),
            "first_alert_ids": dg.MetadataValue.json(
                [alert_id_of(r["flag_id"]) for r in rows[:10]]
            ),
            "see": "lorchestra alerts list; docs/clinical-safety.md",
        },
    )


def _checked_tables(io: JobIO) -> list[Slice]:
    return [w for w in io.writes if io.key_columns.get(w.table_name)]


def _schema_slices(io: JobIO, stage: str) -> list[Slice]:
    return [
        w for w in _checked_tables(io) if stage == "canonize" and w.table == "canonical_objects"
    ]


def check_specs(key: dg.AssetKey, io: JobIO, stage: str) -> list[dg.AssetCheckSpec]:
    """The checks of one asset (none when it writes no keyed warehouse table)."""
    if not _checked_tables(io):
        return []
    specs = [
        dg.AssetCheckSpec(name, asset=key, description=desc)
        for name, desc in (
            ("unique_keys", "No two rows of the asset's slice share a key"),
            ("non_null_keys", "No key column is null"),
            ("row_count", "The slice has rows (warning only)"),
        )
    ]
    if _writes_flags(io):
        specs.append(
            dg.AssetCheckSpec(
                "no_quarantined_submissions",
                asset=key,
                description="No form submission waits in quarantine (an answer no option "
                "matches); `lorchestra alerts list` shows them",
            )
        )
    if _schema_slices(io, stage):
        specs.append(
            dg.AssetCheckSpec(
                "payloads_match_schema",
                asset=key,
                description="Every payload validates against its canonical_schema",
            )
        )
    return specs


def run_checks(
    key: dg.AssetKey,
    io: JobIO,
    stage: str,
    services: Any,
    *,
    since: str | None = None,
    written: int = 0,
) -> list[dg.AssetCheckResult]:
    """Evaluate the checks of one asset right after the job that feeds it wrote rows.

    The catalog op calls this in the job's worker thread, so checks of
    independent jobs run in parallel like the jobs themselves. ``since`` (the job's
    start) limits the schema check to the payloads this run wrote (``written`` rows).
    """
    tables = _checked_tables(io)
    if not tables:
        return []
    # The flags table is checked by its own rule (and is legally empty): the asset's main
    # table is the first other one it writes.
    sl = next((t for t in tables if t.table != "safety_flags"), tables[0])
    results = list(_table_results(key, services.client, sl, io.key_columns[sl.table_name]))
    if _writes_flags(io):
        results.append(_quarantine_result(key, services.client))
    schema = _schema_slices(io, stage)
    if schema:
        results.append(
            _schema_result(key, services.client, services.catalog_dir, schema[0], since, written)
        )
    return results

"""plan.build per-item mode: sqlite.sync / wal.append targets taken from each item.

The original's ``bq_reader`` and ``projection/bq_rows_to_sqlite_sync`` return
items shaped ``{sqlite_path | db, table, columns, key_columns, rows}`` and the
job's ``plan.build`` names only the method. A target missing from both the
step and the items is a validation error at its line, and at run time a
permanent error naming the item, never a bare ``KeyError``.
"""

from __future__ import annotations

import sqlite3

import pytest
from migration_kit import issues_of, services_for, write_catalog

from lorchestra_dagster.callables import register, result
from lorchestra_dagster.engine import execute_with

pytestmark = pytest.mark.e2e


@register("test_sync_package", per_item_targets=True)
def _package(params, ctx):
    """Two targets in one result, shaped like the original's bq_reader output."""
    rows = params.get("rows") or []
    return result(
        [
            {
                "sqlite_path": "~/clinical-vault/local.db",
                "table": "clients",
                "columns": ["idem_key", "name", "projected_at"],
                "rows": rows,
            },
            {
                "db": "other.db",
                "table": "notes",
                "key_columns": ["note_id"],
                "rows": [{"note_id": "n1", "text": "t"}],
            },
        ],
        input=len(rows),
    )


SYNC_JOB = """\
job_id: sync_proj_clients
version: '2.0'
steps:
- step_id: read
  op: call
  params:
    callable: test_sync_package
    rows: '@payload.rows'
- step_id: persist
  op: plan.build
  params:
    items: '@run.read.items'
    method: sqlite.sync
- step_id: write
  op: storacle.submit
  params:
    plan: '@run.persist.plan'
"""

NO_TARGET = """\
job_id: sync_nowhere
version: '2.0'
steps:
- step_id: persist
  op: plan.build
  params:
    items: [{a: 1}]
    method: sqlite.sync
- step_id: write
  op: storacle.submit
  params:
    plan: '@run.persist.plan'
"""

WAL_JOB = """\
job_id: wal_per_item
version: '2.0'
steps:
- step_id: persist
  op: plan.build
  params:
    items: '@payload.items'
    method: wal.append
- step_id: write
  op: storacle.submit
  params:
    plan: '@run.persist.plan'
"""


def test_sqlite_sync_takes_table_db_and_key_from_each_item(tmp_path, _isolated_home):
    cat = write_catalog(tmp_path / "jobs", {"projection/sync/sync_proj_clients.yaml": SYNC_JOB})
    rows = [
        {"idem_key": "c1", "name": "A", "projected_at": "2026-01-01"},
        {"idem_key": "c2", "name": "B", "extra": "dropped by columns"},
    ]
    with services_for(cat, _isolated_home) as svc:
        res = execute_with({"job_id": "sync_proj_clients", "payload": {"rows": rows}}, svc)
        assert res.status == "succeeded", res.error_message()
        vault = svc.settings.vault_dir
        again = execute_with({"job_id": "sync_proj_clients", "payload": {"rows": rows[:1]}}, svc)
        assert again.status == "succeeded", again.error_message()
    with sqlite3.connect(vault / "local.db") as con:
        got = con.execute("SELECT idem_key, name, projected_at FROM clients").fetchall()
        cols = [r[1] for r in con.execute("PRAGMA table_info(clients)")]
    # the second run mirrored one row: keyed on idem_key, the other row deleted
    assert got == [("c1", "A", "2026-01-01")]
    assert "extra" not in cols
    with sqlite3.connect(vault / "other.db") as con:
        assert con.execute("SELECT note_id, text FROM notes").fetchall() == [("n1", "t")]


def test_wal_append_per_item(tmp_path, _isolated_home):
    cat = write_catalog(tmp_path / "jobs", {"misc/wal_per_item.yaml": WAL_JOB})
    items = [{"table": "events", "rows": [{"event_id": "e1"}, {"event_id": "e2"}]}]
    with services_for(cat, _isolated_home) as svc:
        res = execute_with({"job_id": "wal_per_item", "payload": {"items": items}}, svc)
        assert res.status == "succeeded", res.error_message()
        rows = svc.client.query({"dataset": "wal", "table": "events", "columns": ["event_id"]})
    assert sorted(r["event_id"] for r in rows) == ["e1", "e2"]


def test_item_without_target_fails_naming_the_item(tmp_path, _isolated_home):
    cat = write_catalog(tmp_path / "jobs", {"misc/wal_per_item.yaml": WAL_JOB})
    items = [{"table": "events", "rows": []}, {"rows": [{"event_id": "e3"}]}]
    with services_for(cat, _isolated_home) as svc:
        res = execute_with({"job_id": "wal_per_item", "payload": {"items": items}}, svc)
    assert res.status == "failed"
    msg = res.error_message()
    assert "item 1" in msg and "'table'" in msg and "KeyError" not in msg


def test_missing_target_is_a_validation_error_at_its_line(tmp_path):
    cat = write_catalog(
        tmp_path / "jobs",
        {
            "projection/sync/sync_nowhere.yaml": NO_TARGET,
            "projection/sync/sync_proj_clients.yaml": SYNC_JOB,
        },
    )
    [(code, line, message)] = issues_of(cat, "projection/sync/sync_nowhere.yaml")
    assert code == "L043" and line == 7
    assert "'table'" in message and "per item" in message
    # items from a callable that packages targets per item validate clean
    assert issues_of(cat, "projection/sync/sync_proj_clients.yaml") == []

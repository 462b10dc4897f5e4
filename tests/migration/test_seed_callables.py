"""The original's ``bq_reader`` and ``view_creator`` jobs, unchanged, against the warehouse.

``sync_proj_clients`` reads a projection view and mirrors it into the vault's
SQLite (``bq_reader`` -> per-item ``sqlite.sync``); ``view_proj_clients``
creates that view from a SQL file (``view_creator`` -> ``bq.execute``).
"""

from __future__ import annotations

import sqlite3

import pytest
from kit import upsert_job
from migration_kit import issues_of, services_for, write_catalog

from lorchestra_dagster.callables import CallContext, get_callable
from lorchestra_dagster.engine import execute_with
from lorchestra_dagster.spec import load_catalog

pytestmark = pytest.mark.e2e

VIEW_JOB = """\
job_id: view_proj_clients
version: '2.0'
steps:
- step_id: generate
  op: call
  params:
    callable: view_creator
    projection_name: proj_clients
- step_id: persist
  op: plan.build
  params:
    items: '@run.generate.items'
    method: bq.execute
- step_id: write
  op: storacle.submit
  params:
    plan: '@run.persist.plan'
"""

SYNC_JOB = """\
job_id: sync_proj_clients
version: '2.0'
steps:
- step_id: read
  op: call
  params:
    callable: bq_reader
    projection: proj_clients
    sqlite_path: ~/clinical-vault/local.db
    table: clients
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

SEED = upsert_job("seed_contacts", "canonical", "canonical_objects")

VIEW_SQL = """\
SELECT idem_key, JSON_VALUE(payload, '$.name') AS name
FROM canonical.canonical_objects
WHERE canonical_schema = 'iglu:org.canonical/contact/jsonschema/2-0-0'
"""


def _catalog(tmp_path):
    return write_catalog(
        tmp_path / "jobs",
        {
            "projection/view/view_proj_clients.yaml": VIEW_JOB,
            "projection/sync/sync_proj_clients.yaml": SYNC_JOB,
            "canonize/seed_contacts.yaml": SEED,
            "projections/proj_clients.sql": VIEW_SQL,
        },
    )


def test_bq_reader_jobs_read_their_projection_first(tmp_path):
    job = load_catalog(_catalog(tmp_path)).jobs["sync_proj_clients"].jobdef
    assert [(s.step_id, s.op) for s in job.steps] == [
        ("read_source", "storacle.query"),
        ("read", "call"),
        ("persist", "plan.build"),
        ("write", "storacle.submit"),
    ]
    assert job.steps[0].params_dict()["table"] == "proj_clients"


def test_view_then_sync_mirror_the_projection_into_the_vault(tmp_path, _isolated_home):
    cat = _catalog(tmp_path)
    for rel in ("projection/view/view_proj_clients.yaml", "projection/sync/sync_proj_clients.yaml"):
        assert issues_of(cat, rel) == []
    rows = [
        {
            "idem_key": f"c{n}",
            "canonical_schema": "iglu:org.canonical/contact/jsonschema/2-0-0",
            "payload": {"name": f"client {n}"},
        }
        for n in (1, 2)
    ]
    with services_for(cat, _isolated_home) as svc:
        for job, env in (
            ("seed_contacts", {"payload": {"rows": rows}}),
            ("view_proj_clients", {}),
            ("sync_proj_clients", {}),
            ("sync_proj_clients", {}),
        ):
            res = execute_with({"job_id": job, **env}, svc)
            assert res.status == "succeeded", (job, res.error_message())
        vault = svc.settings.vault_dir
    # the rerun wrote nothing: projected_at alone does not make a row changed
    assert res.submitted.get("updated", 0) == 0 and res.submitted.get("inserted", 0) == 0
    with sqlite3.connect(vault / "local.db") as con:
        got = con.execute("SELECT idem_key, name FROM clients ORDER BY idem_key").fetchall()
        cols = [r[1] for r in con.execute("PRAGMA table_info(clients)")]
    assert got == [("c1", "client 1"), ("c2", "client 2")]
    assert "projected_at" in cols


def test_view_creator_wraps_a_select_and_names_a_missing_file(tmp_path):
    cat = _catalog(tmp_path)
    ctx = CallContext(catalog_dir=cat, home=tmp_path / "h", env={})
    [item] = get_callable("view_creator")({"projection_name": "proj_clients"}, ctx)["items"]
    assert item["sql"].startswith("CREATE OR REPLACE VIEW canonical.proj_clients AS\nSELECT")
    with pytest.raises(Exception, match="projections/proj_nothing.sql"):
        get_callable("view_creator")({"projection_name": "proj_nothing"}, ctx)


def test_view_creator_takes_the_dataset_and_storacle_still_refuses_wal(tmp_path, _isolated_home):
    cat = _catalog(tmp_path)
    ctx = CallContext(catalog_dir=cat, home=tmp_path / "h", env={})
    out = get_callable("view_creator")({"projection_name": "proj_clients", "dataset": "wal"}, ctx)
    assert out["items"][0]["sql"].startswith("CREATE OR REPLACE VIEW wal.proj_clients AS")
    job = VIEW_JOB.replace(
        "projection_name: proj_clients", "projection_name: proj_clients\n    dataset: wal"
    )
    (cat / "projection" / "view" / "view_proj_clients.yaml").write_text(job)
    with services_for(cat, _isolated_home) as svc:
        res = execute_with({"job_id": "view_proj_clients"}, svc)
    assert res.status == "failed" and "canonical" in res.error_message()

"""sqlite.sync: keyed mirror tables in the vault's SQLite, one transaction per plan."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import counts, submit

from lorchestra_dagster.errors import StoracleError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.client import StoracleClient

pytestmark = pytest.mark.unit


def sync(rows: list[dict], **extra) -> tuple[str, dict]:
    return (
        "sqlite.sync",
        {"table": "clients", "key_columns": ["client_id"], "rows": rows, **extra},
    )


def clients(n: int, **over) -> list[dict]:
    return [
        {
            "client_id": f"c{i}",
            "name": f"n{i}",
            "sessions": i,
            "score": i / 2,
            "tags": ["x"],
            "synced_at": "t0",
            **over,
        }
        for i in range(n)
    ]


def dump(db: Path, table: str = "clients") -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        con.close()


@pytest.fixture
def db(settings: Settings) -> Path:
    return settings.vault_db


def with_foreign_table_and_audit(db: Path) -> None:
    """A table storacle does not manage, plus a trigger counting rewrites of clients."""
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
        "INSERT INTO notes (body) VALUES ('keep me');"
        "CREATE TABLE audit (client_id TEXT);"
        "CREATE TRIGGER clients_upd AFTER UPDATE ON clients "
        "BEGIN INSERT INTO audit VALUES (new.client_id); END;"
    )
    con.commit()
    con.close()


def test_sync_upserts_deletes_and_leaves_other_tables(client: StoracleClient, db: Path) -> None:
    [res] = submit(client, [sync(clients(3))])
    assert counts(res) == (3, 0, 0, 0) and res["table"] == "clients"
    assert dump(db)[0] == ("c0", "n0", 0, 0.0, '["x"]', "t0")
    with_foreign_table_and_audit(db)
    rows = clients(3)[1:] + [
        {
            "client_id": "c9",
            "name": "new",
            "sessions": 9,
            "score": 1.0,
            "tags": [],
            "synced_at": "t0",
        }
    ]
    rows[0]["name"] = "renamed"
    [res] = submit(client, [sync(rows)])
    assert counts(res) == (1, 1, 1, 1)
    assert [r[:2] for r in dump(db)] == [("c1", "renamed"), ("c2", "n2"), ("c9", "new")]
    assert dump(db, "notes") == [(1, "keep me")]
    assert dump(db, "audit") == [("c1",)]  # only the changed row was rewritten
    [res] = submit(client, [sync(rows)])
    assert counts(res) == (0, 0, 3, 0)
    assert dump(db, "audit") == [("c1",)]


def test_volatile_columns_do_not_count_as_change(client: StoracleClient, db: Path) -> None:
    submit(client, [sync(clients(2), volatile_columns=["synced_at"])])
    [res] = submit(client, [sync(clients(2, synced_at="t1"), volatile_columns=["synced_at"])])
    assert counts(res) == (0, 0, 2, 0)
    assert {r[5] for r in dump(db)} == {"t0"}


def test_delete_missing_false_keeps_rows(client: StoracleClient, db: Path) -> None:
    submit(client, [sync(clients(3))])
    [res] = submit(client, [sync(clients(1), delete_missing=False)])
    assert counts(res) == (0, 0, 1, 0) and len(dump(db)) == 3


def test_dry_run_creates_no_database(client: StoracleClient, db: Path) -> None:
    [res] = submit(client, [sync(clients(2))], dry_run=True)
    assert counts(res) == (2, 0, 0, 0)
    assert not db.exists()
    submit(client, [sync(clients(2))])
    [res] = submit(client, [sync(clients(1))], dry_run=True)
    assert counts(res) == (0, 0, 1, 1) and len(dump(db)) == 2


def test_missing_key_rolls_back_every_sync_of_the_plan(client: StoracleClient, db: Path) -> None:
    submit(client, [sync(clients(2))])
    before = dump(db)
    bad = [{"name": "no key"}]
    with pytest.raises(StoracleError, match="missing key column 'client_id'"):
        submit(client, [sync(clients(1)), sync(bad, table="other")])
    assert dump(db) == before


def test_db_path_must_stay_in_the_vault(client: StoracleClient, tmp_path: Path) -> None:
    with pytest.raises(StoracleError, match=r"'\.\./outside\.db' escapes the vault root") as info:
        submit(client, [sync(clients(1), db="../outside.db")])
    assert info.value.classification == "permanent"
    assert not (tmp_path / "outside.db").exists()


def test_bad_table_name_is_refused(client: StoracleClient) -> None:
    with pytest.raises(StoracleError, match="invalid sqlite table"):
        submit(client, [sync(clients(1), table="clients; DROP TABLE notes")])


def test_sync_in_batches_then_prune_leaves_exactly_the_view(client) -> None:
    """Pages upserted with delete_missing false, then one prune of every key: the same
    table as one whole-set sync, with only the rows gone from the view deleted."""
    from conftest import submit

    def sync(rows, **extra):
        op = {"table": "m", "key_columns": ["k"], "rows": rows, **extra}
        return submit(client, [("sqlite.sync", op)])[0]

    sync([{"k": "a", "v": 1}, {"k": "b", "v": 2}, {"k": "c", "v": 3}])
    first = sync([{"k": "a", "v": 1}], delete_missing=False)
    second = sync([{"k": "c", "v": 30}], delete_missing=False)
    assert (first["unchanged"], second["updated"]) == (1, 1)
    pruned = sync([{"k": "a"}, {"k": "c"}], prune=True)
    assert (pruned["deleted"], pruned["inserted"], pruned["updated"]) == (1, 0, 0)
    import sqlite3

    from lorchestra_dagster.settings import Settings

    with sqlite3.connect(Settings.from_env().vault_dir / "local.db") as con:
        assert con.execute("SELECT k, v FROM m ORDER BY k").fetchall() == [("a", 1), ("c", 30)]

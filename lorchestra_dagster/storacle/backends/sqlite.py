"""``sqlite.sync``: vault SQLite tables that mirror a batch exactly, by key.

One transaction per plan (per database file): upsert by key, delete rows whose
key is not in the batch, leave every other table alone. Unchanged rows are not
rewritten. A dry run is the same work rolled back, or, when the database does
not exist yet, done in memory so no file appears.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lorchestra_dagster.errors import LorchestraError, PermanentError, TransientError
from lorchestra_dagster.privacy import private_dir, private_file
from lorchestra_dagster.storacle.backends.base import Op, OpFailure, write_result
from lorchestra_dagster.storacle.backends.paths import confined
from lorchestra_dagster.storacle.params import SqliteSyncParams
from lorchestra_dagster.storacle.sql import ident
from lorchestra_dagster.storacle.values import canonical_dumps, dedupe


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _value(v: Any) -> Any:
    if v is None or isinstance(v, str | int | float):
        return int(v) if isinstance(v, bool) else v
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    return canonical_dumps(v)


def _affinity(vals: list[Any]) -> str:
    kinds = {type(v) for v in vals if v is not None}
    if kinds and kinds <= {int, bool}:
        return "INTEGER"
    if kinds and kinds <= {int, float}:
        return "REAL"
    return "TEXT"


class SqliteVaultBackend:
    """Keyed mirror tables in SQLite files below ``root``."""

    name = "sqlite"

    def __init__(self, root: Path, *, busy_timeout_s: float = 30.0) -> None:
        self.root = Path(root)
        self.busy_timeout_s = busy_timeout_s

    def execute(self, ops: Sequence[Op], *, dry_run: bool) -> list[dict[str, Any]]:
        cons: dict[Path, sqlite3.Connection] = {}
        results: list[dict[str, Any]] = []
        try:
            for index, op in enumerate(ops):
                p = op.params
                try:
                    if not isinstance(p, SqliteSyncParams):
                        raise PermanentError(f"method {op.method} is not a SQLite method")
                    path = confined(self.root, p.db, "sqlite.sync db")
                    con = cons.get(path)
                    if con is None:
                        con = cons[path] = self._open(path, dry_run)
                    results.append(self._sync(con, p))
                except LorchestraError as err:
                    raise OpFailure(index, err) from err
                except sqlite3.Error as err:
                    raise OpFailure(index, _classify(err, op.target["table"])) from err
            for con in cons.values():
                con.execute("ROLLBACK" if dry_run else "COMMIT")
        except BaseException:
            for con in cons.values():
                if con.in_transaction:
                    con.execute("ROLLBACK")
            raise
        finally:
            for con in cons.values():
                con.close()
        return results

    def _open(self, path: Path, dry_run: bool) -> sqlite3.Connection:
        if dry_run and not path.exists():
            con = sqlite3.connect(":memory:", isolation_level=None)
        else:
            private_dir(path.parent)
            con = sqlite3.connect(path, timeout=self.busy_timeout_s, isolation_level=None)
            private_file(path)  # journals and WAL files take the database file's mode
        con.execute("BEGIN IMMEDIATE")
        return con

    @staticmethod
    def _prune(con: sqlite3.Connection, p: SqliteSyncParams, rows: list[Any]) -> int:
        """Delete the rows whose key is not among ``rows`` (keys only); the count deleted."""
        stage = _stage_keys(con, p.key_columns, rows)
        on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in p.key_columns)
        deleted = con.execute(
            f"DELETE FROM {q(p.table)} AS t WHERE NOT EXISTS "
            f"(SELECT 1 FROM temp.{stage} s WHERE {on})"
        ).rowcount
        con.execute(f"DROP TABLE temp.{stage}")
        return int(deleted)

    def _sync(self, con: sqlite3.Connection, p: SqliteSyncParams) -> dict[str, Any]:
        label = f"{p.db}:{p.table}"
        ident(p.table, "sqlite table")
        for name in (*p.key_columns, *p.volatile_columns):
            ident(name, f"column of {label}")
        result = write_result(p.method, p.db, p.table, len(p.rows))
        rows = dedupe(p.rows, p.key_columns, label)
        existing = [r[1] for r in con.execute(f"PRAGMA table_info({q(p.table)})").fetchall()]
        if p.prune:
            if existing:
                result["deleted"] = self._prune(con, p, rows)
            return result
        if not existing and not rows:
            return result
        batch_cols = list(dict.fromkeys(c for row in rows for c in row)) or list(p.key_columns)
        for name in batch_cols:
            ident(name, f"column of {label}")
        if not existing:
            body = ", ".join(f"{q(c)} {_affinity([r.get(c) for r in rows])}" for c in batch_cols)
            keys = ", ".join(q(k) for k in p.key_columns)
            con.execute(f"CREATE TABLE {q(p.table)} ({body}, PRIMARY KEY ({keys}))")
        else:
            for c in batch_cols:
                if c not in existing:
                    aff = _affinity([r.get(c) for r in rows])
                    con.execute(f"ALTER TABLE {q(p.table)} ADD COLUMN {q(c)} {aff}")
        stage = "__lorch_sync_stage"
        con.execute(f"DROP TABLE IF EXISTS temp.{stage}")
        keys_sql = ", ".join(q(k) for k in p.key_columns)
        con.execute(
            f"CREATE TEMP TABLE {stage} ({', '.join(q(c) for c in batch_cols)}, "
            f"PRIMARY KEY ({keys_sql}))"
        )
        marks = ", ".join("?" for _ in batch_cols)
        con.executemany(
            f"INSERT INTO temp.{stage} VALUES ({marks})",
            ([_value(row.get(c)) for c in batch_cols] for row in rows),
        )
        t = q(p.table)
        on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in p.key_columns)
        compare = [c for c in batch_cols if c not in set(p.key_columns) | set(p.volatile_columns)]
        changed = " OR ".join(f"t.{q(c)} IS NOT s.{q(c)}" for c in compare) or "0"
        inserted = con.execute(
            f"SELECT count(*) FROM temp.{stage} s WHERE NOT EXISTS (SELECT 1 FROM {t} t WHERE {on})"
        ).fetchone()[0]
        updated = con.execute(
            f"SELECT count(*) FROM temp.{stage} s WHERE EXISTS "
            f"(SELECT 1 FROM {t} t WHERE {on} AND ({changed}))"
        ).fetchone()[0]
        deleted = 0
        if p.delete_missing:
            deleted = con.execute(
                f"DELETE FROM {t} AS t WHERE NOT EXISTS (SELECT 1 FROM temp.{stage} s WHERE {on})"
            ).rowcount
        update_cols = [c for c in batch_cols if c not in p.key_columns]
        if updated and update_cols:
            sets = ", ".join(f"{q(c)} = s.{q(c)}" for c in update_cols)
            on_t = " AND ".join(f"{t}.{q(k)} = s.{q(k)}" for k in p.key_columns)
            changed_t = changed.replace("t.", f"{t}.")
            con.execute(f"UPDATE {t} SET {sets} FROM temp.{stage} s WHERE {on_t} AND ({changed_t})")
        if inserted:
            cols = ", ".join(q(c) for c in batch_cols)
            con.execute(
                f"INSERT INTO {t} ({cols}) SELECT {cols} FROM temp.{stage} s "
                f"WHERE NOT EXISTS (SELECT 1 FROM {t} t WHERE {on})"
            )
        con.execute(f"DROP TABLE temp.{stage}")
        result.update(
            inserted=inserted, updated=updated, unchanged=len(rows) - inserted - updated,
            deleted=deleted,
        )  # fmt: skip
        return result


def _stage_keys(con: sqlite3.Connection, key_columns: list[str], rows: list[Any]) -> str:
    stage = "__lorch_sync_keys"
    keys_sql = ", ".join(q(k) for k in key_columns)
    con.execute(f"DROP TABLE IF EXISTS temp.{stage}")
    con.execute(f"CREATE TEMP TABLE {stage} ({keys_sql}, PRIMARY KEY ({keys_sql}))")
    marks = ", ".join("?" for _ in key_columns)
    con.executemany(
        f"INSERT INTO temp.{stage} VALUES ({marks})",
        ([_value(row.get(k)) for k in key_columns] for row in rows),
    )
    return stage


def _classify(err: sqlite3.Error, table: str) -> LorchestraError:
    where = f"sqlite.sync on {table}"
    if isinstance(err, sqlite3.OperationalError) and "locked" in str(err).lower():
        return TransientError(f"{where}: database is locked", code="vault_locked")
    return PermanentError(f"{where}: {type(err).__name__}: {err}", code="vault_error")

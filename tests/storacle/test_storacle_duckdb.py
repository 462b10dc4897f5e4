"""DuckDB specifics: no file on dry runs, short-lock mode across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lorchestra_dagster.errors import TransientError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.backends.base import Op
from lorchestra_dagster.storacle.backends.duckdb import DuckDBBackend
from lorchestra_dagster.storacle.client import make_client
from lorchestra_dagster.storacle.plan import make_plan


def upsert(keys: range, table: str = "raw_objects") -> tuple[str, dict]:
    rows = [{"idem_key": f"k{i}", "payload": {"i": i}} for i in keys]
    return (
        "bq.upsert",
        {"dataset": "raw", "table": table, "key_columns": ["idem_key"], "rows": rows},
    )


@pytest.mark.unit
def test_dry_run_and_reads_never_create_the_warehouse(_isolated_home: Path) -> None:
    client = make_client(Settings.from_env())
    out = client.execute_plan(make_plan([upsert(range(3))], {}), dry_run=True)
    assert out["results"][0]["result"]["inserted"] == 3
    assert client.query({"dataset": "raw", "table": "raw_objects"}) == []
    assert client.sql("SELECT 1 AS one") == [{"one": 1}]
    assert not (_isolated_home / "warehouse.duckdb").exists()
    client.execute_plan(make_plan([upsert(range(3))], {}))
    assert (_isolated_home / "warehouse.duckdb").exists()


@pytest.mark.unit
def test_external_file_access_is_disabled(_isolated_home: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    client = make_client(Settings.from_env())
    client.execute_plan(make_plan([upsert(range(1))], {}))
    backend = client.transport.dispatcher.service.warehouse
    with pytest.raises(Exception, match="disabled by configuration"):
        with backend._cursor(write=False) as cur:
            cur.execute(f"SELECT * FROM read_csv('{secret}')").fetchall()


WRITER = textwrap.dedent(
    """
    import sys
    from lorchestra_dagster.settings import Settings
    from lorchestra_dagster.storacle.client import make_client
    from lorchestra_dagster.storacle.plan import make_plan

    worker, plans, per_plan = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    client = make_client(Settings.from_env())
    for p in range(plans):
        rows = [{"idem_key": f"w{worker}-{p}-{i}", "payload": {"i": i}} for i in range(per_plan)]
        op = ("bq.upsert", {"dataset": "raw", "table": "raw_objects",
                            "key_columns": ["idem_key"], "rows": rows})
        client.execute_plan(make_plan([op], {}))
        client.query({"dataset": "raw", "table": "raw_objects", "limit": 1})
    print("done", worker)
    """
)


@pytest.mark.e2e
def test_short_lock_lets_two_processes_share_the_file(_isolated_home: Path) -> None:
    env = {**os.environ, "LORCHESTRA_DUCKDB_SHORT_LOCK": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(w), "8", "25"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for w in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
    backend = DuckDBBackend(_isolated_home / "warehouse.duckdb")
    rows = backend.sql("SELECT count(*) AS n, count(DISTINCT idem_key) AS d FROM raw.raw_objects")
    backend.close()
    assert rows == [{"n": 2 * 8 * 25, "d": 2 * 8 * 25}]


HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("CREATE TABLE IF NOT EXISTS x (a INT)")
    print("ready", flush=True)
    time.sleep(30)
    """
)


@pytest.mark.e2e
def test_lock_held_by_another_process_is_transient(_isolated_home: Path) -> None:
    path = _isolated_home / "warehouse.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"ready"
        backend = DuckDBBackend(path, short_lock=True, lock_timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(TransientError, match="locked by another process") as info:
            backend.execute([Op.parse("a:0", *upsert(range(1)))], dry_run=False)
        assert info.value.code == "warehouse_locked"
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.unit
def test_written_rows_are_checkpointed_into_the_file(_isolated_home: Path) -> None:
    """No transaction is left open once the warehouse is opened and its tables created.

    A half-read result of the open check used to keep one open for the life of the
    process: every checkpoint was refused, so the WAL and every row written stayed in
    memory until the process ended (the growth of a run's peak RSS with the practice).
    """
    client = make_client(Settings.from_env())
    client.execute_plan(make_plan([upsert(range(3))], {}))
    backend = client.transport.dispatcher.service.warehouse
    with backend._cursor(write=True) as cur:
        cur.execute("CHECKPOINT")  # raised "there are other write transactions active"
        # A small threshold so a few plans cross it: DuckDB then checkpoints on commit.
        cur.execute("SET checkpoint_threshold='256KB'")
    wal = _isolated_home / "warehouse.duckdb.wal"
    for start in range(0, 6000, 2000):
        client.execute_plan(make_plan([upsert(range(start, start + 2000), "big")], {}))
        assert not wal.exists() or wal.stat().st_size < 256 * 1024
    assert len(client.query({"dataset": "raw", "table": "big", "columns": ["idem_key"]})) == 6000


@pytest.mark.unit
def test_the_warehouse_runs_under_the_default_memory_limit(_isolated_home: Path) -> None:
    """The embedded warehouse gets the small default limit (what bounds its cache) unless
    LORCHESTRA_DUCKDB_MEMORY_LIMIT says otherwise."""
    from lorchestra_dagster.settings import DUCKDB_MEMORY_LIMIT

    client = make_client(Settings.from_env())
    client.execute_plan(make_plan([upsert(range(1))], {}))
    backend = client.transport.dispatcher.service.warehouse
    with backend._cursor(write=False) as cur:
        [(limit,)] = cur.execute("SELECT current_setting('memory_limit')").fetchall()
        cur.execute(f"SET memory_limit='{DUCKDB_MEMORY_LIMIT}'")
        [(same,)] = cur.execute("SELECT current_setting('memory_limit')").fetchall()
    assert Settings.from_env().duckdb_memory_limit == DUCKDB_MEMORY_LIMIT
    assert limit == same  # DuckDB's own spelling of the same size (e.g. "122.0 MiB")

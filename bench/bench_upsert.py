"""Throughput of the write path against a plain DuckDB bulk insert, in one run.

Prints one JSON object: rows/s for make_plan + submit through the in-process
storacle client (JSON-RPC envelope, DuckDB backend), the same for an identical
rerun (every row unchanged), and rows/s for a plain Arrow bulk insert of the
same rows into DuckDB, plus peak RSS. Everything lives in a temporary
directory that is removed afterwards.

    .venv/bin/python bench/bench_upsert.py [--rows 100000] [--batch-size 5000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any


def synthetic_rows(n: int) -> list[dict[str, Any]]:
    """raw_objects rows shaped like an email ingest (no real data)."""
    base = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    rows = []
    for i in range(n):
        seen = (base + dt.timedelta(seconds=i)).isoformat()
        rows.append(
            {
                "idem_key": f"bench:acct:email:{i:08d}",
                "source_system": "bench",
                "connection_name": "acct",
                "object_type": "email",
                "external_id": f"{i:08d}",
                "payload": {
                    "id": i,
                    "subject": f"subject {i}",
                    "labels": ["inbox", "x"],
                    "size": i % 9973,
                    "thread": {"id": i // 7},
                },
                "source_ts": seen,
                "first_seen": seen,
                "last_seen": seen,
                "correlation_id": "bench",
            }
        )
    return rows


def storacle_run(home: Path, rows: list[dict[str, Any]], batch: int) -> dict[str, float]:
    from lorchestra_dagster.settings import Settings
    from lorchestra_dagster.storacle.client import make_client
    from lorchestra_dagster.storacle.plan import make_plan

    client = make_client(Settings.from_env({"LORCHESTRA_HOME": str(home)}))
    out: dict[str, float] = {}
    for label in ("first", "rerun"):
        plan_s = submit_s = 0.0
        inserted = unchanged = 0
        for start in range(0, len(rows), batch):
            t0 = time.perf_counter()
            plan = make_plan(
                [
                    (
                        "bq.upsert",
                        {
                            "dataset": "raw",
                            "table": "raw_objects",
                            "key_columns": ["idem_key"],
                            "rows": rows[start : start + batch],
                            "skip_update_columns": ["first_seen"],
                            "volatile_columns": ["last_seen"],
                        },
                    )
                ],
                {"run_id": "bench"},
            )
            t1 = time.perf_counter()
            result = client.execute_plan(plan)["results"][0]["result"]
            t2 = time.perf_counter()
            plan_s += t1 - t0
            submit_s += t2 - t1
            inserted += result["inserted"]
            unchanged += result["unchanged"]
        total = plan_s + submit_s
        out[f"{label}_plan_s"] = round(plan_s, 3)
        out[f"{label}_submit_s"] = round(submit_s, 3)
        out[f"{label}_rows_per_s"] = round(len(rows) / total)
        out[f"{label}_inserted"] = inserted
        out[f"{label}_unchanged"] = unchanged
    count = client.sql("SELECT count(*) AS n FROM raw.raw_objects")[0]["n"]
    out["table_rows"] = count
    client.transport.dispatcher.service.close()
    return out


def plain_duckdb(path: Path, rows: list[dict[str, Any]], batch: int) -> dict[str, float]:
    """The floor: Arrow batches into ``INSERT ... ON CONFLICT DO UPDATE`` on a keyed table,
    no envelope, no diff; twice (the second pass updates every row, as an upsert must
    when it cannot tell an unchanged row). Each pass builds its Arrow tables from the
    same Python rows, as storacle must."""
    import duckdb
    import pyarrow as pa

    con = duckdb.connect(str(path))
    con.execute("SET TimeZone='UTC'")
    con.execute(
        "CREATE TABLE raw_objects (idem_key VARCHAR PRIMARY KEY, source_system VARCHAR, "
        "connection_name VARCHAR, object_type VARCHAR, external_id VARCHAR, payload JSON, "
        "source_ts TIMESTAMPTZ, first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ, "
        "correlation_id VARCHAR)"
    )
    cols = list(rows[0])
    out: dict[str, float] = {}
    for label in ("plain", "plain_rerun"):
        t0 = time.perf_counter()
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            data = {
                c: [
                    json.dumps(r[c], separators=(",", ":")) if c == "payload" else r[c]
                    for r in chunk
                ]
                for c in cols
            }
            con.register("src", pa.table(data))
            con.execute(
                "INSERT INTO raw_objects SELECT idem_key, source_system, connection_name, "
                "object_type, external_id, CAST(payload AS JSON), CAST(source_ts AS TIMESTAMPTZ), "
                "CAST(first_seen AS TIMESTAMPTZ), CAST(last_seen AS TIMESTAMPTZ), correlation_id "
                "FROM src ON CONFLICT (idem_key) DO UPDATE SET payload = excluded.payload, "
                "source_ts = excluded.source_ts, last_seen = excluded.last_seen, "
                "correlation_id = excluded.correlation_id"
            )
            con.unregister("src")
        seconds = time.perf_counter() - t0
        out[f"{label}_s"] = round(seconds, 3)
        out[f"{label}_rows_per_s"] = round(len(rows) / seconds)
    con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows to write (default 100k)")
    parser.add_argument("--batch-size", type=int, default=5_000, help="rows per plan")
    args = parser.parse_args()
    rows = synthetic_rows(args.rows)
    with tempfile.TemporaryDirectory(prefix="lorchestra-bench-") as tmp:
        os.environ["LORCHESTRA_HOME"] = str(Path(tmp) / "home")
        started = time.perf_counter()
        figures = storacle_run(Path(tmp) / "home", rows, args.batch_size)
        figures.update(plain_duckdb(Path(tmp) / "plain.duckdb", rows, args.batch_size))
        total = time.perf_counter() - started
    figures = {
        "benchmark": "storacle bq.upsert vs plain DuckDB INSERT ON CONFLICT from Arrow",
        "rows": args.rows,
        "batch_size": args.batch_size,
        **figures,
        "storacle_vs_plain": round(figures["first_rows_per_s"] / figures["plain_rows_per_s"], 3),
        "goal_first": ">= 0.5 (plan.build + submit vs INSERT ... ON CONFLICT from Arrow)",
        "rerun_vs_plain_rerun": round(
            figures["rerun_rows_per_s"] / figures["plain_rerun_rows_per_s"], 3
        ),
        "goal_rerun": ">= 1.0 (all rows unchanged: storacle writes nothing)",
        "wall_s": round(total, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

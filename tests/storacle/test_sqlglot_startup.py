"""The sqlglot start-up race: fresh processes whose threads parse SQL at once never fail.

sqlglot registers a dialect when it is first used; two threads using DuckDB at
the same moment in a new process could see it half set up (``ParserException
near ":"``, once in about four processes). ``storacle.sql`` imports the dialects
at module load, so the threads below only ever find them ready.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

_THREADS = """
import threading
from lorchestra_dagster.storacle.sql import transpile_ddl, check_read_only

VIEW = (
    "CREATE OR REPLACE VIEW derived.v AS SELECT JSON_VALUE(payload, '$.a') AS a, "
    "SAFE_CAST(x AS INT64) AS n FROM raw.raw_objects WHERE idem_key = 'k'"
)
errors = []
start = threading.Barrier(8)

def work():
    start.wait()
    try:
        sql, _ = transpile_ddl(VIEW, read="bigquery", write="duckdb")
        check_read_only(sql.split(" AS ", 1)[1], dialect="duckdb")
    except Exception as err:
        errors.append(repr(err))

threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("\\n".join(errors))
raise SystemExit(1 if errors else 0)
"""


def test_fresh_processes_parse_in_parallel_threads_without_error() -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", _THREADS], stdout=subprocess.PIPE, text=True)
        for _ in range(10)
    ]
    failures = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        if proc.returncode:
            failures.append(out)
    assert failures == []

"""An out-of-memory a neighbouring statement caused is rerun alone; one that fails alone stands.

The daily run's project stage runs two jobs at once; both read JSON-heavy views, and
DuckDB's ``memory_limit`` is one budget for the process. Before the gate, one such
read failed the run (``sync_form_responses ... out of memory``, 240.6 of 244.1 MiB used,
seen in a 300-client ``daily_all``) although it fits alone.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from kit import plan_ops

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.settings import Limits
from lorchestra_dagster.storacle.backends.duckdb import DuckDBBackend
from lorchestra_dagster.storacle.backends.duckdb_gate import OUT_OF_MEMORY, MemoryGate

pytestmark = pytest.mark.unit


def _oom() -> PermanentError:
    return PermanentError("out of memory", code=OUT_OF_MEMORY)


def test_a_statement_starved_by_a_neighbour_is_rerun_alone_after_it() -> None:
    gate = MemoryGate()
    neighbour_in, neighbour_out = threading.Event(), threading.Event()
    order: list[str] = []

    def neighbour() -> None:
        def statement() -> None:
            neighbour_in.set()
            assert neighbour_out.wait(5)
            order.append("neighbour done")

        gate.run(statement)

    attempts = 0

    def starved() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            neighbour_out.set()  # the neighbour may finish now; the rerun must wait for it
            raise _oom()
        order.append("rerun")
        return "rows"

    t = threading.Thread(target=neighbour)
    t.start()
    assert neighbour_in.wait(5)
    assert gate.run(starved) == "rows"
    t.join(5)
    assert attempts == 2 and gate.reruns == 1
    assert order == ["neighbour done", "rerun"]  # alone: after the neighbour's turn ended


def test_out_of_memory_alone_is_not_rerun() -> None:
    gate = MemoryGate()
    attempts = 0

    def too_big() -> None:
        nonlocal attempts
        attempts += 1
        raise _oom()

    with pytest.raises(PermanentError) as info:
        gate.run(too_big)
    assert info.value.code == OUT_OF_MEMORY and attempts == 1 and gate.reruns == 0


def test_other_errors_in_a_crowd_are_not_rerun() -> None:
    gate = MemoryGate()
    inside, release = threading.Event(), threading.Event()
    t = threading.Thread(target=lambda: gate.run(lambda: (inside.set(), release.wait(5))))
    t.start()
    assert inside.wait(5)
    attempts = 0

    def bad_column() -> None:
        nonlocal attempts
        attempts += 1
        raise PermanentError("unknown column", code="invalid_query")

    try:
        with pytest.raises(PermanentError):
            gate.run(bad_column)
    finally:
        release.set()
        t.join(5)
    assert attempts == 1 and gate.reruns == 0


def test_new_statements_wait_while_one_runs_alone() -> None:
    gate = MemoryGate()
    alone_in, alone_out = threading.Event(), threading.Event()
    seen: list[str] = []

    def hold_alone() -> None:
        with gate.alone():
            alone_in.set()
            assert alone_out.wait(5)
            seen.append("alone done")

    t = threading.Thread(target=hold_alone)
    t.start()
    assert alone_in.wait(5)
    later = threading.Thread(target=lambda: gate.run(lambda: seen.append("later")))
    later.start()
    later.join(0.3)
    assert seen == []  # still waiting for the alone turn
    alone_out.set()
    t.join(5)
    later.join(5)
    assert seen == ["alone done", "later"]


def test_the_duckdb_backend_reads_through_the_gate(tmp_path: Path) -> None:
    """A real DuckDB read that exceeds both limits: rerun alone (under the steady limit
    while a neighbour held a turn, then under the burst one), and its permanent error
    stands (the same query fails alone)."""
    limits = Limits(memory_limit="32MB", burst_memory_limit="48MB")
    backend = DuckDBBackend(tmp_path / "w.duckdb", limits=limits)
    runaway = "SELECT list(range) FROM range(50000000)"

    with pytest.raises(PermanentError) as alone:
        backend.sql(runaway)
    assert alone.value.code == OUT_OF_MEMORY
    assert (backend._gate.reruns, backend._gate.bursts) == (1, 1)  # straight to the burst

    held, release = threading.Event(), threading.Event()

    def neighbour() -> None:
        with backend._gate.shared():
            held.set()
            release.wait(5)

    t = threading.Thread(target=neighbour)
    t.start()
    assert held.wait(5)
    threading.Timer(0.2, release.set).start()
    try:
        with pytest.raises(PermanentError) as crowded:
            backend.sql(runaway)
    finally:
        release.set()
        t.join(5)
    assert crowded.value.code == OUT_OF_MEMORY
    assert (backend._gate.reruns, backend._gate.bursts) == (2, 2)
    assert backend.sql("SELECT 1 AS one") == [{"one": 1}]  # the gate is open again
    backend.close()


def test_a_statement_too_big_for_the_steady_limit_runs_under_the_burst_one(tmp_path: Path):
    """About 40 MB of list: over the 32MB budget, within the 256MB burst. Every later
    statement runs under the steady limit again."""
    limits = Limits(memory_limit="32MB", burst_memory_limit="256MB")
    backend = DuckDBBackend(tmp_path / "w.duckdb", limits=limits)
    write = {"method": "bq.insert", "params": {"dataset": "raw", "table": "t", "rows": [{"a": 1}]}}
    backend.execute(plan_ops(write), dry_run=False)  # the warehouse file, not a stand-in
    big = "SELECT len(list(range)) AS n FROM range(5000000)"
    assert backend.sql(big) == [{"n": 5_000_000}]
    assert (backend._gate.reruns, backend._gate.bursts) == (1, 1)
    [row] = backend.sql("SELECT current_setting('memory_limit') AS limit")
    assert row["limit"].replace(" ", "").upper() in {"30.5MIB", "32.0MB", "30.5MB"}
    backend.close()

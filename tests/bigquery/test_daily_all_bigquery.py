"""pipeline.daily_all on DuckDB and on BigQuery (the emulator): the same results.

One synthetic practice, served by the loopback sandbox, runs through the engine
twice, each in a process of its own: once on the embedded DuckDB default, once
with ``LORCHESTRA_BACKEND=bigquery`` pointed at the emulator. Row counts per
table, every observation score and the vault files must be identical: the
backend is an adapter, not a behaviour.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit import JOBS

from lorchestra_dagster.sources.sandbox.generate import generate
from lorchestra_dagster.sources.sandbox.server import sandbox_env, serve_in_thread
from lorchestra_dagster.storacle.backends import bigquery_emulator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUNNER = Path(__file__).with_name("daily_runner.py")


def daily_all(home: Path, env: dict[str, str]) -> dict[str, Any]:
    """daily_all in a child process; its JSON summary (counts, scores, vault hashes)."""
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(home), str(JOBS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["status"] == "succeeded", out["failures"]
    return out


@pytest.fixture
def fresh_emulator() -> Iterator[bigquery_emulator.Emulator]:
    """An emulator of its own: DuckLake slows down as the shared one fills with the
    datasets of every conformance test, and this run writes ~180 plans."""
    emulator = bigquery_emulator.start()
    yield emulator
    emulator.stop()


def test_daily_all_gives_identical_results_on_duckdb_and_bigquery(
    fresh_emulator: bigquery_emulator.Emulator, tmp_path: Path
) -> None:
    bq_emulator = fresh_emulator
    practice = generate(6, 11, catalog_dir=JOBS)
    with serve_in_thread(practice) as sandbox:
        base = {**os.environ, "LORCHESTRA_SANDBOX_URL": sandbox.url, **sandbox_env()}
        base.pop("LORCHESTRA_HOME", None)
        duck = daily_all(tmp_path / "duck", {**base, "LORCHESTRA_BACKEND": "duckdb"})
        bq_env = bq_emulator.env(prefix=f"daily{uuid.uuid4().hex[:8]}_")
        big = daily_all(tmp_path / "bq", {**base, **bq_env})

    assert duck["counts"]["raw.raw_objects"] > 0 and duck["counts"]["derived.observations"] > 0
    assert big["counts"] == duck["counts"]
    assert big["written"] == duck["written"]
    assert len(big["scores"]) == duck["counts"]["derived.observations"]
    assert big["scores"] == duck["scores"]
    assert big["files"] == duck["files"]

"""The PostgreSQL instance variant, for real: PostgreSQL 15 on 127.0.0.1, a run stored in it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster_helpers import REPO, dagster_cli, subprocess_env

PG_SH = REPO / "scripts" / "pg.sh"


@pytest.fixture
def postgres() -> Iterator[dict[str, str]]:
    """A fresh cluster via scripts/pg.sh (what CI uses); stopped and removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="lorchestra-pg-test."))
    started = subprocess.run(
        ["bash", str(PG_SH), "start", str(base)], capture_output=True, text=True, check=False
    )
    assert started.returncode == 0, started.stderr
    env: dict[str, str] = {}
    for line in (base / "env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    try:
        yield env
    finally:
        subprocess.run(["bash", str(PG_SH), "stop", str(base)], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.e2e
@pytest.mark.slow
def test_daily_all_runs_on_the_postgres_instance(mini: dict, postgres: dict) -> None:
    import psycopg2

    home: Path = mini["dagster_home"]
    shutil.copy(REPO / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
    env = subprocess_env(postgres)
    proc = dagster_cli(
        "job", "execute", "-m", "lorchestra_dagster.definitions", "-j", "daily_all",
        "-c", str(REPO / "deploy" / "run_config.in_process.yaml"),
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not (home / "history").exists(), "SQLite run storage should not be used"
    conn = psycopg2.connect(
        host=postgres["DAGSTER_PG_HOST"],
        port=int(postgres["DAGSTER_PG_PORT"]),
        user=postgres["DAGSTER_PG_USERNAME"],
        password=postgres["DAGSTER_PG_PASSWORD"],
        dbname=postgres["DAGSTER_PG_DB"],
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pipeline_name, status FROM runs")
            runs = cur.fetchall()
            cur.execute(
                "SELECT COUNT(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
            )
            (materializations,) = cur.fetchone()
    finally:
        conn.close()
    assert runs == [("daily_all", "SUCCESS")]
    assert materializations == 2  # the two jobs of the mini catalog, no gate asset


@pytest.mark.unit
def test_postgres_variant_differs_only_in_storage() -> None:
    import yaml

    sqlite = yaml.safe_load((REPO / "dagster.yaml").read_text())
    pg = yaml.safe_load((REPO / "deploy" / "dagster.postgres.yaml").read_text())
    assert sqlite.pop("storage") == {"sqlite": {"base_dir": {"env": "DAGSTER_HOME"}}}
    storage = pg.pop("storage")["postgres"]["postgres_db"]
    assert storage["scheme"] == "postgresql+psycopg2"
    assert all(
        v == {"env": f"DAGSTER_PG_{k.upper()}"}
        for k, v in storage.items()
        if k not in ("scheme", "hostname", "db_name")
    )
    assert sqlite == pg

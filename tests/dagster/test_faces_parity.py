"""One engine, three faces: the same daily_all from the CLI, `dagster job execute` and the UI.

The shipped catalog against the loopback sandbox, once per face, each on a
fresh home: ``lorchestra pipeline run pipeline.daily_all`` (in-process Dagster
run), ``dagster job execute -j daily_all`` (the job's default executor, as CI
runs it) and a launch through the webserver's GraphQL API (what the UI's
launchpad sends; the daemon dequeues it and the run launcher starts it). All
three must give the same idem_keys in every table and the same vault files,
and each must be a Dagster run of ``daily_all`` in its home's instance.
"""

from __future__ import annotations

import copy
import os
import subprocess
import time
from pathlib import Path

import dagster as dg
import httpx
import kit
import pytest
from dagster_helpers import BIN, dagster_dev
from kit import REPO
from run_helpers import vault_digest

from lorchestra_dagster.settings import Settings
from lorchestra_dagster.sources.sandbox.generate import generate
from lorchestra_dagster.sources.sandbox.server import sandbox_env, serve_in_thread
from lorchestra_dagster.storacle.client import make_client
from lorchestra_dagster.storacle.service import close_services

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TABLES = (
    "raw.raw_objects",
    "canonical.canonical_objects",
    "derived.measurement_events",
    "derived.observations",
)
LAUNCH = """
mutation Launch($p: ExecutionParams!) {
  launchRun(executionParams: $p) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
STATUS = "query S($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


def _env(home: Path, sandbox_url: str) -> dict[str, str]:
    dagster_home = kit.dagster_home(home)
    return {
        **os.environ,
        **sandbox_env(),
        "LORCHESTRA_SANDBOX_URL": sandbox_url,
        "LORCHESTRA_HOME": str(home),
        "LORCHESTRA_JOBS_DIR": str(REPO / "jobs"),
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }


def _cli(env: dict[str, str]) -> None:
    cmd = [str(BIN / "lorchestra"), "pipeline", "run", "pipeline.daily_all", "--json"]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def _dagster_execute(env: dict[str, str]) -> None:
    cmd = [
        str(BIN / "dagster"), "job", "execute",
        "-m", "lorchestra_dagster.definitions", "-j", "daily_all",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def _ui(env: dict[str, str], log: Path) -> None:
    with dagster_dev({**env, "LORCHESTRA_DUCKDB_SHORT_LOCK": "1"}, log) as base:
        url = f"{base}/graphql"
        params = {
            "selector": {
                "repositoryLocationName": "lorchestra",
                "repositoryName": "__repository__",
                "jobName": "daily_all",
            },
            "runConfigData": {},
        }
        launched = httpx.post(
            url, json={"query": LAUNCH, "variables": {"p": params}}, timeout=60
        ).json()["data"]["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        deadline = time.monotonic() + 900
        while True:
            status = httpx.post(
                url, json={"query": STATUS, "variables": {"id": run_id}}, timeout=60
            ).json()["data"]["runOrError"]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            assert time.monotonic() < deadline, f"UI run still {status}"
            time.sleep(2)
        assert status == "SUCCESS", log.read_text()[-3000:]


def _outcome(home: Path) -> dict:
    """idem_keys per table and the vault's files (path -> sha256) of one home."""
    client = make_client(Settings.from_env(home=home, jobs_dir=REPO / "jobs"))
    try:
        keys = {
            t: [r["idem_key"] for r in client.sql(f"SELECT idem_key FROM {t} ORDER BY 1")]
            for t in TABLES
        }
    finally:
        client.close()
        close_services()  # let go of the warehouse file
    vault = home / "vault"
    files = {
        str(p.relative_to(vault)): vault_digest(p)
        for p in sorted(vault.rglob("*"))
        if p.is_file() and p.name != "local.db"
    }
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = [(r.job_name, r.status) for r in instance.get_runs()]
    return {"keys": keys, "files": files, "runs": runs}


def test_cli_dagster_execute_and_ui_give_the_same_day(tmp_path: Path, monkeypatch) -> None:
    practice = generate(6, 5, catalog_dir=REPO / "jobs")
    outcomes = {}
    for face in ("cli", "dagster_execute", "ui"):
        home = tmp_path / face
        with serve_in_thread(copy.deepcopy(practice)) as sandbox:
            env = _env(home, sandbox.url)
            if face == "cli":
                _cli(env)
            elif face == "dagster_execute":
                _dagster_execute(env)
            else:
                _ui(env, tmp_path / "dagster-dev.log")
        monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
        outcomes[face] = _outcome(home)

    cli = outcomes["cli"]
    assert len(cli["keys"]["raw.raw_objects"]) >= sum(practice.counts().values())
    assert all(cli["keys"][t] for t in TABLES), {t: len(v) for t, v in cli["keys"].items()}
    assert any(p.endswith("measures.md") for p in cli["files"])
    for face in ("dagster_execute", "ui"):
        other = outcomes[face]
        for table in TABLES:
            assert other["keys"][table] == cli["keys"][table], (face, table)
        assert sorted(other["files"]) == sorted(cli["files"]), face
        differing = [p for p in cli["files"] if other["files"][p] != cli["files"][p]]
        assert differing == [], (face, differing[:10])
    for face, outcome in outcomes.items():
        assert outcome["runs"] == [("daily_all", dg.DagsterRunStatus.SUCCESS)], face

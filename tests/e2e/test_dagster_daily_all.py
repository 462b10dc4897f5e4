"""``dagster job execute -j daily_all`` on the shipped catalog and sandbox, as CI runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from lorchestra_dagster.settings import Settings
from lorchestra_dagster.sources.sandbox.generate import generate
from lorchestra_dagster.sources.sandbox.server import sandbox_env, serve_in_thread
from lorchestra_dagster.storacle.client import make_client
from lorchestra_dagster.storacle.service import close_services

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_dagster_job_execute_daily_all_on_the_sample_practice(tmp_path, monkeypatch):
    home = Path(os.environ["LORCHESTRA_HOME"])
    dagster_home = home / "dagster"
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))  # dagster.yaml reads it
    dagster_home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    practice = generate(6, 5, catalog_dir=REPO / "jobs")
    exe = Path(sys.executable).with_name("dagster")
    with serve_in_thread(practice) as sandbox:
        env = {
            **os.environ,
            **sandbox_env(),
            "LORCHESTRA_SANDBOX_URL": sandbox.url,
            "LORCHESTRA_JOBS_DIR": str(REPO / "jobs"),
            "DAGSTER_HOME": str(dagster_home),
        }
        proc = subprocess.run(
            [
                str(exe),
                "job",
                "execute",
                "-m",
                "lorchestra_dagster.definitions",
                "-j",
                "daily_all",
                "-c",
                str(REPO / "deploy" / "run_config.in_process.yaml"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            cwd=REPO,
            check=False,
        )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        assert [(r.job_name, r.status) for r in runs] == [
            ("daily_all", dg.DagsterRunStatus.SUCCESS)
        ]

    client = make_client(Settings.from_env(home=home))
    try:
        counts = {
            t: client.sql(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"]
            for t in (
                "raw.raw_objects",
                "canonical.canonical_objects",
                "derived.measurement_events",
                "derived.observations",
            )
        }
    finally:
        client.close()
        close_services()
    assert counts["raw.raw_objects"] >= sum(practice.counts().values())
    assert all(n > 0 for n in counts.values()), counts
    assert (home / "vault" / "alerts.md").is_file()
    assert len(list((home / "vault" / "clients").iterdir())) == 6

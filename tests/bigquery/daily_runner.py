"""Run pipeline.daily_all once and print counts, scores and vault hashes as JSON.

A child process of ``test_daily_all_bigquery.py``: each backend's run gets a
process of its own, so the comparison cannot be influenced by state one run
leaves in the interpreter (caches, thread-local compiled expressions).
Usage: ``python daily_runner.py HOME JOBS_DIR`` with the backend and sandbox
chosen by environment variables.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: run_helpers
from run_helpers import vault_digest

from lorchestra_dagster.engine import Services
from lorchestra_dagster.launch import launch
from lorchestra_dagster.settings import Settings

TABLES = [
    ("raw", "raw_objects"),
    ("raw", "ingest_files"),
    ("canonical", "canonical_objects"),
    ("derived", "measurement_events"),
    ("derived", "observations"),
]
SCORE_COLUMNS = [
    "idem_key",
    "measure_code",
    "instrument_code",
    "value_numeric",
    "severity_code",
    "severity_label",
    "components",
    "flags",
]


def main(home: Path, jobs: Path) -> dict:
    settings = Settings.from_env(os.environ, jobs_dir=jobs, home=home)
    services = Services.from_settings(settings, env=dict(os.environ))
    try:
        result = launch("pipeline.daily_all", kind="pipeline", settings=settings, max_workers=2)
        client = services.client
        counts = {}
        for dataset, table in TABLES:
            params = {"dataset": dataset, "table": table, "columns": ["COUNT(*) AS n"]}
            counts[f"{dataset}.{table}"] = client.query(params)[0]["n"]
        scores = client.query(
            {
                "dataset": "derived",
                "table": "observations",
                "columns": SCORE_COLUMNS,
                "order_by": "idem_key",
                "parse_json_columns": ["components", "flags"],
            }
        )
    finally:
        services.client.close()
    vault = home / "vault"
    files = {
        str(p.relative_to(vault)): vault_digest(p)
        for p in sorted(vault.rglob("*"))
        if p.is_file() and p.name != "local.db"
    }
    return {
        "status": result.status,
        "failures": [str(f) for f in result.failures],
        "written": result.rows_written,
        "counts": counts,
        "scores": scores,
        "files": files,
    }


if __name__ == "__main__":
    out = main(Path(sys.argv[1]), Path(sys.argv[2]))
    sys.stdout.write(json.dumps(out) + "\n")

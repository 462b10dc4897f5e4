"""Snapshots of what the shipped catalog compiles to: every asset spec and one compiled job.

A change to a job YAML, to lineage or to compile shows up here as a diff a reviewer
reads (dagster-open-platform snapshots its asset specs the same way). When the change
is intended, rewrite the files and commit them with it:

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/dagster/test_snapshots.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from dagster_helpers import JOBS, REPO

from lorchestra_dagster.defs.build import build_defs
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.spec import Envelope, compile_job
from lorchestra_dagster.spec.catalog import load_catalog

pytestmark = pytest.mark.unit

SNAPSHOTS = Path(__file__).parent / "snapshots"
#: The job whose compiled form is pinned: a read, a callable, a plan and a submit.
COMPILED_JOB = "canonize_stripe_invoice"


def _matches(name: str, actual: Any) -> None:
    path = SNAPSHOTS / name
    text = json.dumps(actual, indent=1, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    expected = path.read_text(encoding="utf-8") if path.is_file() else "(no snapshot)"
    assert text == expected, f"{name} changed; if intended: UPDATE_SNAPSHOTS=1 pytest {__file__}"


def test_asset_specs_of_the_shipped_catalog() -> None:
    settings = Settings.from_env({}, jobs_dir=JOBS, home=REPO / ".lorchestra-unused")
    graph = build_defs(settings).resolve_asset_graph()
    specs = {
        node.key.to_user_string(): {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "code_version": node.code_version,
            "kinds": sorted(node.kinds),
        }
        for node in graph.asset_nodes
    }
    _matches("asset_specs.json", dict(sorted(specs.items())))


def test_one_compiled_job() -> None:
    loaded = load_catalog(JOBS).jobs[COMPILED_JOB]
    envelope = Envelope.model_validate({"job_id": COMPILED_JOB, "run_id": "snapshot"})
    instance = compile_job(loaded, envelope, JOBS).model_dump(mode="json")
    instance["source_path"] = str(Path(instance["source_path"]).relative_to(REPO))
    _matches(f"{COMPILED_JOB}.instance.json", instance)

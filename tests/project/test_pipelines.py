"""The pipeline YAMLs of the views/project stages and of the daily run."""

from __future__ import annotations

import pytest
from kit import REPO

from lorchestra_dagster.spec.catalog import load_catalog

pytestmark = pytest.mark.unit


def test_daily_all_runs_every_stage_in_order_and_stops_on_failure() -> None:
    catalog = load_catalog(REPO / "jobs")
    daily = catalog.pipelines["pipeline.daily_all"]
    assert [(s.name, s.jobs) for s in daily.stages] == [
        ("ingest", ["pipeline.ingest"]),
        ("canonize", ["pipeline.canonize"]),
        ("formation", ["pipeline.formation"]),
        ("views", ["pipeline.views"]),
        ("project", ["pipeline.project"]),
    ]
    assert daily.stop_on_failure is True
    for child in (
        "pipeline.ingest",
        "pipeline.canonize",
        "pipeline.formation",
        "pipeline.views",
        "pipeline.project",
    ):
        assert catalog.pipelines[child].stop_on_failure is False, child


def test_views_and_project_pipelines_name_every_job_of_their_stage() -> None:
    catalog = load_catalog(REPO / "jobs")
    for pipeline_id, stage in (("pipeline.views", "views"), ("pipeline.project", "project")):
        named = {j for s in catalog.pipelines[pipeline_id].stages for j in s.jobs}
        on_disk = {p.stem for p in (REPO / "jobs" / stage).glob("*.yaml")}
        assert named == on_disk, pipeline_id

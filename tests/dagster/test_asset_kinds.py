"""Asset kinds follow the warehouse backend: the UI says where each job writes."""

from __future__ import annotations

import pytest
from kit import JOBS

from lorchestra_dagster.defs.build import build_defs
from lorchestra_dagster.settings import Settings

pytestmark = pytest.mark.unit


def _kinds(backend: str) -> dict[str, set[str]]:
    settings = Settings.from_env({"LORCHESTRA_BACKEND": backend}, jobs_dir=JOBS)
    graph = build_defs(settings).resolve_asset_graph()
    return {
        key.path[-1]: set(graph.get(key).kinds)
        for key in graph.get_all_asset_keys()
        if key.path[0] != "pipeline"
    }


@pytest.mark.parametrize("backend", ["duckdb", "bigquery"])
def test_kinds_name_the_backend(backend):
    kinds = _kinds(backend)
    other = {"duckdb", "bigquery"} - {backend}
    assert backend in kinds["stripe_customers"]
    assert kinds["sync_clients"] >= {"sqlite"}
    assert "files" in kinds["render_measures"]
    assert not any(other & k for k in kinds.values())

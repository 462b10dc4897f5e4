"""The in-process transport hands the plan itself to the backend: no JSON copy, one check.

The service validates every op once into its params model; the backend gets the models.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from lorchestra_dagster.errors import StoracleError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.backends.base import Op
from lorchestra_dagster.storacle.backends.duckdb import DuckDBBackend
from lorchestra_dagster.storacle.client import InProcessTransport, StoracleClient
from lorchestra_dagster.storacle.params import UpsertParams
from lorchestra_dagster.storacle.plan import make_plan
from lorchestra_dagster.storacle.service import StoracleService

pytestmark = pytest.mark.unit


class Recording(DuckDBBackend):
    """The real DuckDB backend, remembering the ops objects it was handed."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.seen: list[Op] = []

    def execute(self, ops: Sequence[Op], *, dry_run: bool) -> list[dict[str, Any]]:
        self.seen.extend(ops)
        return super().execute(ops, dry_run=dry_run)


def _client(tmp_path: Path) -> tuple[StoracleClient, Recording]:
    backend = Recording(tmp_path / "w.duckdb")
    service = StoracleService(
        Settings.from_env({"LORCHESTRA_HOME": str(tmp_path)}), warehouse=backend
    )
    return StoracleClient(InProcessTransport(service)), backend


def test_rows_reach_the_backend_by_reference(tmp_path: Path) -> None:
    client, backend = _client(tmp_path)
    rows = [{"idem_key": f"k{i}", "n": i} for i in range(3)]
    op = {"dataset": "raw", "table": "t", "key_columns": ["idem_key"], "rows": rows}
    result = client.execute_plan(make_plan([("bq.upsert", op)], {"run_id": "r"}))
    assert result["results"][0]["result"]["inserted"] == 3
    # The backend got the validated model, its rows the very dicts the plan was built
    # from: not a JSON round trip, not a pydantic copy of any row.
    [seen] = backend.seen
    assert isinstance(seen.params, UpsertParams)
    assert len(seen.params.rows) == 3
    assert all(got is row for got, row in zip(seen.params.rows, rows, strict=True))
    assert client.sql("SELECT count(*) AS n FROM raw.t") == [{"n": 3}]


def test_a_plan_dict_is_still_checked_by_the_dispatcher(tmp_path: Path) -> None:
    client, backend = _client(tmp_path)
    bad = make_plan([("bq.upsert", {"dataset": "raw", "table": "t"})], {}).model_dump()
    bad["ops"][0]["method"] = "bq.drop_everything"
    with pytest.raises(StoracleError) as info:
        client.execute_plan(bad)
    assert info.value.rpc_code == -32601
    assert backend.seen == []

"""Params are validated once per op and per read, whichever transport carried them.

The service parses a plan's ops into their models and the backends take those
models; a read is parsed at the JSON-RPC boundary. A counting stand-in for a
model's validator shows how many times each path validates.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle import jsonio
from lorchestra_dagster.storacle.backends.base import Op
from lorchestra_dagster.storacle.backends.duckdb import DuckDBBackend
from lorchestra_dagster.storacle.client import InProcessTransport, StoracleClient, plan_envelope
from lorchestra_dagster.storacle.params import UpsertParams
from lorchestra_dagster.storacle.plan import make_plan
from lorchestra_dagster.storacle.query import QueryParams
from lorchestra_dagster.storacle.rpc import Dispatcher
from lorchestra_dagster.storacle.service import StoracleService

pytestmark = pytest.mark.unit


class _Counting:
    """Wraps a model's compiled validator and counts the validations that go through it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def validate_python(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner.validate_python(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, _Counting]]:
    out = {}
    for model in (UpsertParams, QueryParams):
        counter = _Counting(model.__pydantic_validator__)
        monkeypatch.setattr(model, "__pydantic_validator__", counter)
        out[model.__name__] = counter
    yield out


def _service(tmp_path: Path) -> StoracleService:
    settings = Settings.from_env({"LORCHESTRA_HOME": str(tmp_path)})
    return StoracleService(settings, warehouse=DuckDBBackend(tmp_path / "w.duckdb"))


def _plan(n: int) -> Any:
    rows = [{"idem_key": f"k{i}", "n": i} for i in range(n)]
    params = {"dataset": "raw", "table": "t", "key_columns": ["idem_key"], "rows": rows}
    return make_plan([("bq.upsert", params), ("bq.upsert", {**params, "table": "u"})], {})


def test_in_process_plan_ops_are_validated_once_each(tmp_path, counted) -> None:
    client = StoracleClient(InProcessTransport(_service(tmp_path)))
    result = client.execute_plan(_plan(50))
    assert [r["result"]["inserted"] for r in result["results"]] == [50, 50]
    assert counted["UpsertParams"].calls == 2  # one per op: the service's, none in the backend


def test_a_json_plan_over_the_wire_is_validated_once_per_op(tmp_path, counted) -> None:
    dispatcher = Dispatcher(_service(tmp_path))
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "storacle.execute_plan",
        "params": {"_meta": {"dry_run": False}, "payload": plan_envelope(_plan(5))},
    }
    response = dispatcher.handle(jsonio.dumps(request))
    assert response is not None and "error" not in response
    assert counted["UpsertParams"].calls == 2


def test_a_json_read_is_validated_once(tmp_path, counted) -> None:
    service = _service(tmp_path)
    StoracleClient(InProcessTransport(service)).execute_plan(_plan(3))
    counted["QueryParams"].calls = 0
    request = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "storacle.query",
        "params": {"dataset": "raw", "table": "t", "order_by": "idem_key", "limit": 2},
    }
    response = Dispatcher(service).handle(jsonio.dumps(request))
    assert response is not None and len(response["result"]["items"]) == 2
    assert counted["QueryParams"].calls == 1


def test_a_bad_read_is_refused_at_the_boundary_naming_the_field(tmp_path) -> None:
    request = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "storacle.query",
        "params": {"dataset": "raw", "table": "t", "limit": "jane.doe@example.com"},
    }
    response = Dispatcher(_service(tmp_path)).handle(jsonio.dumps(request))
    assert response is not None
    error = response["error"]
    assert error["code"] == -32602 and "limit" in error["message"]
    assert "jane.doe" not in jsonio.dumps(response).decode()


def test_backends_take_models_and_do_not_parse(tmp_path, counted) -> None:
    backend = DuckDBBackend(tmp_path / "w.duckdb")
    rows = [{"idem_key": "a", "n": 1}, {"idem_key": "b", "n": 2}]
    upsert = UpsertParams(dataset="raw", table="t", key_columns=["idem_key"], rows=rows)
    counted["UpsertParams"].calls = 0
    [res] = backend.execute([Op("op:0", upsert)], dry_run=False)
    assert res["inserted"] == 2
    read = QueryParams(dataset="raw", table="t", order_by="idem_key")
    counted["QueryParams"].calls = 0
    assert [r["idem_key"] for r in backend.query(read)] == ["a", "b"]
    assert (counted["UpsertParams"].calls, counted["QueryParams"].calls) == (0, 0)
    backend.close()

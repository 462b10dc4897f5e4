"""The HTTP transport against a real `lorchestra storacle serve` process on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kit import free_port
from serve_helpers import Served, serving

from lorchestra_dagster.errors import StoracleError, TransientError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.client import HttpTransport, StoracleClient, make_client
from lorchestra_dagster.storacle.plan import make_plan

pytestmark = pytest.mark.e2e

MAX_BYTES = 200_000


@pytest.fixture
def served(_isolated_home: Path) -> Iterator[Served]:
    with serving(_isolated_home, {"LORCHESTRA_STORACLE_MAX_BYTES": str(MAX_BYTES)}) as s:
        yield s


@pytest.fixture
def server(served: Served) -> str:
    return served.url


def test_plans_and_queries_over_http(server: str, _isolated_home: Path) -> None:
    settings = Settings.from_env({"LORCHESTRA_HOME": str(_isolated_home), "STORACLE_URL": server})
    client = make_client(settings)
    assert isinstance(client.transport, HttpTransport)
    rows = [
        {"idem_key": f"k{i}", "payload": {"i": i}, "last_seen": "2026-11-29T06:00:00Z"}
        for i in range(50)
    ]
    ops = [
        (
            "bq.upsert",
            {"dataset": "raw", "table": "raw_objects", "key_columns": ["idem_key"], "rows": rows},
        ),
        ("sqlite.sync", {"table": "t", "key_columns": ["idem_key"], "rows": rows[:5]}),
        ("file.write", {"path": "x/y.md", "content": "hi"}),
    ]
    dry = client.execute_plan(make_plan(ops, {}), dry_run=True)
    assert [r["result"]["inserted"] for r in dry["results"]] == [50, 5, 1]
    assert client.query({"dataset": "raw", "table": "raw_objects"}) == []
    out = client.execute_plan(make_plan(ops, {"run_id": "r"}))
    assert [r["result"]["inserted"] for r in out["results"]] == [50, 5, 1]
    again = client.execute_plan(make_plan(ops, {}))
    assert [r["result"]["unchanged"] for r in again["results"]] == [50, 5, 1]
    got = client.query(
        {
            "dataset": "raw",
            "table": "raw_objects",
            "order_by": "idem_key",
            "limit": 2,
            "parse_json_columns": ["payload"],
        }
    )
    assert [(r["idem_key"], r["payload"], r["last_seen"]) for r in got] == [
        ("k0", {"i": 0}, "2026-11-29T06:00:00+00:00"),
        ("k1", {"i": 1}, "2026-11-29T06:00:00+00:00"),
    ]
    assert client.sql("SELECT count(*) AS n FROM raw.raw_objects") == [{"n": 50}]
    assert (_isolated_home / "vault" / "x" / "y.md").read_text() == "hi"
    assert client.health()["status"] == "ok"
    bad = [
        (
            "bq.upsert",
            {
                "dataset": "raw",
                "table": "raw_objects",
                "key_columns": ["idem_key"],
                "rows": [{"payload": {}}],
            },
        )
    ]
    with pytest.raises(StoracleError, match="missing key column 'idem_key'") as info:
        client.execute_plan(make_plan(bad, {}))
    assert info.value.classification == "permanent" and info.value.rpc_code == -32602
    client.close()


def test_malformed_and_oversize_requests_do_not_hurt_the_server(served: Served) -> None:
    server, headers = served.url, served.headers
    r = httpx.post(f"{server}/rpc", content=b"{broken", headers=headers)
    assert r.status_code == 200 and r.json()["error"]["code"] == -32700
    r = httpx.post(f"{server}/rpc", content=b"x" * (MAX_BYTES + 1), headers=headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == -32600
    client = StoracleClient(HttpTransport(server, token=served.token))
    big = [{"idem_key": f"k{i}", "pad": "x" * 100} for i in range(3000)]
    with pytest.raises(StoracleError, match="too large") as info:
        client.execute_plan(make_plan([("wal.append", {"table": "w", "rows": big})], {}))
    assert info.value.rpc_code == -32600
    assert client.health()["status"] == "ok"


def test_unreachable_server_is_transient() -> None:
    client = StoracleClient(HttpTransport(f"http://127.0.0.1:{free_port()}", timeout_s=2))
    with pytest.raises(TransientError, match="unreachable"):
        client.health()

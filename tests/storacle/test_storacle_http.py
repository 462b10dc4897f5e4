"""The HTTP transport against a real `lorchestra storacle serve` process on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lorchestra_dagster.errors import StoracleError, TransientError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.client import HttpTransport, StoracleClient, make_client
from lorchestra_dagster.storacle.plan import make_plan

pytestmark = pytest.mark.e2e

LORCHESTRA = Path(sys.executable).parent / "lorchestra"
MAX_BYTES = 200_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(_isolated_home: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "LORCHESTRA_STORACLE_MAX_BYTES": str(MAX_BYTES)}
    proc = subprocess.Popen(
        [str(LORCHESTRA), "storacle", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


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


def test_malformed_and_oversize_requests_do_not_hurt_the_server(server: str) -> None:
    r = httpx.post(f"{server}/rpc", content=b"{broken")
    assert r.status_code == 200 and r.json()["error"]["code"] == -32700
    r = httpx.post(f"{server}/rpc", content=b"x" * (MAX_BYTES + 1))
    assert r.status_code == 413 and r.json()["error"]["code"] == -32600
    client = StoracleClient(HttpTransport(server))
    big = [{"idem_key": f"k{i}", "pad": "x" * 100} for i in range(3000)]
    with pytest.raises(StoracleError, match="too large") as info:
        client.execute_plan(make_plan([("wal.append", {"table": "w", "rows": big})], {}))
    assert info.value.rpc_code == -32600
    assert client.health()["status"] == "ok"


def test_unreachable_server_is_transient() -> None:
    client = StoracleClient(HttpTransport(f"http://127.0.0.1:{free_port()}", timeout_s=2))
    with pytest.raises(TransientError, match="unreachable"):
        client.health()

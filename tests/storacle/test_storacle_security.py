"""Attacks and failures against a real `lorchestra storacle serve` on 127.0.0.1 (issue 12).

Each test is one thing an attacker on the same machine (a process, a web page in
the clinician's browser) or a crash did, and what the server must do instead.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kit import free_port
from serve_helpers import LORCHESTRA, Served, serving, start, stop

from lorchestra_dagster.errors import StoracleError
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.auth import TOKEN_FILE
from lorchestra_dagster.storacle.client import HttpTransport, StoracleClient, make_client
from lorchestra_dagster.storacle.plan import make_plan

pytestmark = pytest.mark.e2e

MARKER = "Zelda Quinterro-PHI-7731"  # a planted "client name": must never be echoed
LIMITS = {
    "LORCHESTRA_DUCKDB_MEMORY_LIMIT": "256MB",
    "LORCHESTRA_QUERY_TIMEOUT_S": "2",
    "LORCHESTRA_MAX_ROWS": "1000",
}
T0 = "2026-11-29T06:00:00+00:00"


def raw(n: int, **over: object) -> list[dict]:
    return [
        {"idem_key": f"k{i}", "source_system": "s", "payload": {"n": i}, "last_seen": T0, **over}
        for i in range(n)
    ]


def upsert(rows: list[dict]) -> tuple[str, dict]:
    return ("bq.upsert", {"dataset": "raw", "table": "raw_objects", "key_columns": ["idem_key"],
                          "rows": rows})  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One bounded server for the module (starting one costs ~1 s)."""
    home = tmp_path_factory.mktemp("sechome")
    s = start(home, LIMITS)
    yield s
    log = stop(s)
    assert MARKER not in log, "a planted value reached the server's log"


@pytest.fixture
def client(served: Served) -> Iterator[StoracleClient]:
    c = StoracleClient(HttpTransport(served.url, token=served.token))
    yield c
    c.close()


def rpc(served: Served, method: str, params: dict, **headers: str) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return httpx.post(f"{served.url}/rpc", json=body, headers={**served.headers, **headers})


# -- authentication -------------------------------------------------------------------------


def test_token_file_is_private_and_shared_by_clients(served: Served) -> None:
    path = served.home / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = Settings.from_env({"LORCHESTRA_HOME": str(served.home), "STORACLE_URL": served.url})
    assert make_client(settings).health()["status"] == "ok"  # read the file by itself


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"authorization": ""}, 401, -32001),
        ({"authorization": "Bearer not-the-token"}, 401, -32001),
        ({"authorization": "Basic Zm9vOmJhcg=="}, 401, -32001),
        ({"content-type": "text/plain"}, 415, -32003),  # a CSRF form post
        ({"content-type": "application/x-www-form-urlencoded"}, 415, -32003),
        ({"origin": "https://evil.example"}, 403, -32002),  # a foreign page
        ({"origin": "null"}, 403, -32002),
        ({"host": "rebind.evil.example:8765"}, 403, -32002),  # DNS rebinding
    ],
)
def test_refused_requests_never_reach_the_data(
    served: Served, client: StoracleClient, headers: dict, status: int, code: int
) -> None:
    client.execute_plan(make_plan([upsert(raw(2))], {}))
    drop = ("bq.execute", {"sql": "DROP SCHEMA raw CASCADE"})
    plan = {"_meta": {}, "payload": make_plan([drop], {}).model_dump()}
    r = rpc(served, "storacle.execute_plan", plan, **headers)
    assert r.status_code == status and r.json()["error"]["code"] == code
    r = httpx.get(f"{served.url}/health", headers={**served.headers, **headers})
    assert r.status_code in (status, 200 if status == 415 else status)
    assert len(client.query({"dataset": "raw", "table": "raw_objects"})) == 2


def test_loopback_origin_and_allow_listed_host_pass(served: Served) -> None:
    r = rpc(served, "storacle.health", {}, origin=served.url)
    assert r.status_code == 200 and r.json()["result"]["status"] == "ok"


def test_non_loopback_bind_needs_allow_remote_and_a_token(tmp_path: Path) -> None:
    base = {**os.environ, "LORCHESTRA_HOME": str(tmp_path)}
    base.pop("LORCHESTRA_STORACLE_TOKEN", None)
    cmd = [str(LORCHESTRA), "storacle", "serve", "--host", "0.0.0.0", "--port", str(free_port())]
    plain = subprocess.run(cmd, env=base, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 2 and "--allow-remote" in plain.stderr
    no_token = subprocess.run(
        [*cmd, "--allow-remote"], env=base, capture_output=True, text=True, timeout=60
    )
    assert no_token.returncode == 2 and "LORCHESTRA_STORACLE_TOKEN" in no_token.stderr


# -- only views from the catalog ------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE OR REPLACE TABLE raw.raw_objects AS SELECT * FROM raw.raw_objects WHERE false",
        "DROP SCHEMA derived CASCADE",
        "DROP SCHEMA raw CASCADE",
        "DROP TABLE raw.raw_objects",
        "CREATE VIEW derived.v AS SELECT 1 AS x; DROP TABLE raw.raw_objects",
        "CREATE OR REPLACE VIEW raw.raw_objects AS SELECT 1 AS x",
        "CREATE OR REPLACE VIEW canonical.canonical_objects AS SELECT 1 AS x",
        "CREATE TABLE derived.t AS SELECT * FROM raw.raw_objects",
        "CREATE VIEW derived.f AS SELECT * FROM read_csv('/etc/passwd')",
    ],
)
def test_bq_execute_accepts_only_catalog_views(client: StoracleClient, sql: str) -> None:
    client.execute_plan(make_plan([upsert(raw(3))], {}))
    with pytest.raises(StoracleError) as info:
        client.execute_plan(make_plan([("bq.execute", {"sql": sql})], {}))
    assert info.value.classification == "permanent" and info.value.rpc_code == -32602
    assert len(client.query({"dataset": "raw", "table": "raw_objects"})) == 3
    view = "CREATE OR REPLACE VIEW derived.ok AS SELECT idem_key FROM raw.raw_objects"
    client.execute_plan(make_plan([("bq.execute", {"sql": view})], {}))
    assert len(client.sql("SELECT * FROM derived.ok")) == 3


# -- bounded work ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELECT list(range) FROM range(200000000)", "resource_exhausted"),
        ("SELECT count(*) AS c FROM range(100000000000) a", "query_timeout"),
        ("SELECT * FROM range(5000)", "result_too_large"),
    ],
)
def test_runaway_queries_are_stopped_and_the_server_stays_up(
    served: Served, client: StoracleClient, sql: str, code: str
) -> None:
    started = time.monotonic()
    with pytest.raises(StoracleError) as info:
        client.sql(sql)
    assert info.value.data["code"] == code and info.value.classification == "permanent"
    assert time.monotonic() - started < 30
    assert served.proc.poll() is None and client.health()["status"] == "ok"


# -- error classes and no PHI ---------------------------------------------------------------


def test_bad_client_input_is_invalid_params_naming_the_field(client: StoracleClient) -> None:
    client.execute_plan(make_plan([upsert(raw(1))], {}))
    with pytest.raises(StoracleError, match="no_such_column") as info:
        client.query({"dataset": "raw", "table": "raw_objects", "filters": {"no_such_column": 1}})
    assert info.value.rpc_code == -32602
    with pytest.raises(StoracleError, match="limit") as info:
        client.query({"dataset": "raw", "table": "raw_objects", "limit": 10**19})
    assert info.value.rpc_code == -32602


def test_planted_values_never_reach_errors(client: StoracleClient) -> None:
    """A client name in a timestamp field, a filter, a table's column and a SQL literal."""
    attempts = [
        lambda: client.execute_plan(make_plan([upsert(raw(1, last_seen=MARKER))], {})),
        lambda: client.execute_plan(make_plan([upsert(raw(1, first_seen={"x": MARKER}))], {})),
        lambda: client.execute_plan(make_plan([upsert([{"idem_key": MARKER, MARKER: 1}])], {})),
        lambda: client.query(
            {"dataset": "raw", "table": "raw_objects", "filters": {"last_seen": MARKER}}
        ),
        lambda: client.sql(f"SELECT CAST('{MARKER}' AS TIMESTAMP) AS t"),
        lambda: client.sql(f"SELECT CAST('{MARKER}' AS INTEGER) AS t"),
    ]
    client.execute_plan(make_plan([upsert(raw(1))], {}))
    for n, attempt in enumerate(attempts):
        with pytest.raises(StoracleError, match=".") as info:
            attempt()
        text = f"{info.value} {info.value.data}"
        assert MARKER not in text and "Quinterro" not in text, (n, text)


# -- crash hygiene --------------------------------------------------------------------------


def _vault_plan(n: int, version: int) -> list[tuple[str, dict]]:
    files = [
        ("file.write", {"path": f"clients/c{i}/note.md", "content": f"v{version} " + "x" * 2000})
        for i in range(n)
    ]
    return [upsert(raw(n, source_system=f"v{version}")), *files]


def test_kill_9_during_submits_then_rerun_loses_and_leaves_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    n, kills, interrupted = 600, 3, 0
    for k in range(kills):
        s = start(home)
        body = make_plan(_vault_plan(n, k), {}).model_dump()
        envelope = {"jsonrpc": "2.0", "id": 1, "method": "storacle.execute_plan",
                    "params": {"_meta": {}, "payload": body}}  # fmt: skip
        sender = subprocess.Popen(
            [sys.executable, "-c", _SENDER, s.url, s.token],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert sender.stdin is not None
        sender.stdin.write(json.dumps(envelope).encode())
        sender.stdin.close()
        time.sleep(0.15 + 0.1 * k)  # mid-plan: staging, warehouse or file renames
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(timeout=10)
        interrupted += sender.wait(timeout=30) == 9
    with serving(home) as s:
        client = StoracleClient(HttpTransport(s.url, token=s.token))
        last = _vault_plan(n, kills)
        client.execute_plan(make_plan(last, {}))
        again = client.execute_plan(make_plan(last, {}))
        rows = client.query({"dataset": "raw", "table": "raw_objects"})
    assert interrupted == kills, "a kill came after the submit had finished"
    assert len(rows) == n and len({r["idem_key"] for r in rows}) == n
    assert {r["source_system"] for r in rows} == {f"v{kills}"}
    assert all(r["result"]["unchanged"] == 1 for r in again["results"][1:])
    vault = home / "vault"
    assert not list(vault.rglob(".tmp-*")), "temp files of the killed writes are left"
    notes = sorted(vault.glob("clients/*/note.md"))
    assert len(notes) == n and all(p.read_text().startswith(f"v{kills} ") for p in notes)


_SENDER = """
import sys, httpx
url, token = sys.argv[1], sys.argv[2]
try:
    httpx.post(url + '/rpc', content=sys.stdin.buffer.read(), timeout=60,
               headers={'authorization': 'Bearer ' + token, 'content-type': 'application/json'})
except httpx.HTTPError:
    sys.exit(9)  # the server died with the request in flight
"""


def test_orphan_temp_files_are_swept_on_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = home / "vault" / "clients" / "c1"
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = folder / f".tmp-{dead.pid}-abc"
    orphan.write_text("a note of a killed write")
    old = folder / ".tmp-legacy"
    old.write_text("x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    live = folder / f".tmp-{os.getpid()}-inflight"  # a writer that is still running
    live.write_text("y")
    with serving(home):
        pass
    assert not orphan.exists() and not old.exists() and live.exists()

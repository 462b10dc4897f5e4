"""JSON-RPC 2.0 boundary: standard error codes, classification, bounded requests."""

from __future__ import annotations

import json

import pytest

from lorchestra_dagster.storacle.plan import make_plan
from lorchestra_dagster.storacle.rpc import Dispatcher
from lorchestra_dagster.storacle.service import StoracleService

pytestmark = pytest.mark.unit


@pytest.fixture
def dispatcher(service: StoracleService) -> Dispatcher:
    return Dispatcher(service, max_bytes=4096)


def call(d: Dispatcher, raw) -> dict:
    out = d.handle(raw)
    assert out is not None
    json.dumps(out)  # always JSON-serialisable
    return out


def err(out: dict) -> tuple[int, str]:
    assert "result" not in out, out
    return out["error"]["code"], out["error"]["data"]["classification"]


@pytest.mark.parametrize(
    "raw", [b"{not json", b"\xff\xfe\x00", b"", b'{"jsonrpc": "2.0", "method": "storacle.health", ']
)
def test_parse_error(dispatcher: Dispatcher, raw: bytes) -> None:
    out = call(dispatcher, raw)
    assert err(out) == (-32700, "permanent") and out["id"] is None


@pytest.mark.parametrize(
    "req",
    [
        "42",
        '"a string"',
        "null",
        "[]",
        '[{"jsonrpc": "2.0", "id": 1, "method": "storacle.health"}]',
        '{"id": 1, "method": "storacle.health"}',
        '{"jsonrpc": "1.0", "id": 1, "method": "storacle.health"}',
        '{"jsonrpc": "2.0", "id": 1, "method": 7}',
        '{"jsonrpc": "2.0", "id": {"x": 1}, "method": "storacle.health"}',
        '{"jsonrpc": "2.0", "id": 1, "method": "storacle.health", "extra": true}',
    ],
)
def test_invalid_request(dispatcher: Dispatcher, req: str) -> None:
    assert err(call(dispatcher, req.encode()))[0] == -32600


def test_unknown_method(dispatcher: Dispatcher) -> None:
    out = call(dispatcher, {"jsonrpc": "2.0", "id": "a", "method": "storacle.drop_all"})
    assert err(out) == (-32601, "permanent") and out["id"] == "a"


@pytest.mark.parametrize(
    "method,params",
    [
        ("storacle.execute_plan", {}),
        ("storacle.execute_plan", {"payload": {"plan_id": 5}}),
        ("storacle.execute_plan", {"_meta": {"dry_run": "maybe"}, "payload": {}}),
        ("storacle.query", {"dataset": "raw"}),
        ("storacle.query", {"dataset": "raw", "table": "raw_objects", "limit": "ten"}),
        ("storacle.query", {"dataset": "raw", "table": "raw_objects", "bogus": 1}),
        ("storacle.query", ["positional"]),
        ("storacle.sql", {"sql": 1}),
        ("storacle.sql", {"sql": "DROP TABLE raw.raw_objects"}),
    ],
)
def test_invalid_params(dispatcher: Dispatcher, method: str, params) -> None:
    out = call(dispatcher, {"jsonrpc": "2.0", "id": 3, "method": method, "params": params})
    assert err(out) == (-32602, "permanent"), out


def test_op_with_wrong_param_types_applies_nothing(dispatcher: Dispatcher) -> None:
    good = ("file.write", {"path": "a.md", "content": "x"})
    plan = make_plan([good], {})
    bad = plan.model_dump(mode="json")
    bad["ops"].append(
        {
            "jsonrpc": "2.0",
            "id": "x:1",
            "method": "bq.upsert",
            "params": {"dataset": "raw", "table": "t", "key_columns": "k", "rows": 1},
        }
    )
    bad["ops"].append({"jsonrpc": "2.0", "id": "x:2", "method": "bq.nuke", "params": {}})
    out = call(
        dispatcher,
        {"jsonrpc": "2.0", "id": 1, "method": "storacle.execute_plan", "params": {"payload": bad}},
    )
    results = out["result"]["results"]
    assert results[0]["error"]["data"]["reason"] == "not_applied"
    assert results[1]["error"]["code"] == -32602
    assert "key_columns" in results[1]["error"]["message"]
    assert "rows" in results[1]["error"]["message"]
    assert results[2]["error"]["code"] == -32601
    assert not dispatcher.service.settings.vault_dir.exists()


def test_oversize_request_is_refused(dispatcher: Dispatcher) -> None:
    big = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "storacle.health", "params": {"pad": "x" * 5000}}
    )
    out = call(dispatcher, big.encode())
    assert err(out)[0] == -32600 and "too large" in out["error"]["message"]


def test_notification_gets_no_response(dispatcher: Dispatcher) -> None:
    assert dispatcher.handle(b'{"jsonrpc": "2.0", "method": "storacle.health"}') is None


def test_health_and_success_envelope(dispatcher: Dispatcher) -> None:
    out = call(dispatcher, b'{"jsonrpc": "2.0", "id": 9, "method": "storacle.health"}')
    assert out["jsonrpc"] == "2.0" and out["id"] == 9 and out["result"]["status"] == "ok"


def test_execute_plan_result_shape(dispatcher: Dispatcher) -> None:
    plan = make_plan([("wal.append", {"table": "j", "rows": [{"a": 1}]})], {"run_id": "r"})
    out = call(
        dispatcher,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "storacle.execute_plan",
            "params": {
                "_meta": {"dry_run": True, "caller": "t"},
                "payload": plan.model_dump(mode="json"),
            },
        },
    )
    assert out["result"]["plan_id"] == plan.plan_id and out["result"]["dry_run"] is True
    [one] = out["result"]["results"]
    assert one["id"] == plan.ops[0].id
    assert set(one["result"]) >= {
        "method",
        "dataset",
        "table",
        "rows",
        "inserted",
        "updated",
        "unchanged",
        "deleted",
    }

"""Plan ids are content hashes: same ops -> same id, meta never matters."""

from __future__ import annotations

import pytest

from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.storacle.plan import PLAN_METHODS, PLAN_VERSION, Plan, make_plan

pytestmark = pytest.mark.unit

OPS = [
    ("bq.upsert", {"dataset": "raw", "table": "t", "key_columns": ["k"], "rows": [{"k": 1}]}),
    ("file.write", {"path": "a.md", "content": "x"}),
]


def test_same_ops_same_id_whatever_the_meta() -> None:
    a = make_plan(OPS, {"run_id": "r1", "correlation_id": "c1"})
    b = make_plan([(m, dict(reversed(list(p.items())))) for m, p in OPS], {"run_id": "r2"})
    assert a.plan_id == b.plan_id
    assert len(a.plan_id) == 64
    assert [op.id for op in a.ops] == [f"{a.plan_id[:12]}:0", f"{a.plan_id[:12]}:1"]
    assert a.plan_version == PLAN_VERSION and a.jsonrpc == "2.0"
    assert a.meta.run_id == "r1"


def test_different_rows_different_id() -> None:
    other = [("bq.upsert", {**OPS[0][1], "rows": [{"k": 2}]}), OPS[1]]
    assert make_plan(OPS, {}).plan_id != make_plan(other, {}).plan_id


def test_plan_round_trips_through_json() -> None:
    plan = make_plan(OPS, {"job_id": "j", "extra_key": 1})
    again = Plan.model_validate_json(plan.model_dump_json())
    assert again == plan
    assert again.row_count == 1


def test_unknown_method_is_refused() -> None:
    with pytest.raises(PermanentError, match="unknown plan method 'bq.delete'"):
        make_plan([("bq.delete", {})], {})
    assert "wal.append" in PLAN_METHODS and len(PLAN_METHODS) == 7

"""Plan ids are content hashes: same ops -> same id, meta never matters."""

from __future__ import annotations

import datetime as dt
import hashlib

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


def test_the_id_is_sha256_of_the_canonical_bytes_of_the_ops() -> None:
    """The contract (docs/architecture.md): compact JSON, sorted keys, no meta. Pinned, so
    a change of the form (which changes every plan id) is a decision, not an accident."""
    canonical = (
        b'[["bq.upsert",{"dataset":"raw","key_columns":["k"],"rows":[{"k":1}],"table":"t"}],'
        b'["file.write",{"content":"x","path":"a.md"}]]'
    )
    plan = make_plan(OPS, {"run_id": "r"})
    assert plan.plan_id == hashlib.sha256(canonical).hexdigest()
    assert plan.plan_id == "d152056f114a9d67b35ec37a8da5f6085463ef9f7fb9260813207c469315c2b1"


def test_datetimes_and_integers_beyond_64_bits_hash_deterministically() -> None:
    def ops(moment: dt.datetime, big: int) -> list[tuple[str, dict[str, object]]]:
        row = {"k": "a", "n": big, "ts": moment}
        return [("bq.insert", {"dataset": "raw", "table": "t", "rows": [row]})]

    naive, aware = dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    # A naive datetime is taken as UTC, as everywhere at the storage boundary.
    assert make_plan(ops(naive, 1), {}).plan_id == make_plan(ops(aware, 1), {}).plan_id
    # orjson refuses integers beyond 64 bits; the stdlib form takes over, the same each time.
    big = make_plan(ops(naive, 2**70), {}).plan_id
    assert big == make_plan(ops(naive, 2**70), {}).plan_id
    assert big != make_plan(ops(naive, 2**70 + 1), {}).plan_id


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

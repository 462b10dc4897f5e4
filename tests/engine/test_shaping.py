"""plan.build row shaping follows the documented order and fails loudly on bad items."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lorchestra_dagster.engine.shaping import build_ops, chunks, parse_source_ts, shape_rows
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.spec.params import PlanBuildParams

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def build(**params):
    """plan.build's params model, as the handler receives it (items apart)."""
    return PlanBuildParams(items=[], **params)


INGEST = build(
    **{
        "method": "bq.upsert",
        "dataset": "raw",
        "table": "raw_objects",
        "key_columns": ["idem_key"],
        "payload_wrap": True,
        "id_field": "id",
        "field_defaults": {
            "source_system": "stripe",
            "connection_name": "stripe-main",
            "object_type": "customer",
        },
        "auto_external_id": True,
        "auto_timestamp_columns": ["first_seen", "last_seen"],
        "skip_update_columns": ["first_seen"],
        "source_ts_field": "created",
    }
)


def test_ingest_row_shape_and_idem_key():
    rows = shape_rows(
        [{"id": "cus_1", "created": 1764396000}], INGEST, correlation_id="run1", now=NOW
    )
    assert rows == [
        {
            "payload": {"id": "cus_1", "created": 1764396000},
            "external_id": "cus_1",
            "source_system": "stripe",
            "connection_name": "stripe-main",
            "object_type": "customer",
            "first_seen": NOW.isoformat(),
            "last_seen": NOW.isoformat(),
            "correlation_id": "run1",
            "idem_key": "stripe:stripe-main:customer:cus_1",
            "source_ts": "2025-11-29T06:00:00+00:00",
        }
    ]


def test_suffix_after_idem_key_then_field_map_then_allowlist():
    params = build(
        method="bq.upsert",
        idem_key_suffix="email_jmap_lite",
        field_map={"subject": "payload.subject"},
        fields=["idem_key", "subject", "correlation_id"],
    )
    items = [{"idem_key": "gmail:a:email:1", "payload": {"subject": "hello"}}]
    rows = shape_rows(items, params, correlation_id="r", now=NOW)
    assert rows == [
        {"idem_key": "gmail:a:email:1#email_jmap_lite", "subject": "hello", "correlation_id": "r"}
    ]


def test_existing_correlation_id_and_defaults_are_kept():
    params = build(method="bq.upsert", field_defaults={"object_type": "x"})
    rows = shape_rows(
        [{"correlation_id": "upstream", "object_type": "y"}], params, correlation_id="r", now=NOW
    )
    assert rows[0]["correlation_id"] == "upstream"
    assert rows[0]["object_type"] == "y"


def test_missing_id_is_an_error_naming_the_item():
    with pytest.raises(PermanentError, match="item 1 has no id"):
        shape_rows([{"id": "a"}, {"name": "no id"}], INGEST, correlation_id="r", now=NOW)


def test_id_field_without_source_columns_is_an_error():
    with pytest.raises(PermanentError, match="field_defaults"):
        shape_rows([{"id": "a"}], build(method="bq.upsert", id_field="id"), correlation_id="r")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1764396000, "2025-11-29T06:00:00+00:00"),
        ("1764396000000", "2025-11-29T06:00:00+00:00"),
        ("2025-11-29T06:00:00Z", "2025-11-29T06:00:00+00:00"),
        ("2025-11-29T07:00:00+01:00", "2025-11-29T06:00:00+00:00"),
        (None, None),
    ],
)
def test_source_ts_formats(value, expected):
    assert parse_source_ts(value) == expected


def test_source_ts_garbage_is_an_error():
    with pytest.raises(PermanentError, match="not ISO-8601"):
        parse_source_ts("yesterday")


def test_chunks_split_batches():
    assert [len(c) for c in chunks(list(range(12)), 5)] == [5, 5, 2]


def test_build_ops_per_method():
    up = build_ops([{"idem_key": "a"}], INGEST)
    assert up[0][0] == "bq.upsert"
    assert up[0][1]["volatile_columns"] == ["first_seen", "last_seen", "correlation_id"]
    files = build_ops([{"path": "a.md", "content": "x"}], build(method="file.write"))
    assert files == [("file.write", {"path": "a.md", "content": "x", "encoding": "utf-8"})]
    views = build_ops([{"sql": "CREATE VIEW a AS SELECT 1"}], build(method="bq.execute"))
    assert views[0][1]["dialect"] == "bigquery"
    with pytest.raises(PermanentError, match="needs 'path'"):
        build_ops([{"content": "x"}], build(method="file.write"))
    with pytest.raises(PermanentError, match="unknown plan method"):
        build_ops([], build(method="bq.merge"))

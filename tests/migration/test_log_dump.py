"""The original's ``log.dump`` debug job runs unchanged, and records shapes instead of values.

The original wrote the queried items to ``file`` as clear JSON (client data under /tmp).
Here the step keeps counts, dotted field names with the types seen, keys and hashes, on
its step record and in ``file`` (0600); a value planted in the payload is in neither.
"""

from __future__ import annotations

import json
import stat

import pytest
from kit import upsert_job
from migration_kit import issues_of, services_for, write_catalog

from lorchestra_dagster.engine import execute_with
from lorchestra_dagster.engine.handlers import describe_items

pytestmark = pytest.mark.e2e

PLANTED = "Zebulon Quartermaine"

#: The original's debug job, in its own shape (columns with TO_JSON_STRING, a key filter,
#: JSON columns parsed, the dump to a file).
DEBUG_JOB = """\
job_id: debug_query_record
version: '2.0'
steps:
- step_id: query
  op: storacle.query
  params:
    dataset: raw
    table: raw_objects
    columns:
    - idem_key
    - 'LENGTH(TO_JSON_STRING(payload)) as payload_size'
    - payload
    filters:
      idem_key: 'gmail:acct2:email:17524bcb06f2d38d'
    parse_json_columns:
    - payload
- step_id: dump
  op: log.dump
  params:
    items: '@run.query.items'
    file: '{file}'
"""

SEED = upsert_job("seed_raw", "raw", "raw_objects")


def _rows():
    return [
        {
            "idem_key": key,
            "source_system": "gmail",
            "connection_name": "acct2",
            "object_type": "email",
            "external_id": key.rsplit(":", 1)[1],
            "payload": {"from": {"name": PLANTED, "email": "zq@example.org"}, "labels": ["INBOX"]},
        }
        for key in ("gmail:acct2:email:17524bcb06f2d38d", "gmail:acct2:email:0000000000000001")
    ]


def test_the_original_debug_job_runs_and_keeps_no_value(tmp_path, _isolated_home):
    target = tmp_path / "out" / "bad_record.json"
    cat = write_catalog(
        tmp_path / "jobs",
        {
            "debug/debug_query_record.yaml": DEBUG_JOB.replace("{file}", str(target)),
            "ingest/seed_raw.yaml": SEED,
        },
    )
    assert issues_of(cat, "debug/debug_query_record.yaml") == []
    with services_for(cat, _isolated_home) as svc:
        seeded = execute_with({"job_id": "seed_raw", "payload": {"rows": _rows()}}, svc)
        assert seeded.status == "succeeded", seeded.error_message()
        res = execute_with({"job_id": "debug_query_record"}, svc)
    assert res.status == "succeeded", res.error_message()
    dump = next(s for s in res.steps if s.step_id == "dump")
    assert dump.shape is not None and dump.shape["count"] == 1
    fields = dump.shape["fields"]
    assert fields["payload.from.name"] == {"str": 1}
    assert fields["payload.labels"] == {"list": 1}
    assert fields["payload_size"] == {"int": 1}
    [line] = dump.shape["items"]
    assert line["idem_key"] == "gmail:acct2:email:17524bcb06f2d38d"
    assert len(line["sha256"]) == 12 and line["json_chars"] > 20
    written = json.loads(target.read_text())
    assert written["count"] == 1 and written["fields"] == fields
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    for text in (target.read_text(), res.model_dump_json()):
        assert PLANTED not in text and "zq@example.org" not in text


def test_a_dry_run_writes_no_file(tmp_path, _isolated_home):
    target = tmp_path / "dry.json"
    cat = write_catalog(
        tmp_path / "jobs",
        {
            "debug/debug_query_record.yaml": DEBUG_JOB.replace("{file}", str(target)),
            "ingest/seed_raw.yaml": SEED,
        },
    )
    with services_for(cat, _isolated_home) as svc:
        res = execute_with({"job_id": "debug_query_record", "dry_run": True}, svc)
    assert res.status == "succeeded", res.error_message()
    assert not target.exists()


@pytest.mark.unit
def test_the_description_counts_types_and_hashes_without_values():
    items = [
        {"idem_key": "k1", "payload": {"a": 1, "b": [{"c": "x"}]}},
        {"idem_key": "k2", "payload": {"a": None}},
        "not a dict",
    ]
    shape = describe_items(items, sample=2)
    assert shape["count"] == 3
    assert shape["fields"]["payload.a"] == {"int": 1, "null": 1}
    assert shape["fields"]["payload.b[].c"] == {"str": 1}
    assert shape["fields"]["(item)"] == {"str": 1}
    assert [line["idem_key"] for line in shape["items"]] == ["k1", "k2"]
    # the same item hashes the same; a changed value changes the hash
    again = describe_items([{"idem_key": "k1", "payload": {"a": 1, "b": [{"c": "y"}]}}])
    assert again["items"][0]["sha256"] != shape["items"][0]["sha256"]
    assert describe_items(items[:1])["items"][0]["sha256"] == shape["items"][0]["sha256"]
    assert "x" not in json.dumps(shape["fields"]) and "not a dict" not in json.dumps(shape)


@pytest.mark.unit
def test_a_non_list_is_a_clear_error(tmp_path, _isolated_home):
    cat = write_catalog(
        tmp_path / "jobs",
        {
            "debug/dump_one.yaml": (
                "job_id: dump_one\nversion: '2.0'\nsteps:\n"
                "- step_id: dump\n  op: log.dump\n  params: {items: '@payload.thing'}\n"
            )
        },
    )
    with services_for(cat, _isolated_home) as svc:
        res = execute_with({"job_id": "dump_one", "payload": {"thing": {"a": PLANTED}}}, svc)
    assert res.status == "failed"
    assert "items: Input should be a valid list" in res.error_message()  # LogDumpParams says
    assert PLANTED not in res.model_dump_json()

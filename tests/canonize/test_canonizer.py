"""The canonizer callable and the transform registry on a temp catalog."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from kit import write_transform

from lorchestra_dagster.callables import CallContext, get_callable
from lorchestra_dagster.callables.jsonata_engine import (
    base64url_decode,
    compile_expression,
    html_to_markdown,
    iso_utc,
    parse_addresses,
)
from lorchestra_dagster.callables.transforms import load_transform, transform_ids
from lorchestra_dagster.errors import PermanentError

pytestmark = pytest.mark.unit

REPO_CATALOG = Path(__file__).resolve().parents[2] / "jobs"
TID = "demo/thing_to_widget@1.0.0"
EXPR = '(kind = "skip") ? null : {"widget_id": $string(id), "label": $uppercase(name)}'


def _write_catalog(root: Path, expr: str = EXPR, checksum: str | None = None) -> Path:
    schemas = {
        "iglu:com.demo/thing/jsonschema/1-0-0": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "integer"}},
        },
        "iglu:org.canonical/widget/jsonschema/1-0-0": {
            "type": "object",
            "additionalProperties": False,
            "required": ["widget_id", "label"],
            "properties": {"widget_id": {"type": "string"}, "label": {"type": "string"}},
        },
    }
    return write_transform(root, TID, expr, schemas, checksum=checksum, meta="tests: []\n")


def _ctx(catalog: Path) -> CallContext:
    return CallContext(catalog_dir=catalog, home=catalog / "home", env={})


def _row(n: int, **payload) -> dict:
    return {
        "idem_key": f"demo:main:thing:{n}",
        "source_system": "demo",
        "connection_name": "main",
        "object_type": "thing",
        "correlation_id": "run-1",
        "payload": {"id": n, "name": f"thing {n}", **payload},
    }


def test_canonizer_passes_identity_through_and_skips_null(tmp_path):
    _write_catalog(tmp_path)
    rows = [_row(1), _row(2, kind="skip"), {**_row(3), "payload": json.dumps(_row(3)["payload"])}]
    out = get_callable("canonizer")(
        {"source_type": "demo", "items": rows, "config": {"transform_id": TID}}, _ctx(tmp_path)
    )
    assert out["stats"] == {"input": 3, "output": 2, "skipped": 1, "errors": 0}
    assert out["items"][0] == {
        "idem_key": "demo:main:thing:1",
        "source_system": "demo",
        "connection_name": "main",
        "object_type": "thing",
        "correlation_id": "run-1",
        "payload": {"widget_id": "1", "label": "THING 1"},
    }
    assert out["items"][1]["payload"]["widget_id"] == "3"


def test_checksum_mismatch_refuses_to_run_and_names_the_file(tmp_path):
    folder = _write_catalog(tmp_path, checksum="0" * 64)
    with pytest.raises(PermanentError) as err:
        get_callable("canonizer")(
            {"items": [_row(1)], "config": {"transform_id": TID}}, _ctx(tmp_path)
        )
    assert err.value.code == "E_CHECKSUM"
    assert err.value.file == str(folder / "spec.jsonata")
    assert "checksum mismatch" in str(err.value)


def test_edit_after_load_is_caught(tmp_path):
    folder = _write_catalog(tmp_path)
    load_transform(tmp_path, TID)
    (folder / "spec.jsonata").write_text(EXPR + " ")  # size changes: fingerprint changes
    with pytest.raises(PermanentError, match="checksum mismatch"):
        load_transform(tmp_path, TID)


def test_schema_invalid_output_is_counted_and_fails_without_leaking_payload(tmp_path):
    expr = '{"widget_id": $string(id), "label": name, "secret": name}'
    _write_catalog(tmp_path, expr=expr)
    rows = [_row(1, name="Jane Secret")]
    rows[0]["payload"]["name"] = "Jane Secret"
    with pytest.raises(PermanentError) as err:
        get_callable("canonizer")({"items": rows, "config": {"transform_id": TID}}, _ctx(tmp_path))
    message = str(err.value)
    assert "1 of 1 records failed" in message
    assert "demo:main:thing:1" in message and "output_schema" in message
    assert "additionalProperties" in message and "['secret']" in message
    assert "Jane" not in message


def test_invalid_input_is_counted(tmp_path):
    _write_catalog(tmp_path)
    bad = _row(1)
    bad["payload"]["id"] = "not-an-int"
    out = get_callable("canonizer")(
        {"items": [bad, _row(2)], "config": {"transform_id": TID, "error_budget": 1}},
        _ctx(tmp_path),
    )
    assert out["stats"] == {"input": 2, "output": 1, "skipped": 0, "errors": 1}
    assert out["failures"] == [
        {"idem_key": "demo:main:thing:1", "stage": "input_schema", "error": "$.id fails 'type'"}
    ]


def test_error_budget(tmp_path):
    _write_catalog(tmp_path)
    rows = [_row(i) for i in range(5)]
    for r in rows[:2]:
        r["payload"]["id"] = "x"
    call = get_callable("canonizer")
    with pytest.raises(PermanentError, match="2 of 5 records failed"):
        call({"items": rows, "config": {"transform_id": TID, "error_budget": 1}}, _ctx(tmp_path))
    out = call({"items": rows, "config": {"transform_id": TID, "error_budget": 2}}, _ctx(tmp_path))
    assert out["stats"]["errors"] == 2 and out["stats"]["output"] == 3


def test_wrong_source_type_is_a_record_failure(tmp_path):
    _write_catalog(tmp_path)
    with pytest.raises(PermanentError, match="source_type"):
        get_callable("canonizer")(
            {"source_type": "gmail", "items": [_row(1)], "config": {"transform_id": TID}},
            _ctx(tmp_path),
        )


def test_unknown_transform_and_missing_config(tmp_path):
    _write_catalog(tmp_path)
    call = get_callable("canonizer")
    with pytest.raises(PermanentError, match="unknown transform 'demo/nope@1.0.0'"):
        call({"items": [], "config": {"transform_id": "demo/nope@1.0.0"}}, _ctx(tmp_path))
    with pytest.raises(PermanentError, match="transform_id is required"):
        call({"items": []}, _ctx(tmp_path))


def test_jsonata_syntax_error_names_the_file(tmp_path):
    expr = '{"a": '
    folder = _write_catalog(tmp_path, expr=expr)
    with pytest.raises(PermanentError) as err:
        load_transform(tmp_path, TID)
    assert err.value.file == str(folder / "spec.jsonata")


def test_transform_ids_of_the_shipped_catalog():
    ids = transform_ids(REPO_CATALOG)
    assert "email/gmail_to_jmap_lite@1.0.0" in ids
    assert all("@" in i and i.count("/") == 1 for i in ids)
    assert transform_ids(REPO_CATALOG / "nowhere") == set()


def test_shipped_canonize_jobs_reference_real_transforms():
    import yaml

    ids = transform_ids(REPO_CATALOG)
    jobs = sorted((REPO_CATALOG / "canonize").glob("*.yaml"))
    assert len(jobs) >= 13
    for path in jobs:
        job = yaml.safe_load(path.read_text())
        steps = {s["step_id"]: s for s in job["steps"]}
        tid = steps["canonize"]["params"]["config"]["transform_id"]
        assert tid in ids, path
        suffix = steps["persist"]["params"]["idem_key_suffix"]
        assert steps["read"]["params"]["incremental"]["join_key_suffix"] == suffix
        assert steps["persist"]["params"]["field_defaults"]["transform_ref"] == tid


def test_expressions_compile_once_and_work_across_threads(tmp_path):
    folder = _write_catalog(tmp_path)
    shutil.copytree(folder, tmp_path / "copy")  # same text elsewhere: same cache entry
    t = load_transform(tmp_path, TID)
    assert compile_expression(EXPR) is compile_expression(EXPR)
    results: list = []

    def work():
        results.append(t.apply({"id": 7, "name": "x"}))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [{"widget_id": "7", "label": "X"}] * 4


@pytest.mark.parametrize("engine", ["jsonatapy", "jsonata-python"])
def test_extension_functions_in_both_engines(engine):
    expr = compile_expression(
        '{"md": $htmlToMarkdown(h), "txt": $base64urlDecode(b), "who": $parseAddresses(f),'
        ' "at": $isoUtc(d), "none": $isoUtc(missing)}',
        engine,
    )
    out = expr.evaluate(
        {
            "h": "<h2>Plan</h2><p>Walk <em>daily</em></p><ul><li>a</li><li>b</li></ul>",
            "b": "SGVsbG8sIHdvcmxkIQ",  # unpadded base64url
            "f": '"Doe, Jane" <jane@example.org>, bob@example.org',
            "d": "2026-03-01T10:00:00.1234567+02:00",
        }
    )
    assert out == {
        "md": "## Plan\n\nWalk *daily*\n\n- a\n- b",
        "txt": "Hello, world!",
        "who": [
            {"name": "Doe, Jane", "email": "jane@example.org"},
            {"name": None, "email": "bob@example.org"},
        ],
        "at": "2026-03-01T08:00:00.123Z",
        "none": None,
    }


def test_helpers_directly():
    assert html_to_markdown(None) is None
    assert base64url_decode("aGk-") is not None
    assert parse_addresses("") == []
    assert iso_utc("Tue, 17 Feb 2026 08:43:11 -0500") == "2026-02-17T13:43:11.000Z"
    with pytest.raises(ValueError):
        iso_utc("yesterday-ish")

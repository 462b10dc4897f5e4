"""Registry checks for ``lorchestra validate``: every problem found in one pass."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kit import JOBS as CATALOG

from lorchestra_dagster.callables.transforms import catalog_problems as transform_problems
from lorchestra_dagster.errors import PermanentError
from lorchestra_dagster.instruments.registry import catalog_problems, load_bindings

pytestmark = pytest.mark.unit


def test_shipped_catalog_is_clean():
    assert catalog_problems(CATALOG) == []
    assert transform_problems(CATALOG) == []


def test_instrument_and_binding_problems_are_all_reported(tmp_path):
    shutil.copytree(CATALOG / "instruments", tmp_path / "instruments")
    shutil.copytree(CATALOG / "bindings", tmp_path / "bindings")
    gad = tmp_path / "instruments" / "gad7.yaml"
    gad.write_text(
        gad.read_text().replace("{min: 5, max: 9, code: mild", "{min: 6, max: 9, code: mild")
    )
    followup = tmp_path / "bindings" / "followup.yaml"
    followup.write_text(
        followup.read_text().replace(
            "instrument: pss_10, item: 10}", "instrument: pss_10, item: 11}"
        )
    )
    dup = tmp_path / "bindings" / "intake_01_copy.yaml"
    dup.write_text(
        (tmp_path / "bindings" / "intake_01.yaml")
        .read_text()
        .replace("binding_id: intake_01", "binding_id: intake_01_copy")
    )
    problems = catalog_problems(tmp_path)
    by_file: dict[str, str] = {}
    for p in problems:
        by_file[Path(p["file"]).name] = by_file.get(Path(p["file"]).name, "") + p["message"] + "\n"
    assert "gap or overlap" in by_file["gad7.yaml"]
    assert "pss_10 item 11 does not exist" in by_file["followup.yaml"]
    assert "bound twice" in by_file["intake_01_copy.yaml"]
    with pytest.raises(PermanentError):
        load_bindings(tmp_path)


def test_transform_problems_are_all_reported(tmp_path):
    shutil.copytree(CATALOG / "transforms", tmp_path / "transforms")
    shutil.copytree(CATALOG / "schemas", tmp_path / "schemas")
    gm = tmp_path / "transforms" / "email" / "gmail_to_jmap_lite" / "1.0.0"
    (gm / "spec.jsonata").write_text((gm / "spec.jsonata").read_text() + "\n")
    shutil.rmtree(tmp_path / "schemas" / "com.stripe" / "refund")
    (
        tmp_path
        / "transforms"
        / "note"
        / "jsonl_note_to_note"
        / "1.0.0"
        / "tests"
        / "note.expected.json"
    ).unlink()
    messages = sorted(p["message"] for p in transform_problems(tmp_path))
    assert len(messages) == 3
    assert any("checksum mismatch" in m for m in messages)
    assert any("schema iglu:com.stripe/refund/jsonschema/1-0-0 not found" in m for m in messages)
    assert any("tests/note.expected.json not found" in m for m in messages)

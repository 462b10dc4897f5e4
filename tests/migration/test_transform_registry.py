"""The original canonizer's registry format: ``TransformMeta`` fields, ``1-0-0`` version
folders and refs, ``expect`` in golden tests, an empty checksum."""

from __future__ import annotations

import pytest
from registry_kit import EXPECT, INPUT, write_original_transform

from lorchestra_dagster.callables import CallContext, get_callable
from lorchestra_dagster.callables.transforms import (
    catalog_problems,
    load_meta,
    load_transform,
    transform_ids,
)
from lorchestra_dagster.catalog_service import load_report
from lorchestra_dagster.errors import PermanentError

pytestmark = pytest.mark.unit

JOB = """\
job_id: canonize_dataverse_contacts
version: '2.0'
steps:
- step_id: canonize
  op: call
  params:
    callable: canonizer
    source_type: dataverse
    items: []
    config:
      transform_id: {tid}
"""


def test_every_transformmeta_field_loads(tmp_path):
    meta = load_meta(write_original_transform(tmp_path))
    assert meta.runtime == "node" and meta.extensions == [] and meta.status == "stable"
    assert meta.spec_path == "spec.jsonata"
    assert meta.provenance is not None and meta.provenance.author.startswith("A Clinician")
    assert meta.compat is not None and meta.compat.from_schema_range == ">=1-0-0 <2-0-0"
    assert meta.config_schema == {"properties": {"source_entity": {"type": "string"}}}
    assert [(t.input, t.expected) for t in meta.tests] == [
        ("tests/input.json", "tests/expected.json")
    ]
    assert catalog_problems(tmp_path) == []


@pytest.mark.parametrize("folder", ["2-0-0", "2.0.0"])
@pytest.mark.parametrize("ref", ["2-0-0", "2.0.0"])
def test_both_version_spellings_in_folders_and_refs(tmp_path, folder, ref):
    write_original_transform(tmp_path, version=folder)
    tid = f"contact/dataverse_to_canonical@{ref}"
    assert tid in transform_ids(tmp_path) or tid.replace("-", ".") in transform_ids(tmp_path)
    assert load_transform(tmp_path, tid).apply(INPUT) == EXPECT
    (tmp_path / "canonize").mkdir()
    (tmp_path / "canonize" / "canonize_dataverse_contacts.yaml").write_text(JOB.format(tid=tid))
    assert load_report(tmp_path).errors == []
    out = get_callable("canonizer")(
        {"items": [{"idem_key": "k", "payload": INPUT}], "config": {"transform_id": tid}},
        CallContext(catalog_dir=tmp_path, home=tmp_path / "h", env={}),
    )
    assert out["items"][0]["payload"] == EXPECT


def test_an_empty_checksum_is_a_warning_and_runs_unpinned(tmp_path):
    write_original_transform(tmp_path, checksum="")
    report = load_report(tmp_path)
    assert report.errors == []
    [warning] = [i for i in report.issues if i.code == "L072"]
    assert warning.severity == "warning" and "not pinned" in warning.message
    assert load_transform(tmp_path, "contact/dataverse_to_canonical@2-0-0").apply(INPUT) == EXPECT


def test_a_wrong_checksum_still_refuses(tmp_path):
    write_original_transform(tmp_path, checksum="0" * 64)
    with pytest.raises(PermanentError, match="checksum mismatch"):
        load_transform(tmp_path, "contact/dataverse_to_canonical@2-0-0")


def test_unknown_status_or_runtime_is_reported(tmp_path):
    folder = write_original_transform(tmp_path)
    meta = folder / "spec.meta.yaml"
    meta.write_text(meta.read_text().replace("status: stable", "status: shiny"))
    [problem] = catalog_problems(tmp_path)
    assert "status" in problem["message"]

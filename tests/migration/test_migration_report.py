"""scripts/migration_report.py counts clean and failing job/pipeline files of a catalog."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from test_original_catalog import build_catalog

pytestmark = pytest.mark.unit

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "migration_report.py"


def _report_fn():
    spec = importlib.util.spec_from_file_location("migration_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.report


def test_counts_clean_and_failing_files(tmp_path):
    root = build_catalog(tmp_path / "jobs")
    report = _report_fn()
    clean = report(root)
    assert clean["files"] == 16 and clean["clean"] == 16 and clean["failing"] == 0
    (root / "debug").mkdir()
    (root / "debug" / "debug_query_record.yaml").write_text(
        "job_id: debug_query_record\nversion: '2.0'\nsteps:\n"
        "- step_id: dump\n  op: sheets.write_table\n  params: {items: []}\n"
    )
    out = report(root)
    assert (out["files"], out["clean"], out["failing"]) == (17, 16, 1)
    assert out["codes"] == {"L030": 1}
    assert list(out["failures"]) == ["debug/debug_query_record.yaml"]

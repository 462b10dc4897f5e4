"""``lorchestra transforms list|test|run`` on an original-format registry and the shipped one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from registry_kit import EXPECT, INPUT, write_original_transform
from typer.testing import CliRunner

from lorchestra_dagster.cli import app

pytestmark = pytest.mark.unit

REPO_CATALOG = Path(__file__).resolve().parents[2] / "jobs"


def _run(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_list_names_every_transform(tmp_path):
    write_original_transform(tmp_path)
    out = _run("transforms", "list", "--jobs-dir", str(tmp_path), "--json")
    assert out.exit_code == 0, out.output
    [row] = json.loads(out.output)["transforms"]
    assert row["id"] == "contact/dataverse_to_canonical@2.0.0" and row["tests"] == 1


def test_test_passes_on_both_engines_and_prints_the_json_shape(tmp_path):
    write_original_transform(tmp_path)
    out = _run("transforms", "test", "--jobs-dir", str(tmp_path), "--json")
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert body["passed"] == 2 and body["failed"] == 0
    [entry] = body["transforms"]
    assert (entry["id"], entry["version"]) == ("contact/dataverse_to_canonical", "2-0-0")
    assert {t["engine"] for t in entry["tests"]} == {"jsonatapy", "jsonata-python"}
    assert all(t["input"] == "tests/input.json" and t["diff"] == "" for t in entry["tests"])


def test_a_failing_pair_exits_1_with_a_readable_diff(tmp_path):
    write_original_transform(tmp_path, expect={**EXPECT, "name": "Ada Lovelace"})
    out = _run(
        "transforms", "test", "contact/dataverse_to_canonical@2-0-0",
        "--jobs-dir", str(tmp_path), "--engine", "jsonatapy",
    )  # fmt: skip
    assert out.exit_code == 1
    assert '-  "name": "Ada Lovelace"' in out.output and '+  "name": "Ada Byron"' in out.output
    assert "0 passed, 1 failed" in out.output


def test_unknown_id_is_an_error(tmp_path):
    write_original_transform(tmp_path)
    out = CliRunner().invoke(
        app, ["transforms", "test", "nope/x@1.0.0", "--jobs-dir", str(tmp_path)]
    )
    assert out.exit_code == 1 and "unknown transform" in out.output


def test_run_applies_one_transform_to_a_file(tmp_path):
    write_original_transform(tmp_path)
    src = tmp_path / "in.json"
    src.write_text(json.dumps(INPUT))
    out = _run(
        "transforms", "run", "contact/dataverse_to_canonical@2.0.0",
        "--input", str(src), "--jobs-dir", str(tmp_path),
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == EXPECT


def test_the_shipped_registry_passes_every_golden_on_both_engines():
    out = _run("transforms", "test", "--jobs-dir", str(REPO_CATALOG), "--json")
    body = json.loads(out.output)
    assert out.exit_code == 0 and body["failed"] == 0 and body["passed"] > 0
    engines = {t["engine"] for r in body["transforms"] for t in r["tests"]}
    assert engines == {"jsonatapy", "jsonata-python"}

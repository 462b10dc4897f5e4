"""``lorchestra instruments import DIR``: the original finalform's registries as YAML specs.

The source folder is laid out like the original finalform repository
(``measure-registry/measures/<id>/<1-0-0>.json``,
``form-binding-registry/bindings/<id>/<1-0-0>.json``); the written YAML is
loaded back by the catalog and scores like the JSON it came from.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_finalform_aliases_bindings import _aliased, _binding
from test_finalform_registry import _measure, _write
from typer.testing import CliRunner

from lorchestra_dagster.cli import app
from lorchestra_dagster.instruments import load_instruments
from lorchestra_dagster.instruments.registry import catalog_problems, load_bindings
from lorchestra_dagster.instruments.scorer import score

pytestmark = pytest.mark.unit

runner = CliRunner()


def _import(catalog: Path, source: Path, *extra: str):
    return runner.invoke(
        app,
        ["instruments", "import", str(source), "--jobs-dir", str(catalog), *extra],
        env={"LORCHESTRA_JOBS_DIR": str(catalog)},
    )


def _source(tmp_path: Path) -> Path:
    binding = _binding("position", [1, 2, 3])
    src = _write(tmp_path / "finalform", measure=_aliased(), binding=binding)
    # an older version next to the newest: only the newest is imported
    old = src / "measure-registry" / "measures" / "calm3" / "0-9-0.json"
    old.write_text(json.dumps(_measure(version="0.9.0", name="old")))
    return src


def test_import_writes_yaml_specs_that_load_and_score_the_same(tmp_path):
    src, catalog = _source(tmp_path), tmp_path / "jobs"
    res = _import(catalog, src, "--json")
    assert res.exit_code == 0, res.output
    written = json.loads(res.stdout)["written"]
    assert [(w["kind"], w["id"], w["version"], w["replaced"]) for w in written] == [
        ("instrument", "calm3", "1.0.0", False),
        ("binding", "checkin", "1.0.0", False),
    ]
    inst_file = catalog / "instruments" / "calm3.yaml"
    data = yaml.safe_load(inst_file.read_text())
    assert data["code"] == "calm3" and data["scales"][0]["max"] == 6  # numbers, not strings
    assert catalog_problems(catalog) == []
    inst = load_instruments(catalog)["calm3"]
    from_json = load_instruments(src)["calm3"]
    assert inst == from_json
    answers = {1: "a lot", 2: "sometimes", 3: "never"}
    assert score(inst, answers).scales[0].value == score(from_json, answers).scales[0].value == 5
    binding = load_bindings(catalog)["checkin"]
    assert [(q.position, q.item) for q in binding.questions] == [(1, 1), (2, 2), (3, 3)]


def test_import_shows_what_it_wrote(tmp_path):
    res = _import(tmp_path / "jobs", _source(tmp_path))
    assert res.exit_code == 0, res.output
    assert "calm3" in res.stdout and "checkin" in res.stdout and "instrument" in res.stdout


def test_import_refuses_to_overwrite_without_force(tmp_path):
    src, catalog = _source(tmp_path), tmp_path / "jobs"
    assert _import(catalog, src).exit_code == 0
    target = catalog / "instruments" / "calm3.yaml"
    target.write_text(target.read_text().replace("name: Calm-3 (test measure)", "name: edited"))
    res = _import(catalog, src)
    assert res.exit_code == 1
    assert "exists (use --force" in res.output and "nothing written" in res.output
    assert "name: edited" in target.read_text()
    forced = _import(catalog, src, "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert all(w["replaced"] for w in json.loads(forced.stdout)["written"])
    assert "name: edited" not in target.read_text()


def test_an_invalid_spec_writes_nothing(tmp_path):
    bad = _aliased()
    bad["scales"][0]["interpretations"][1]["min"] = 4  # gap between the bands
    binding = _binding("field_key", ["a", "b", "c"])
    src = _write(tmp_path / "finalform", measure=bad, binding=binding)
    catalog = tmp_path / "jobs"
    res = _import(catalog, src)
    assert res.exit_code == 1
    assert "gap or overlap" in res.output and "nothing written" in res.output
    assert not catalog.exists()


def test_a_folder_without_registries_is_refused(tmp_path):
    res = _import(tmp_path / "jobs", tmp_path)
    assert res.exit_code == 1 and "measure-registry" in res.output

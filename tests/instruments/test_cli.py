"""``lorchestra instruments list|score`` through the real typer app."""

from __future__ import annotations

import json
import shutil

import pytest
from kit import JOBS as CATALOG
from typer.testing import CliRunner

from lorchestra_dagster.cli import app

pytestmark = pytest.mark.unit

runner = CliRunner()


def _run(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env={"LORCHESTRA_JOBS_DIR": str(CATALOG), **(env or {})})


def test_list_json():
    res = _run("instruments", "list", "--json")
    assert res.exit_code == 0, res.output
    rows = {r["code"]: r for r in json.loads(res.stdout)}
    assert rows["phq9"]["scales"] == ["phq9_total"]
    assert rows["fscrs"]["items"] == 22


def test_list_table():
    res = _run("instruments", "list")
    assert res.exit_code == 0 and "pss_10" in res.stdout


def test_score_prints_the_documented_shape():
    answers = {str(i): 1 for i in range(1, 9)} | {"9": "Several days", "10": "Somewhat difficult"}
    res = _run("instruments", "score", "phq9", "--answers", json.dumps(answers))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {
        "instrument": "phq9",
        "scales": [
            {
                "code": "phq9_total",
                "value": 9,
                "severity_code": "mild",
                "severity_label": "Mild",
                "missing": 0,
                "prorated": False,
                "crosses_cutoff": False,
            }
        ],
        "flags": [
            {
                "code": "phq9_item9",
                "severity": "critical",
                "message": "PHQ-9 item 9 (thoughts of death or self-harm) answered above "
                "'Not at all'; assess risk.",
                "item": 9,
                "reason": "answered",
            }
        ],
    }


def test_score_prorated_and_jobs_dir_option(tmp_path):
    shutil.copytree(CATALOG / "instruments", tmp_path / "instruments")
    answers = {str(i): 2 for i in range(1, 7)}  # GAD-7 item 7 missing: 12 x 7/6 = 14
    res = runner.invoke(
        app,
        [
            "instruments",
            "score",
            "gad7",
            "--answers",
            json.dumps(answers),
            "--jobs-dir",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    (scale,) = json.loads(res.stdout)["scales"]
    assert (scale["value"], scale["severity_code"], scale["missing"], scale["prorated"]) == (
        14,
        "moderate",
        1,
        True,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bdi", "--answers", "{}"], "unknown instrument 'bdi'"),
        (["phq9", "--answers", '{"1": 7}'], "value 7 out of range"),
        (["phq9", "--answers", '{"1": "often"}'], "unknown response text"),
        (["phq9", "--answers", "{nope"], "not valid JSON"),
        (["phq9", "--answers", "[1, 2]"], "must be a JSON object"),
    ],
)
def test_score_errors_exit_1_with_a_clear_message(args, message):
    res = _run("instruments", "score", *args)
    assert res.exit_code == 1
    assert message in res.stderr
    assert res.stdout == ""

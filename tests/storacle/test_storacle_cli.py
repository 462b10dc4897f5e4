"""`lorchestra sql`: read-only, rich table or JSON rows; `lorchestra storacle` is registered."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lorchestra_dagster.cli import app
from lorchestra_dagster.settings import Settings
from lorchestra_dagster.storacle.client import make_client
from lorchestra_dagster.storacle.plan import make_plan

pytestmark = pytest.mark.unit


@pytest.fixture
def seeded() -> None:
    rows = [{"idem_key": f"k{i}", "source_system": "gmail", "payload": {"i": i}} for i in range(3)]
    op = (
        "bq.upsert",
        {"dataset": "raw", "table": "raw_objects", "key_columns": ["idem_key"], "rows": rows},
    )
    make_client(Settings.from_env()).execute_plan(make_plan([op], {}))


def test_sql_json_output(seeded: None) -> None:
    result = CliRunner().invoke(
        app, ["sql", "SELECT idem_key, source_system FROM raw.raw_objects ORDER BY 1", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"idem_key": f"k{i}", "source_system": "gmail"} for i in range(3)
    ]


def test_sql_table_output(seeded: None) -> None:
    result = CliRunner().invoke(
        app, ["sql", "WITH x AS (SELECT count(*) AS n FROM raw.raw_objects) SELECT n FROM x"]
    )
    assert result.exit_code == 0, result.output
    assert "n" in result.stdout and "3" in result.stdout


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM raw.raw_objects",
        "DROP TABLE raw.raw_objects",
        "SELECT 1; DELETE FROM raw.raw_objects",
        "INSERT INTO raw.raw_objects (idem_key) VALUES ('x')",
        "COPY raw.raw_objects TO 'out.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
    ],
)
def test_sql_refuses_anything_but_one_select(seeded: None, sql: str) -> None:
    result = CliRunner().invoke(app, ["sql", sql, "--json"])
    assert result.exit_code == 1
    assert "error" in result.stderr
    rows = make_client(Settings.from_env()).sql("SELECT count(*) AS n FROM raw.raw_objects")
    assert rows == [{"n": 3}]


def test_storacle_group_is_registered() -> None:
    result = CliRunner().invoke(app, ["storacle", "serve", "--help"])
    assert result.exit_code == 0 and "--port" in result.stdout

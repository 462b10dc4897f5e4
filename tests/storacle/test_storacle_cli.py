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


def test_sql_in_a_pipe_is_tab_separated_without_ansi(seeded: None) -> None:
    # CliRunner's stdout is not a TTY, as a pipe is not.
    result = CliRunner().invoke(
        app, ["sql", "SELECT idem_key, source_system FROM raw.raw_objects ORDER BY 1"], color=True
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["idem_key\tsource_system"] + [
        f"k{i}\tgmail" for i in range(3)
    ]
    assert "\x1b[" not in result.stdout and "\x1b[" not in result.stderr


@pytest.mark.parametrize(
    "text", ["SHOW TABLES", "show all tables;", "DESCRIBE raw.raw_objects", "desc raw_objects"]
)
def test_sql_introspection_is_allowed(seeded: None, text: str) -> None:
    result = CliRunner().invoke(app, ["sql", text, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    if "TABLES" in text.upper():
        assert {"schema": "raw", "name": "raw_objects", "type": "BASE TABLE"} in rows
        assert not any(r["schema"] == "information_schema" for r in rows)
    else:
        assert [r["column"] for r in rows][:2] == ["idem_key", "source_system"]
        assert all(r["schema"] == "raw" for r in rows)


def test_describe_with_trailing_statement_is_still_refused(seeded: None) -> None:
    result = CliRunner().invoke(app, ["sql", "DESCRIBE raw.raw_objects; DROP TABLE raw.x"])
    assert result.exit_code == 1 and "error" in result.stderr


def test_version_and_short_help() -> None:
    from lorchestra_dagster import __version__

    assert CliRunner().invoke(app, ["--version"]).stdout.strip() == f"lorchestra {__version__}"
    for args in (["-h"], ["run", "-h"], ["pipeline", "run", "-h"], ["doctor", "-h"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0 and "Usage" in res.stdout
    for args in (["run"], ["pipeline", "run"], ["doctor"], ["sql"], ["sandbox", "up"]):
        text = CliRunner().invoke(app, [*args, "--help"]).stdout
        assert "Example:" in text, args

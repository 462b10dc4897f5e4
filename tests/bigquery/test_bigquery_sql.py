"""Generated BigQuery SQL, typed parameters and error mapping, checked without a server.

The statements are parsed with sqlglot's BigQuery dialect: the production path
must be valid BigQuery whatever the emulator accepts.
"""

from __future__ import annotations

import datetime as dt

import pytest
import requests
import sqlglot
from google.api_core import exceptions as gexc
from sqlglot import exp

from lorchestra_dagster.errors import PermanentError, TransientError
from lorchestra_dagster.storacle.backends import bigquery_errors as bqerr
from lorchestra_dagster.storacle.backends import bigquery_sql as bqsql
from lorchestra_dagster.storacle.query import QueryParams
from lorchestra_dagster.storacle.sql import build_select
from lorchestra_dagster.storacle.tables import DECLARED

pytestmark = pytest.mark.unit

RAW = dict(DECLARED[("raw", "raw_objects")].columns)
TARGET = bqsql.table_path("my-proj", "dev_raw", "raw_objects")
STAGING = bqsql.table_path("my-proj", "dev_lorchestra_staging", "raw__raw_objects__abc")


def parse(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read="bigquery", error_level=sqlglot.ErrorLevel.RAISE)


def test_merge_is_valid_bigquery_and_honours_skip_and_volatile() -> None:
    sql = bqsql.merge_sql(
        TARGET,
        STAGING,
        RAW,
        key_columns=["idem_key"],
        skip_update_columns=["first_seen"],
        volatile_columns=["last_seen"],
    )
    tree = parse(sql)
    assert isinstance(tree, exp.Merge)
    assert tree.this.catalog == "my-proj" and tree.this.db == "dev_raw"
    whens = tree.args["whens"].expressions
    matched = [w for w in whens if w.args.get("matched")]
    assert len(matched) == 1
    condition = matched[0].args["condition"].sql("bigquery")
    update = matched[0].args["then"]
    updated = {e.this.name for e in update.expressions}
    # volatile: updated when something else changed, never a reason to update
    assert "last_seen" in updated and "`last_seen`" not in condition
    # skip_update: written on insert only
    assert "first_seen" not in updated and "first_seen" not in condition
    assert "idem_key" not in updated
    # JSON has no equality in BigQuery: compared as canonical text
    assert "TO_JSON_STRING(t.`payload`) IS DISTINCT FROM TO_JSON_STRING(s.`payload`)" in condition
    # staging holds JSON as text, parsed once in the USING subquery
    assert "PARSE_JSON(s.`payload`)" in sql
    inserted = [w for w in whens if not w.args.get("matched")][0].args["then"]
    assert [c.name for c in inserted.this.expressions] == list(RAW)


def test_merge_without_comparable_columns_never_updates() -> None:
    cols = {"k": "VARCHAR", "seen": "TIMESTAMPTZ"}
    sql = bqsql.merge_sql(
        TARGET, STAGING, cols, key_columns=["k"], skip_update_columns=[], volatile_columns=["seen"]
    )
    tree = parse(sql)
    assert [bool(w.args.get("matched")) for w in tree.args["whens"].expressions] == [False]


def test_composite_keys_and_missing_key_column() -> None:
    cols = {"run_id": "VARCHAR", "step_id": "VARCHAR", "status": "VARCHAR"}
    sql = bqsql.merge_sql(
        TARGET, STAGING, cols, key_columns=["run_id", "step_id"], skip_update_columns=[],
        volatile_columns=[],
    )  # fmt: skip
    assert "ON t.`run_id` = s.`run_id` AND t.`step_id` = s.`step_id`" in sql
    parse(sql)
    with pytest.raises(PermanentError, match="key column 'nope'"):
        bqsql.merge_sql(
            TARGET, STAGING, cols, key_columns=["nope"], skip_update_columns=[],
            volatile_columns=[],
        )  # fmt: skip


def test_count_insert_and_create_sql_parse() -> None:
    count = bqsql.count_sql(
        TARGET,
        STAGING,
        RAW,
        key_columns=["idem_key"],
        skip_update_columns=["first_seen"],
        volatile_columns=["last_seen"],
        missing_in_target=["correlation_id"],
    )
    tree = parse(count)
    assert isinstance(tree, exp.Select)
    assert "NOT s.`correlation_id` IS NULL" in count  # a column to be added counts as NULL
    assert isinstance(parse(bqsql.insert_sql(TARGET, STAGING, RAW)), exp.Insert)
    create = bqsql.create_table_sql(TARGET, RAW, ["source_system", "connection_name"])
    tree = parse(create)
    assert isinstance(tree, exp.Create)
    assert "`payload` JSON" in create and "`first_seen` TIMESTAMP" in create
    assert "CLUSTER BY `source_system`, `connection_name`" in create


@pytest.mark.parametrize("bad", ["a`b", "x; DROP TABLE y", "1abc", "", "a b"])
def test_identifiers_are_validated(bad: str) -> None:
    with pytest.raises(PermanentError, match="identifiers must match"):
        bqsql.merge_sql(
            TARGET, STAGING, {bad: "VARCHAR", "k": "VARCHAR"}, key_columns=["k"],
            skip_update_columns=[], volatile_columns=[],
        )  # fmt: skip
    with pytest.raises(PermanentError):
        bqsql.table_path("p", "raw", bad)


def test_schema_fields_map_types_and_staging_keeps_json_as_text() -> None:
    fields = {f.name: f.field_type for f in bqsql.schema_fields(RAW)}
    assert fields["payload"] == "JSON" and fields["source_ts"] == "TIMESTAMP"
    assert fields["idem_key"] == "STRING"
    staging = {f.name: f.field_type for f in bqsql.schema_fields(RAW, staging=True)}
    assert staging["payload"] == "STRING" and staging["first_seen"] == "TIMESTAMP"
    runs = {f.name: f.field_type for f in bqsql.schema_fields(DECLARED[("ops", "runs")].columns)}
    assert runs["dry_run"] == "BOOL" and runs["rows_read"] == "INT64"
    assert runs["duration_s"] == "FLOAT64"


def test_load_values_convert_or_fail() -> None:
    assert bqsql.load_value({"b": 1, "a": [1]}, "JSON") == '{"a":[1],"b":1}'
    assert bqsql.load_value("2026-11-29T06:00:00Z", "TIMESTAMPTZ") == "2026-11-29T06:00:00Z"
    when = dt.datetime(2026, 11, 29, 6)
    assert bqsql.load_value(when, "TIMESTAMPTZ") == "2026-11-29T06:00:00+00:00"
    assert bqsql.load_value(7, "VARCHAR") == "7" and bqsql.load_value("7", "BIGINT") == 7
    with pytest.raises(ValueError):
        bqsql.load_value("seven", "BIGINT")


def test_query_parameters_are_typed_from_values_and_columns() -> None:
    p = bqsql.query_parameter
    assert (p("a", "x").type_, p("a", 3).type_, p("a", 1.5).type_) == ("STRING", "INT64", "FLOAT64")
    assert p("a", True).type_ == "BOOL"
    assert p("a", {"k": [1]}).to_api_repr() == {
        "name": "a",
        "parameterType": {"type": "JSON"},
        "parameterValue": {"value": '{"k": [1]}'},  # the object, serialised by the client
    }
    ts = p("a", "2026-11-29T06:00:00+00:00", "TIMESTAMPTZ")
    assert ts.type_ == "TIMESTAMP" and ts.value == dt.datetime(2026, 11, 29, 6, tzinfo=dt.UTC)
    assert p("a", dt.datetime(2026, 1, 1)).type_ == "TIMESTAMP"
    assert p("a", 12, "VARCHAR").type_ == "STRING" and p("a", 12, "VARCHAR").value == "12"
    assert p("a", 2, "DOUBLE").type_ == "FLOAT64"
    assert p("a", "5", "BIGINT").type_ == "INT64"
    with pytest.raises(PermanentError, match="ISO-8601"):
        p("a", "yesterday", "TIMESTAMPTZ")


def test_shared_select_builder_renders_bigquery_and_parameters_find_their_columns() -> None:
    def ref(dataset: str, table: str) -> exp.Table:
        return exp.Table(
            this=exp.to_identifier(table, quoted=True),
            db=exp.to_identifier(f"dev_{dataset}", quoted=True),
            catalog=exp.to_identifier("my-proj", quoted=True),
        )

    params = QueryParams(
        dataset="raw",
        table="raw_objects",
        columns=["idem_key", "MAX(last_seen) AS since"],
        filters=[
            {"column": "source_system", "op": "in", "value": ["gmail", "exchange"]},
            {"column": "last_seen", "op": ">=", "value": "2026-11-29T00:00:00Z"},
        ],
        incremental={
            "mode": "not_exists",
            "target_dataset": "canonical",
            "target_table": "canonical_objects",
            "source_key": "idem_key",
            "target_key": "idem_key",
            "join_key_suffix": "jmap",
            "source_ts": "last_seen",
            "target_ts": "canonicalized_at",
        },
        keyset={"column": "idem_key", "after": "k"},
        limit=10,
    )
    built = build_select(params, dialect="bigquery", table_ref=ref)
    tree = parse(built.sql)
    assert tree.find(exp.Exists) is not None
    assert "`my-proj`.`dev_canonical`.`canonical_objects`" in built.sql
    partners = bqsql.placeholder_columns(built.sql)
    assert partners["p0"] == ("s", "source_system") and partners["p1"] == ("s", "source_system")
    assert partners["p2"] == ("s", "last_seen")
    assert "p3" not in partners  # the key suffix is concatenated, typed from its value
    assert partners["p4"] == ("s", "idem_key")


def test_qualify_tables_applies_prefix_to_lorchestra_datasets_only() -> None:
    tree = parse(
        "CREATE OR REPLACE VIEW derived.v AS SELECT a.x FROM raw.raw_objects a "
        "JOIN other.t b ON a.x = b.x JOIN `elsewhere.shared.t` c ON c.x = a.x"
    )
    sql = bqsql.qualify_tables(tree, project="my-proj", prefix="dev_").sql("bigquery")
    assert "`my-proj`.`dev_derived`.v" in sql and "`my-proj`.`dev_raw`.raw_objects" in sql
    assert "other.t" in sql and "dev_other" not in sql
    assert "elsewhere" in sql and "`my-proj`.`dev_shared`" not in sql


# -- errors ------------------------------------------------------------------------------------


def api_error(cls: type[gexc.GoogleAPICallError], reason: str, message: str):
    return cls(message, errors=[{"reason": reason, "message": message}])


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (api_error(gexc.Forbidden, "rateLimitExceeded", "Exceeded rate limits"), "transient"),
        (api_error(gexc.Forbidden, "quotaExceeded", "Quota exceeded"), "transient"),
        (api_error(gexc.InternalServerError, "backendError", "Backend error"), "transient"),
        (api_error(gexc.BadRequest, "jobBackendError", "Retrying may solve it"), "transient"),
        (gexc.ServiceUnavailable("unavailable"), "transient"),
        (gexc.TooManyRequests("slow down"), "transient"),
        (gexc.GatewayTimeout("timeout"), "transient"),
        (
            api_error(gexc.BadRequest, "invalidQuery", "Transaction is aborted due to "
                      "concurrent update against table p:raw.raw_objects"),
            "transient",
        ),
        (api_error(gexc.BadRequest, "invalidQuery", "Syntax error at [1:1]"), "permanent"),
        (api_error(gexc.NotFound, "notFound", "Not found: Table p:raw.nope"), "permanent"),
        (api_error(gexc.Forbidden, "accessDenied", "Access Denied: Table p:raw.x"), "permanent"),
        (gexc.Unauthorized("bad credentials"), "permanent"),
        (requests.ConnectionError("connection refused"), "transient"),
        (requests.Timeout("read timed out"), "transient"),
        (ValueError("odd"), "permanent"),
    ],
)  # fmt: skip
def test_classification(error: BaseException, kind: str) -> None:
    assert bqerr.classify(error) == kind
    mapped = bqerr.map_error(error, where="raw.raw_objects", action="bq.upsert")
    assert isinstance(mapped, TransientError if kind == "transient" else PermanentError)
    assert "raw.raw_objects" in mapped.message and "bq.upsert" in mapped.message


def test_messages_name_the_table_and_drop_quoted_values() -> None:
    err = api_error(
        gexc.BadRequest,
        "invalid",
        "POST https://bigquery.googleapis.com/x: Could not parse 'jane@example.com' as TIMESTAMP",
    )
    mapped = bqerr.map_error(err, where="ops.events", action="bq.upsert")
    assert "jane@example.com" not in mapped.message and "googleapis" not in mapped.message
    assert "ops.events" in mapped.message and mapped.code == "invalid"
    assert mapped.data["reasons"] == ["invalid"]

"""SQL as sqlglot ASTs: reads from query params, DDL for views, read-only checks.

No string from a YAML file is ever spliced into SQL here. Identifiers are
validated (``[A-Za-z_][A-Za-z0-9_]*``) and quoted; values become named
placeholders bound by the driver; column expressions are parsed by sqlglot and
must only use column references, aliases, literals and a short list of
functions. Free SQL is accepted in exactly two places, both parsed first:
``bq.execute`` (one CREATE VIEW) and ``storacle.sql`` (one SELECT).

The DuckDB and BigQuery dialects are imported here, at module load: sqlglot
attaches a dialect's generator lazily on first use, and two threads parsing at
once in a fresh process could see it half-attached (``ParserException near
":"``). Importing them before any thread starts removes the race.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import SqlglotError

from lorchestra_dagster.errors import PermanentError, fingerprint
from lorchestra_dagster.storacle.query import Filter, QueryParams
from lorchestra_dagster.storacle.tables import declared, is_identifier

SRC = "s"
TGT = "t"

# Functions a column expression may call (sqlglot expression class names).
ALLOWED_FUNCTIONS = frozenset(
    {
        "Max", "Min", "Count", "Sum", "Avg", "Coalesce", "Lower", "Upper", "Length",
        "Trim", "Abs", "Round", "Greatest", "Least", "Concat", "Substring", "Nullif",
        "Distinct", "Cast", "TryCast", "DataType", "CountIf", "AnyValue",
        "TimestampSub", "TimestampAdd", "DateSub", "DateAdd", "JSONFormat",
    }
)  # fmt: skip
#: Interval units the date arithmetic functions may name (their ``unit`` argument).
_UNITS = frozenset({"MICROSECOND", "MILLISECOND", "SECOND", "MINUTE", "HOUR", "DAY", "WEEK"})
_DATE_MATH = ("TimestampSub", "TimestampAdd", "DateSub", "DateAdd")
#: The dialect column expressions are written in: BigQuery's, as the original's catalogs.
#: They are rendered for the backend's dialect (``TIMESTAMP_SUB`` becomes ``x - INTERVAL``).
EXPRESSION_DIALECT = "bigquery"
_ALLOWED_NODES = (
    exp.Column,
    exp.Identifier,
    exp.Alias,
    exp.Star,
    exp.Literal,
    exp.Null,
    exp.Boolean,
    exp.Paren,
)
_OPS = {"=": exp.EQ, "!=": exp.NEQ, "<>": exp.NEQ, "<": exp.LT, ">": exp.GT, "<=": exp.LTE}
_OPS[">="] = exp.GTE
#: Imported for their side effect of registering the dialects before any thread parses.
LOADED_DIALECTS = (DuckDB, BigQuery)

# DuckDB table/scalar functions that reach outside the warehouse; the connection also
# runs with enable_external_access=false, this list gives a clear error first.
_FORBIDDEN_FUNCTIONS = ("read_", "glob", "getenv", "sniff_", "parquet_", "query", "http")


def ident(name: str, what: str = "identifier") -> exp.Identifier:
    """A quoted identifier, or a permanent error describing (not quoting) the bad string.

    A row's keys become column names, so a bad "identifier" may be data (a
    client's name used as a key): the message gives its length and a hash only.
    """
    if not is_identifier(name):
        raise PermanentError(
            f"invalid {what} ({fingerprint(name)}): identifiers must match [A-Za-z_][A-Za-z0-9_]*",
            code="invalid_identifier",
        )
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None, what: str = "column") -> exp.Column:
    """A quoted (optionally qualified) column reference."""
    return exp.Column(this=ident(name, what), table=exp.to_identifier(table) if table else None)


@dataclass
class Binder:
    """Collects bound values under generated placeholder names (``p0``, ``p1``...)."""

    params: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any) -> exp.Placeholder:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return exp.Placeholder(this=name)


@dataclass
class BuiltSQL:
    """SQL text for one dialect plus its named parameters."""

    sql: str
    params: dict[str, Any]
    columns_json: list[str] = field(default_factory=list)


def parse_column_expression(text: str, *, qualify: str | None, dialect: str) -> exp.Expr:
    """Parse one entry of ``columns`` and allow only safe nodes.

    Raises:
        PermanentError: anything but column refs, aliases, literals and
            ALLOWED_FUNCTIONS (subqueries, ``;``, unknown functions), naming the string.
    """
    if text.strip() == "*":
        return exp.Star() if qualify is None else exp.Column(this=exp.Star(), table=qualify)
    bad = PermanentError(
        f"column expression {text!r} is not allowed: use column names, aliases, literals "
        f"and {sorted(n.upper() for n in ALLOWED_FUNCTIONS - {'Distinct', 'DataType'})}",
        code="invalid_column_expression",
    )
    if ";" in text:
        raise bad
    try:
        tree = sqlglot.parse_one(text, read=EXPRESSION_DIALECT)
    except SqlglotError as err:
        raise bad from err
    for node in tree.walk():
        if isinstance(node, exp.Var):
            parent = node.parent
            if (
                type(parent).__name__ in _DATE_MATH
                and node.arg_key == "unit"
                and node.name.upper() in _UNITS
            ):
                continue
            raise bad
        if isinstance(node, _ALLOWED_NODES):
            if isinstance(node, exp.Column) and (node.table or not isinstance(node.this, exp.Star)):
                if node.table or not is_identifier(node.name):
                    raise bad
            if isinstance(node, exp.Identifier) and not is_identifier(node.name):
                raise bad
            continue
        if type(node).__name__ in ALLOWED_FUNCTIONS:
            continue
        raise bad
    if isinstance(tree, exp.Alias) and not is_identifier(tree.alias):
        raise bad
    for node in tree.find_all(exp.Identifier):
        node.set("quoted", True)
    if qualify is not None:
        for column in tree.find_all(exp.Column):
            if not isinstance(column.this, exp.Star):
                column.set("table", exp.to_identifier(qualify))
    return tree


def _predicate(flt: Filter, binder: Binder, qualify: str | None) -> exp.Expr:
    column = col(flt.column, qualify, "filter column")
    if flt.op == "is_null":
        return exp.Is(this=column, expression=exp.Null())
    if flt.op == "not_null":
        return exp.Not(this=exp.Is(this=column, expression=exp.Null()))
    if flt.op in ("in", "not_in"):
        if not isinstance(flt.value, list) or not flt.value:
            raise PermanentError(
                f"filter on {flt.column!r} with op {flt.op!r} needs a non-empty list value",
                code="invalid_filter",
            )
        cond: exp.Expr = exp.In(this=column, expressions=[binder.bind(v) for v in flt.value])
        return exp.Not(this=cond) if flt.op == "not_in" else cond
    if flt.value is None:
        raise PermanentError(
            f"filter on {flt.column!r} compares with null; use op is_null/not_null",
            code="invalid_filter",
        )
    if isinstance(flt.value, dict | list):
        raise PermanentError(
            f"filter on {flt.column!r}: value must be a scalar", code="invalid_filter"
        )
    return _OPS[flt.op](this=column, expression=binder.bind(flt.value))


def _order(spec: list[str] | str | None, qualify: str | None) -> list[exp.Ordered]:
    items = [spec] if isinstance(spec, str) else list(spec or [])
    out: list[exp.Ordered] = []
    for item in items:
        parts = item.split()
        if len(parts) == 1 and parts[0].startswith("-"):
            parts = [parts[0][1:], "DESC"]  # the original's '-col'
        desc = len(parts) == 2 and parts[1].upper() == "DESC"
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if not parts or len(parts) > 2 or direction not in ("ASC", "DESC"):
            raise PermanentError(
                f"invalid order_by {item!r}: use 'col', '-col' or 'col DESC'",
                code="invalid_order_by",
            )
        out.append(exp.Ordered(this=col(parts[0], qualify, "order_by column"), desc=desc))
    return out


TableRef = Callable[[str, str], exp.Table]


def build_select(
    q: QueryParams,
    *,
    dialect: str,
    table_ref: TableRef,
    target_exists: bool = True,
) -> BuiltSQL:
    """SELECT for ``storacle.query`` params as an AST rendered for ``dialect``.

    Args:
        table_ref: maps (dataset, table) to the backend's table node (quoted).
        target_exists: False when the incremental target has not been written
            yet, in which case every source row is new and no join is emitted.
    """
    binder = Binder()
    ident(q.dataset, "dataset")
    ident(q.table, "table")
    inc = q.incremental if target_exists else None
    qualify = SRC if inc else None
    select = exp.select(
        *[parse_column_expression(c, qualify=qualify, dialect=dialect) for c in q.columns]
    )
    source = table_ref(q.dataset, q.table)
    select = select.from_(source.as_(SRC) if inc else source)
    conditions = [_predicate(f, binder, qualify) for f in q.filter_list()]
    for name in q.parse_json_columns:
        ident(name, "parse_json_columns entry")
    if q.incremental is not None:
        _validate_incremental(q)
    if inc is not None:
        key: exp.Expr = col(inc.source_key, SRC, "source_key")
        if inc.join_key_suffix is not None:
            key = exp.DPipe(
                this=exp.DPipe(this=key, expression=exp.Literal.string("#")),
                expression=binder.bind(inc.join_key_suffix),
                safe=True,
            )
        match: exp.Expr = exp.EQ(this=col(inc.target_key, TGT, "target_key"), expression=key)
        source_ts, target_ts = inc.timestamps(q.dataset, q.table)
        if source_ts and target_ts:
            # A target row is up to date when its ts is at least the source's; a
            # source row without a ts never counts as changed.
            s_ts = col(source_ts, SRC, "source_ts")
            up_to_date = exp.Coalesce(
                this=exp.GTE(this=col(target_ts, TGT, "target_ts"), expression=s_ts),
                expressions=[exp.Is(this=s_ts.copy(), expression=exp.Null())],
            )
            match = exp.and_(match, up_to_date)
        target = table_ref(inc.target_dataset, inc.target_table).as_(TGT)
        if inc.mode == "left_anti":
            select = select.join(target, on=match, join_type="left")
            conditions.append(
                exp.Is(this=col(inc.target_key, TGT, "target_key"), expression=exp.Null())
            )
        else:
            sub = exp.select(exp.Literal.number(1)).from_(target).where(match)
            conditions.append(exp.Not(this=exp.Exists(this=sub)))
    if q.keyset is not None:
        kcol = col(q.keyset.column, qualify, "keyset column")
        if q.keyset.after is not None:
            conditions.append(exp.GT(this=kcol, expression=binder.bind(q.keyset.after)))
        if q.keyset.until is not None:
            upto: exp.Condition = exp.LTE(this=kcol, expression=binder.bind(q.keyset.until))
            # The first page of a range also holds the rows with no key, so that ranges
            # read in turn see every row once (a page's reads of a batched job).
            if q.keyset.after is None:
                upto = exp.or_(upto, exp.Is(this=kcol.copy(), expression=exp.Null()))
            conditions.append(upto)
    if conditions:
        select = select.where(exp.and_(*conditions))
    orders = _order(q.order_by, qualify)
    if q.keyset is not None:
        orders = [exp.Ordered(this=col(q.keyset.column, qualify), desc=False), *orders]
    if orders:
        select = select.order_by(*orders)
    if q.limit is not None:
        select = select.limit(q.limit)
    return BuiltSQL(select.sql(dialect=dialect), binder.params, list(q.parse_json_columns))


def _validate_incremental(q: QueryParams) -> None:
    inc = q.incremental
    assert inc is not None
    ident(inc.target_dataset, "target_dataset")
    ident(inc.target_table, "target_table")
    ident(inc.source_key, "source_key")
    ident(inc.target_key, "target_key")
    if (inc.source_ts is None) != (inc.target_ts is None):
        raise PermanentError("incremental: source_ts and target_ts go together", code="invalid")
    for name in (inc.source_ts, inc.target_ts):
        if name is not None:
            ident(name, "incremental ts column")


def _parse_one(sql: str, dialect: str, what: str) -> exp.Expr:
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except SqlglotError as err:
        raise PermanentError(f"{what}: SQL does not parse: {err}", code="sql_parse") from err
    if len(statements) != 1:
        raise PermanentError(
            f"{what}: expected exactly one statement, got {len(statements)}", code="sql_statements"
        )
    return statements[0]


#: Datasets a catalog view may be created in; raw, wal and ops hold data, never views.
VIEW_DATASETS = frozenset({"canonical", "derived"})


def check_view_ddl(sql: str, *, dialect: str) -> exp.Create:
    """Accept exactly one ``CREATE [OR REPLACE] VIEW <dataset>.<name> AS SELECT ...``.

    This is the catalog's only free DDL, so it is the one rule both ``lorchestra
    validate`` (code ``L047``) and ``bq.execute`` apply: the target is a view in
    ``VIEW_DATASETS`` that is not a declared table, and the body only reads.
    ``CREATE OR REPLACE TABLE ... AS SELECT ... WHERE false`` would empty a table,
    ``DROP SCHEMA`` would lose a dataset: both are refused with ``sql_not_view``.
    Tables the data plane needs are created by the backends themselves.
    """
    tree = _parse_one(sql, dialect, "bq.execute")
    kind = str(tree.args.get("kind") or "").upper() if isinstance(tree, exp.Create) else ""
    if not isinstance(tree, exp.Create) or kind != "VIEW":
        got = f"{type(tree).__name__.upper()} {kind}".strip()
        raise PermanentError(
            f"bq.execute accepts only CREATE [OR REPLACE] VIEW, got {got}", code="sql_not_view"
        )
    target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    dataset = target.db if isinstance(target, exp.Table) else ""
    if dataset not in VIEW_DATASETS:
        raise PermanentError(
            f"bq.execute: a view must be created in one of {sorted(VIEW_DATASETS)}, "
            f"got dataset {dataset or '(none)'!r}",
            code="sql_not_view",
        )
    if isinstance(target, exp.Table) and declared(dataset, target.name) is not None:
        raise PermanentError(
            f"bq.execute: {dataset}.{target.name} is a declared table, not a view",
            code="sql_not_view",
        )
    body = tree.expression
    if not isinstance(body, exp.Query):
        raise PermanentError("bq.execute: a view's body must be a SELECT", code="sql_not_view")
    check_read_only(body.sql(dialect=dialect), dialect=dialect)
    return tree


def transpile_ddl(sql: str, *, read: str, write: str) -> tuple[str, set[str]]:
    """Check ``sql`` with ``check_view_ddl`` and transpile it to ``write``.

    BigQuery project qualifiers are dropped (a dataset is a schema of the one
    DuckDB database). Returns the SQL for ``write`` and the dataset the view goes in.
    """
    tree = check_view_ddl(sql, dialect=read)
    for table in tree.find_all(exp.Table):
        if table.args.get("catalog") is not None:
            table.set("catalog", None)
    target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    return tree.sql(dialect=write), {target.db}


def check_read_only(sql: str, *, dialect: str) -> exp.Expr:
    """Accept exactly one SELECT (WITH/UNION allowed) that reads warehouse tables only."""
    tree = _parse_one(sql, dialect, "sql")
    if not isinstance(tree, exp.Select | exp.Union | exp.Intersect | exp.Except):
        raise PermanentError(
            f"read-only: only a single SELECT/WITH query is allowed, got "
            f"{type(tree).__name__.upper()}",
            code="sql_not_read_only",
        )
    for node in tree.walk():
        if isinstance(node, exp.Insert | exp.Update | exp.Delete | exp.Merge | exp.Command):
            raise PermanentError("read-only: statement modifies data", code="sql_not_read_only")
        if isinstance(node, exp.Create | exp.Drop | exp.Alter | exp.Copy | exp.Pragma):
            raise PermanentError("read-only: statement modifies data", code="sql_not_read_only")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name.startswith(_FORBIDDEN_FUNCTIONS) or isinstance(node, exp.ReadCSV):
                raise PermanentError(
                    f"read-only: function {name} reads outside the warehouse",
                    code="sql_not_read_only",
                )
    return tree


_SHOW_TABLES = re.compile(r"^\s*show\s+(all\s+)?tables\s*;?\s*$", re.IGNORECASE)
_DESCRIBE = re.compile(
    r"^\s*(?:describe|desc)\s+(?:([A-Za-z_][A-Za-z0-9_]*)\.)?([A-Za-z_][A-Za-z0-9_]*)\s*;?\s*$",
    re.IGNORECASE,
)
_SYSTEM_SCHEMAS = ("information_schema", "pg_catalog")


def introspection_select(text: str) -> str | None:
    """``SHOW TABLES`` / ``DESCRIBE [schema.]table`` as the SELECT over information_schema.

    The data plane accepts one SELECT only; these two read-only questions a
    person types first are rewritten here (identifiers validated, names bound as
    literals by sqlglot) instead of widening what the server runs. None when
    ``text`` is neither.
    """
    if _SHOW_TABLES.match(text):
        return (
            exp.select(
                exp.column("table_schema").as_("schema"),
                exp.column("table_name").as_("name"),
                exp.column("table_type").as_("type"),
            )
            .from_("information_schema.tables")
            .where(exp.column("table_schema").isin(*_SYSTEM_SCHEMAS).not_())
            .order_by("schema", "name")
            .sql(dialect="duckdb")
        )
    match = _DESCRIBE.match(text)
    if match is None:
        return None
    schema, table = match.group(1), match.group(2)
    where: exp.Expr = exp.column("table_name").eq(exp.Literal.string(table))
    if schema:
        where = where.and_(exp.column("table_schema").eq(exp.Literal.string(schema)))
    return (
        exp.select(
            exp.column("table_schema").as_("schema"),
            exp.column("column_name").as_("column"),
            exp.column("data_type").as_("type"),
            exp.column("is_nullable").as_("nullable"),
        )
        .from_("information_schema.columns")
        .where(where)
        .order_by("schema", "ordinal_position")
        .sql(dialect="duckdb")
    )

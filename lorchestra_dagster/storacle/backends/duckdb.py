"""The embedded warehouse: one DuckDB file, one schema per dataset.

Writes are set-based: a batch becomes an Arrow table, read cast to the target's
types by the statements that need it: for ``bq.upsert`` the counting SELECT and
the MERGE of ``storacle.upsert`` (the same definition the BigQuery backend
renders), for appends one INSERT ... SELECT. Every op of a plan runs inside one
transaction, so a plan is all-or-nothing; a dry run is the same transaction
rolled back, so its counts are exactly what a real run would do.

Processes: by default the process keeps one connection and hands threads their
own cursors (writes are serialised by a lock). With short-lock mode the file is
opened per request and a lock held by another process is retried with backoff,
then reported as a transient error.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp, parse_one
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from lorchestra_dagster.errors import (
    LorchestraError,
    PermanentError,
    TransientError,
    redact_quoted,
)
from lorchestra_dagster.privacy import private_dir, private_file
from lorchestra_dagster.settings import Limits
from lorchestra_dagster.storacle import tables, values
from lorchestra_dagster.storacle.backends.base import Op, OpFailure, write_result
from lorchestra_dagster.storacle.backends.duckdb_arrow import arrow_column, bad_columns
from lorchestra_dagster.storacle.backends.duckdb_gate import OUT_OF_MEMORY, MemoryGate
from lorchestra_dagster.storacle.empty import over_empty_table
from lorchestra_dagster.storacle.params import (
    ExecuteParams,
    InsertParams,
    UpsertParams,
    WalAppendParams,
)
from lorchestra_dagster.storacle.query import QueryParams
from lorchestra_dagster.storacle.sql import build_select, check_read_only, ident, transpile_ddl
from lorchestra_dagster.storacle.upsert import Upsert
from lorchestra_dagster.storacle.values import dedupe

DIALECT = "duckdb"


def q(name: str) -> str:
    """Quoted identifier text (names are validated before they get here)."""
    return '"' + name.replace('"', '""') + '"'


def table_ref(dataset: str, table: str) -> exp.Table:
    return exp.Table(this=ident(table, "table"), db=ident(dataset, "dataset"))


#: The name a batch's Arrow table is registered under, on the writing cursor only (writes
#: hold the write lock, one batch at a time), so the statements over it can be cached.
SRC = "__lorch_src"


def _cast_select(columns: tuple[str, ...], types: tuple[str, ...]) -> exp.Select:
    """``SELECT CAST(c AS <table type>) AS c, ... FROM <the registered batch>``."""
    return exp.select(
        *[
            exp.cast(exp.column(c, quoted=True), t, dialect=DIALECT).as_(c, quoted=True)
            for c, t in zip(columns, types, strict=True)
        ]
    ).from_(exp.to_identifier(SRC))


@functools.lru_cache(maxsize=512)
def upsert_sql(
    dataset: str,
    table: str,
    columns: tuple[str, ...],
    types: tuple[str, ...],
    keys: tuple[str, ...],
    skip_update: tuple[str, ...],
    volatile: tuple[str, ...],
) -> tuple[str, str]:
    """The counting SELECT and the MERGE of ``storacle.upsert`` over the batch, as DuckDB
    SQL. Cached by shape: building and rendering the ASTs cost about as much as the
    join that counts a 5,000-row batch, and a job sends every page in one shape."""
    upsert = Upsert(
        target=table_ref(dataset, table),
        source=_cast_select(columns, types),
        columns=columns,
        key_columns=keys,
        skip_update_columns=skip_update,
        volatile_columns=volatile,
    )
    return upsert.counts().sql(dialect=DIALECT), upsert.merge().sql(dialect=DIALECT)


@functools.lru_cache(maxsize=512)
def insert_sql(dataset: str, table: str, columns: tuple[str, ...], types: tuple[str, ...]) -> str:
    """``INSERT INTO dataset.table (columns) SELECT <the batch, cast>``, cached by shape."""
    target = exp.Schema(this=table_ref(dataset, table), expressions=[ident(c) for c in columns])
    return exp.Insert(this=target, expression=_cast_select(columns, types)).sql(dialect=DIALECT)


@dataclass(frozen=True)
class _Staged:
    """A batch registered as an Arrow table under ``SRC``, and what a type error report
    needs."""

    src: pa.Table
    columns: list[str]
    types: dict[str, str]
    label: str

    @property
    def shape(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Columns and their table types: the key of the cached statements."""
        return tuple(self.columns), tuple(self.types[c] for c in self.columns)


class _LockConflict(Exception):
    pass


def _is_lock_error(err: BaseException) -> bool:
    text = str(err).lower()
    return "lock" in text and ("conflict" in text or "could not set lock" in text)


class DuckDBBackend:
    """``WarehouseBackend`` on a DuckDB file.

    Args:
        path: the database file (created on the first real write).
        short_lock: open the file per request instead of holding it.
        lock_timeout_s: how long short-lock mode retries a file held by another process.
        limits: memory, wall-time and result-size bounds (defaults: ``Limits()``).
        temp_dir: where DuckDB spills when a query outgrows ``memory_limit``
            (default: ``<home>/tmp/duckdb`` beside the file).
    """

    name = "duckdb"

    def __init__(
        self,
        path: Path,
        *,
        short_lock: bool = False,
        lock_timeout_s: float = 30.0,
        limits: Limits | None = None,
        temp_dir: Path | None = None,
    ):
        self.path = Path(path)
        self.short_lock = short_lock
        self.lock_timeout_s = lock_timeout_s
        self.limits = limits or Limits()
        self.temp_dir = Path(temp_dir) if temp_dir else self.path.parent / "tmp" / "duckdb"
        self._con: duckdb.DuckDBPyConnection | None = None
        self._con_lock = threading.Lock()
        self._users = 0
        self._write_lock = threading.RLock()
        #: Statements share memory_limit; one a neighbour starved is rerun alone, and one
        #: that does not fit alone is rerun under the burst limit (``_burst``).
        self._gate = MemoryGate(burst=self._burst)
        #: The memory_limit statements should run under, and the one set on ``_con``.
        self._limit = self.limits.memory_limit
        self._applied: str | None = None

    def prepare(self) -> None:
        """pyarrow imports pandas on its first array (about 1 s of one core here): paid
        here, once per process, rather than inside a run's first write while the other
        jobs of the stage wait for the interpreter lock."""
        pa.array([], type=pa.string())

    # -- connections -------------------------------------------------------------------------

    def _open(self, target: str) -> duckdb.DuckDBPyConnection:
        def attempt() -> duckdb.DuckDBPyConnection:
            try:
                return duckdb.connect(target)
            except duckdb.Error as err:
                if _is_lock_error(err):
                    raise _LockConflict(str(err)) from err
                raise PermanentError(
                    f"cannot open warehouse {target}: {err}", code="warehouse_open"
                ) from err

        timeout = self.lock_timeout_s if self.short_lock else 2.0
        try:
            for tryer in Retrying(
                retry=retry_if_exception_type(_LockConflict),
                wait=wait_exponential_jitter(initial=0.02, max=0.5),
                stop=stop_after_delay(timeout),
                reraise=True,
            ):
                with tryer:
                    con = attempt()
        except _LockConflict as err:
            raise TransientError(
                f"warehouse {target} is locked by another process (waited {timeout:.0f}s); "
                "run one storacle server or set LORCHESTRA_DUCKDB_SHORT_LOCK=1 everywhere",
                code="warehouse_locked",
            ) from err
        self._applied = self._limit  # what _configure sets
        self._configure(con)
        self._check(con, target)
        return con

    @staticmethod
    def _check(con: duckdb.DuckDBPyConnection, target: str) -> None:
        """The warehouse is checked on open: DuckDB replays its WAL on connect, and a
        catalog scan here makes a damaged file fail now, naming the file, rather than
        in the middle of a run.

        The result is read to its end (``fetchall``): a half-read result keeps the
        connection's transaction open, and once a table is created that open
        transaction blocks every checkpoint for the life of the process, so the WAL
        and every row written stay in memory (``IN_MEMORY_TABLE``) up to the end of
        the run."""
        try:
            con.execute("SELECT count(*) FROM duckdb_tables()").fetchall()
        except duckdb.Error as err:
            con.close()
            raise PermanentError(
                f"warehouse {target} failed its open check ({type(err).__name__}); "
                "restore it from a backup or move it aside",
                code="warehouse_open",
            ) from err

    def _configure(self, con: duckdb.DuckDBPyConnection) -> None:
        # Bounded memory, spilling to a folder of the home (never /tmp of another user).
        private_dir(self.temp_dir)  # spilled pages are clinical data too
        con.execute(f"SET memory_limit='{self._limit}'")
        con.execute(f"SET temp_directory='{str(self.temp_dir).replace(chr(39), chr(39) * 2)}'")
        # Only the statically linked json/icu/parquet extensions; never a download, and
        # no file access from SQL (read_csv, COPY, ATTACH) once the database is open.
        con.execute("SET autoinstall_known_extensions=false")
        con.execute("SET autoload_known_extensions=false")
        con.execute("SET TimeZone='UTC'")
        con.execute("SET enable_external_access=false")

    @contextmanager
    def _cursor(self, *, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the warehouse; an in-memory stand-in when the file does not exist
        and nothing will be committed (reads, dry runs), so those never create it."""
        if not write and not self.path.exists():
            con = duckdb.connect(":memory:")
            self._configure(con)
            try:
                yield con
            finally:
                con.close()
            return
        # One connection per process, shared by threads through cursors. In short-lock
        # mode it is closed as soon as the last thread is done with it, so other
        # processes get the file between requests. (A connection per thread does not
        # work: DuckDB shares one database per file and process, and a connection
        # opened after another disabled external access lacks the Arrow scan.)
        with self._con_lock:
            if self._con is None:
                private_dir(self.path.parent)
                self._con = self._open(str(self.path))
                private_file(self.path)
            self._users += 1
            try:
                cur = self._con.cursor()
            except BaseException:
                self._release()
                raise
        try:
            cur.execute("SET TimeZone='UTC'")
            if self._applied != self._limit:
                # memory_limit is the database's, not the cursor's: set it back (or up,
                # for a burst) before the statement runs.
                cur.execute(f"SET memory_limit='{self._limit}'")
                self._applied = self._limit
            yield cur
        finally:
            cur.close()
            with self._con_lock:
                self._release()

    @contextmanager
    def _burst(self) -> Iterator[None]:
        """The burst memory_limit for the one statement the gate runs alone; the next
        statement's cursor sets the steady limit back."""
        self._limit = self.limits.burst_memory_limit
        try:
            yield
        finally:
            self._limit = self.limits.memory_limit

    def _release(self) -> None:
        """One user fewer (``_con_lock`` held); short-lock mode closes the idle file."""
        self._users -= 1
        if self.short_lock and self._users == 0 and self._con is not None:
            self._con.close()
            self._con = None

    def close(self) -> None:
        with self._con_lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    # -- writes ------------------------------------------------------------------------------

    def execute(self, ops: Sequence[Op], *, dry_run: bool) -> list[dict[str, Any]]:
        writes = any(not op.params.reads for op in ops)

        def transaction() -> list[dict[str, Any]]:
            with self._cursor(write=writes and not dry_run) as cur:
                cur.execute("BEGIN TRANSACTION")
                results: list[dict[str, Any]] = []
                try:
                    for index, op in enumerate(ops):
                        try:
                            results.append(self._apply(cur, op))
                        except LorchestraError as err:
                            raise OpFailure(index, err) from err
                        except duckdb.Error as err:
                            raise OpFailure(index, _classify(err, _where(op))) from err
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                if dry_run:
                    cur.execute("ROLLBACK")
                else:
                    try:
                        cur.execute("COMMIT")
                    except duckdb.Error as err:
                        raise OpFailure(len(ops) - 1, _classify(err, _where(ops[-1]))) from err
                return results

        # The gate inside the write lock: a write rerun alone waits only for reads.
        with self._write_lock:
            return self._gate.run(transaction)

    def _apply(self, cur: duckdb.DuckDBPyConnection, op: Op) -> dict[str, Any]:
        method, p = op.method, op.params
        # Dispatch on the params model (the registry's class), never on the name.
        if isinstance(p, UpsertParams):
            return self._upsert(cur, p)
        if isinstance(p, InsertParams | WalAppendParams):
            return self._append(method, cur, op.target["dataset"], p.table, p.rows)
        if isinstance(p, ExecuteParams):
            return self._ddl(cur, p)
        if isinstance(p, QueryParams):
            items = self._select(cur, p)
            out = write_result(method, p.dataset, p.table, len(items))
            out["items"] = items
            return out
        raise PermanentError(f"method {method} is not a warehouse method", code="unknown_method")

    def _upsert(self, cur: duckdb.DuckDBPyConnection, p: UpsertParams) -> dict[str, Any]:
        """``bq.upsert`` as ``storacle.upsert``'s MERGE over the batch's Arrow scan.

        Two statements over one registered Arrow table: the read-only counts (what
        would be inserted and updated), then the MERGE when anything would change,
        so a rerun of unchanged rows costs one join and writes nothing.
        """
        label = f"{p.dataset}.{p.table}"
        for name in (*p.key_columns, *p.skip_update_columns, *p.volatile_columns):
            ident(name, f"column of {label}")
        result = write_result(p.method, p.dataset, p.table, len(p.rows))
        rows = dedupe(p.rows, p.key_columns, label)
        if not rows:
            return result
        types, batch_cols = self._ensure_table(cur, p.dataset, p.table, rows)
        with self._staged(cur, rows, batch_cols, types, label) as source:
            counts, merge = upsert_sql(
                p.dataset,
                p.table,
                *source.shape,
                tuple(p.key_columns),
                tuple(p.skip_update_columns),
                tuple(p.volatile_columns),
            )
            inserted, updated = self._run_staged(cur, source, counts)
            result["inserted"], result["updated"] = int(inserted), int(updated)
            result["unchanged"] = len(rows) - result["inserted"] - result["updated"]
            if inserted or updated:
                self._run_staged(cur, source, merge)
        return result

    @contextmanager
    def _staged(
        self,
        cur: duckdb.DuckDBPyConnection,
        rows: list[dict[str, Any]],
        batch_cols: list[str],
        types: dict[str, str],
        label: str,
    ) -> Iterator[_Staged]:
        """The batch as one Arrow table, registered as ``SRC`` for the statements of the
        block; they cast it to the target's types as they read it, so the batch is
        never materialised a second time."""
        src = pa.Table.from_arrays(
            [arrow_column([row.get(c) for row in rows], types[c], c, label) for c in batch_cols],
            names=batch_cols,
        )
        cur.register(SRC, src)
        yield _Staged(src, batch_cols, types, label)
        cur.unregister(SRC)

    @staticmethod
    def _run_staged(cur: duckdb.DuckDBPyConnection, staged: _Staged, statement: str) -> Any:
        """Run one statement over the staged batch; its first row (or None)."""
        try:
            rows = cur.execute(statement).fetchall()
            return rows[0] if rows else None
        except duckdb.ConversionException as err:
            # The transaction is aborted now; the registration dies with the cursor.
            raise PermanentError(
                f"rows for {staged.label} do not fit the table's types: "
                + bad_columns(staged.src, staged.columns, staged.types),
                code="type_mismatch",
            ) from err

    def _append(
        self,
        method: str,
        cur: duckdb.DuckDBPyConnection,
        dataset: str,
        table: str,
        rows: list[dict[str, Any]],
    ) -> dict[str, Any]:
        label = f"{dataset}.{table}"
        result = write_result(method, dataset, table, len(rows))
        if not rows:
            return result
        types, batch_cols = self._ensure_table(cur, dataset, table, rows)
        with self._staged(cur, rows, batch_cols, types, label) as staged:
            self._run_staged(cur, staged, insert_sql(dataset, table, *staged.shape))
        result["inserted"] = len(rows)
        return result

    def _ddl(self, cur: duckdb.DuckDBPyConnection, p: ExecuteParams) -> dict[str, Any]:
        sql, datasets = transpile_ddl(p.sql, read=p.dialect, write=DIALECT)
        for dataset in sorted(datasets):
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {q(ident(dataset, 'dataset').name)}")
        self._ensure_declared_reads(cur, sql)
        cur.execute(sql)
        return write_result(ExecuteParams.method, None, None, 0)

    def _ensure_declared_reads(self, cur: duckdb.DuckDBPyConnection, sql: str) -> None:
        """Create the (empty) declared tables a DDL statement reads but nobody wrote yet.

        DuckDB binds a view when it is created, so a view over ``derived.observations``
        would fail on a home where no form was scored yet; a declared table has a known
        shape, so creating it empty is safe and the view simply shows no rows.
        """
        for node in parse_one(sql, read=DIALECT).find_all(exp.Table):
            spec = tables.declared(node.db, node.name) if node.db else None
            if spec is not None and not self._exists(cur, spec.dataset, spec.table):
                body = ", ".join(f"{q(c)} {t}" for c, t in spec.columns.items())
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {q(spec.dataset)}")
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {q(spec.dataset)}.{q(spec.table)} ({body})"
                )

    # -- tables and staging ------------------------------------------------------------------

    @staticmethod
    def _columns(cur: duckdb.DuckDBPyConnection, dataset: str, table: str) -> dict[str, str]:
        # duckdb_columns(), not information_schema.columns: the same names and types at
        # a sixth of the cost, and this runs once per written batch.
        found = cur.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = ? AND table_name = ? "
            "ORDER BY column_index",
            [dataset, table],
        ).fetchall()
        return {name: str(kind).upper() for name, kind in found}

    @staticmethod
    def _exists(cur: duckdb.DuckDBPyConnection, dataset: str, table: str) -> bool:
        return bool(
            cur.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = ? AND table_name = ?",
                [dataset, table],
            ).fetchall()[0][0]
        )

    def _ensure_table(
        self, cur: duckdb.DuckDBPyConnection, dataset: str, table: str, rows: list[dict[str, Any]]
    ) -> tuple[dict[str, str], list[str]]:
        """Create the table (declared or inferred) or add batch columns it lacks.

        Returns the table's column types and the batch's columns in order.
        """
        ident(dataset, "dataset")
        ident(table, "table")
        batch_cols = list(dict.fromkeys(itertools.chain.from_iterable(rows)))
        for name in batch_cols:
            ident(name, f"column of {dataset}.{table}")
        existing = self._columns(cur, dataset, table)
        spec = tables.declared(dataset, table)
        missing = [c for c in batch_cols if c not in existing]
        if missing:
            known = dict(spec.columns) if spec else {}
            inferred = tables.infer_columns([{c: r.get(c) for c in missing} for r in rows])
            add = {c: known.get(c) or inferred[c] for c in missing}
            if not existing:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {q(dataset)}")
                columns = {**known, **add} if spec else add
                body = ", ".join(f"{q(c)} {t}" for c, t in columns.items())
                cur.execute(f"CREATE TABLE {q(dataset)}.{q(table)} ({body})")
            else:
                for c, t in add.items():
                    cur.execute(f"ALTER TABLE {q(dataset)}.{q(table)} ADD COLUMN {q(c)} {t}")
            existing = self._columns(cur, dataset, table)
        declared_cols = spec.columns if spec else {}
        for c in batch_cols:
            # An inferred int column meeting fractions is widened, not truncated or refused.
            if existing[c] == tables.BIGINT and c not in declared_cols:
                if any(isinstance(r.get(c), float) and not r[c].is_integer() for r in rows):
                    cur.execute(f"ALTER TABLE {q(dataset)}.{q(table)} ALTER {q(c)} TYPE DOUBLE")
                    existing[c] = tables.DOUBLE
        return existing, batch_cols

    # -- reads -------------------------------------------------------------------------------

    def query(self, params: QueryParams) -> list[dict[str, Any]]:
        return self._read(f"{params.dataset}.{params.table}", lambda cur: self._select(cur, params))

    def _read(
        self, where: str, fetch: Callable[[duckdb.DuckDBPyConnection], list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """One read through the memory gate, its DuckDB errors classified as ``where``'s."""

        def read() -> list[dict[str, Any]]:
            with self._cursor(write=False) as cur:
                try:
                    return fetch(cur)
                except duckdb.Error as err:
                    raise _classify(err, where) from err

        return self._gate.run(read)

    def _select(self, cur: duckdb.DuckDBPyConnection, qp: QueryParams) -> list[dict[str, Any]]:
        # Build once up front so a bad identifier or expression is reported even
        # when the table does not exist yet.
        built = build_select(qp, dialect=DIALECT, table_ref=table_ref)
        if not self._exists(cur, qp.dataset, qp.table):
            if tables.declared(qp.dataset, qp.table) is not None:
                return over_empty_table(qp)
            raise PermanentError(
                f"table {qp.dataset}.{qp.table} does not exist (not a declared table and "
                "never written)",
                code="unknown_table",
            )
        inc = qp.incremental
        if inc is not None and not self._exists(cur, inc.target_dataset, inc.target_table):
            built = build_select(qp, dialect=DIALECT, table_ref=table_ref, target_exists=False)
        return self._fetch(cur, built.sql, built.params, set(built.columns_json))

    def _fetch(
        self, cur: duckdb.DuckDBPyConnection, sql: str, params: Any, parse_json: set[str]
    ) -> list[dict[str, Any]]:
        """Rows of one read, bounded by the wall-time, row and byte limits.

        A watchdog interrupts the statement after ``query_timeout_s``; rows are
        fetched in chunks and counted, so a result over ``max_rows`` or
        ``max_result_bytes`` is refused before it is all in memory.
        """
        lim = self.limits
        timer = threading.Timer(lim.query_timeout_s, cur.interrupt)
        timer.daemon = True
        timer.start()
        try:
            cur.execute(sql, params)
            names = [d[0] for d in cur.description or []]
            out: list[dict[str, Any]] = []
            parse_idx = {i for i, n in enumerate(names) if n in parse_json}
            size = 0
            while chunk := cur.fetchmany(2048):
                for raw in chunk:
                    row: dict[str, Any] = {}
                    for i, (name, value) in enumerate(zip(names, raw, strict=True)):
                        size += _approx_bytes(value)
                        if i in parse_idx and isinstance(value, str):
                            row[name] = json.loads(value)
                        else:
                            row[name] = values.json_safe(value)
                    out.append(row)
                if len(out) > lim.max_rows or size > lim.max_result_bytes:
                    raise PermanentError(
                        f"result too large: more than {lim.max_rows} rows or "
                        f"{lim.max_result_bytes} bytes (LORCHESTRA_MAX_ROWS, "
                        "LORCHESTRA_MAX_RESULT_BYTES); add a filter or a limit",
                        code="result_too_large",
                    )
            return out
        except duckdb.InterruptException as err:
            raise PermanentError(
                f"query exceeded {lim.query_timeout_s:g}s (LORCHESTRA_QUERY_TIMEOUT_S) and was "
                "stopped; narrow it or raise the limit",
                code="query_timeout",
            ) from err
        finally:
            timer.cancel()

    def sql(self, select: str) -> list[dict[str, Any]]:
        check_read_only(select, dialect=DIALECT)
        return self._read("warehouse", lambda cur: self._fetch(cur, select, None, set()))


def _approx_bytes(value: Any) -> int:
    if isinstance(value, str | bytes):
        return len(value) + 8
    if isinstance(value, list | tuple):
        return 8 + sum(_approx_bytes(v) for v in value)
    if isinstance(value, dict):
        return 8 + sum(len(str(k)) + _approx_bytes(v) for k, v in value.items())
    return 8


#: DuckDB errors that mean the request itself is wrong (unknown column, bad cast, ...).
_BAD_INPUT = (
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.ParserException,
    duckdb.ConversionException,
    duckdb.InvalidInputException,
)


def redact(text: str, *, conversion: bool = False) -> str:
    """DuckDB's message without values.

    Values (a filter value, a literal) appear in single quotes; identifiers in
    double quotes are kept, so a binder error still names the column. A
    conversion error puts the bad value itself in double quotes
    (``invalid timestamp field format: "<value>"``), so those go too.
    """
    return redact_quoted(text, double=conversion)


def _where(op: Op) -> str:
    """``bq.upsert raw.t``: the method and target an op's errors name."""
    return f"{op.method} {op.table_name}" if op.table_name else op.method


def _classify(err: duckdb.Error, where: str) -> LorchestraError:
    """DuckDB error -> classified error without values; ``where`` names the op or table.

    Contention (locks, transaction conflicts, I/O) is transient; resource
    exhaustion (memory, disk for spilling) is permanent, since the same query
    fails again; a bad request (unknown column, unparsable cast) is
    ``invalid_query`` (JSON-RPC -32602); anything else is ``warehouse_error``.
    """
    conversion = isinstance(err, duckdb.ConversionException | duckdb.InvalidInputException)
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    text = redact(text, conversion=conversion)
    kind = type(err).__name__
    if isinstance(err, duckdb.OutOfMemoryException) or "out of memory" in text.lower():
        return PermanentError(
            f"{where}: out of memory (LORCHESTRA_DUCKDB_MEMORY_LIMIT, then alone under "
            f"LORCHESTRA_DUCKDB_BURST_MEMORY_LIMIT): {text}",
            code=OUT_OF_MEMORY,
        )
    if isinstance(err, duckdb.TransactionException) or _is_lock_error(err):
        return TransientError(f"{where}: {text}", code="warehouse_conflict")
    if isinstance(err, duckdb.IOException):
        return TransientError(f"{where}: {text}", code="warehouse_io")
    if isinstance(err, _BAD_INPUT):
        return PermanentError(f"{where}: {kind}: {text}", code="invalid_query")
    return PermanentError(f"{where}: {kind}: {text}", code="warehouse_error")

"""Lineage from data: which stage jobs read what other stage jobs write (pure, no I/O).

A job *reads* a slice of a table (``storacle.query`` dataset, table and
equality filters; the ``target_*`` table of an incremental read is its own
output and does not count) and
*writes* a slice (``plan.build`` dataset, table and the constant columns its
``field_defaults`` fix, such as ``source_system``, ``object_type`` or
``canonical_schema``). A reader depends on every writer whose slice can
overlap its own: same table, and no filter column on which both sides hold
different constants. An explicit ``deps:`` key adds what cannot be inferred
(views written by generated SQL, for example).

The result must agree with the pipeline order: no job depends on a job of a
later stage, and the graph is acyclic. ``validate_lineage`` collects every
violation and raises one ``SpecError`` naming the path of each.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lorchestra_dagster.errors import SpecError
from lorchestra_dagster.naming import STAGES
from lorchestra_dagster.spec.models import STEP_BY_OP, Step
from lorchestra_dagster.spec.refs import parse_ref
from lorchestra_dagster.storacle.params import PLAN_PARAMS, TABLE_ROW_METHODS

#: Columns whose constant values tell slices of a shared table apart.
SLICE_COLUMNS: tuple[str, ...] = (
    "source_system",
    "connection_name",
    "object_type",
    "canonical_schema",
    "measure_code",
    "stream",
    "canonical_format",
)

_UNKNOWN = object()


@dataclass(frozen=True)
class Slice:
    """Part of a table: ``filters`` maps slice columns to constants (absent = any value)."""

    dataset: str
    table: str
    filters: tuple[tuple[str, Any], ...] = ()

    @property
    def table_name(self) -> str:
        return f"{self.dataset}.{self.table}"

    def overlaps(self, other: Slice) -> bool:
        """Can a row be in both slices? Same table and no conflicting constant."""
        if (self.dataset, self.table) != (other.dataset, other.table):
            return False
        mine = dict(self.filters)
        for column, value in other.filters:
            if column in mine and mine[column] != value:
                return False
        return True

    def describe(self) -> str:
        if not self.filters:
            return self.table_name
        inner = ", ".join(f"{k}={v}" for k, v in self.filters)
        return f"{self.table_name}[{inner}]"


@dataclass
class JobIO:
    """What one job reads and writes, and the deps its YAML names explicitly."""

    job_id: str
    stage: str
    path: str | None = None
    reads: list[Slice] = field(default_factory=list)
    writes: list[Slice] = field(default_factory=list)
    key_columns: dict[str, list[str]] = field(default_factory=dict)
    #: per written table, the timestamp columns every insert or update sets (auto
    #: timestamps that are not ``skip_update_columns``): what tells a slice changed
    change_columns: dict[str, list[str]] = field(default_factory=dict)
    explicit_deps: list[str] = field(default_factory=list)
    sqlite_tables: list[str] = field(default_factory=list)
    files: bool = False
    #: a read whose table is only known at run time: the job cannot be skipped on lineage alone
    opaque_reads: bool = False
    #: the live job whose slice this backfill rewrites (``backfill_of:``)
    backfill_of: str | None = None
    #: a step writes by SQL over other tables (a view): the job derives its tables
    derives: bool = False

    def feeds(self, reader: JobIO) -> bool:
        """Can this job's writes be an upstream of ``reader``?

        A backfill's writes are its live job's (readers depend on the live job),
        and a backfill takes nothing from its own live job.
        """
        return (
            self.job_id != reader.job_id
            and self.backfill_of is None
            and reader.backfill_of != self.job_id
        )


@dataclass
class Lineage:
    """Dependencies between stage jobs (``deps[job] = upstream job ids``)."""

    jobs: dict[str, JobIO]
    deps: dict[str, list[str]]
    reasons: dict[tuple[str, str], str]

    def upstream(self, job_id: str) -> set[str]:
        """Every job ``job_id`` depends on, directly or transitively."""
        seen: set[str] = set()
        todo = list(self.deps.get(job_id, []))
        while todo:
            jid = todo.pop()
            if jid not in seen:
                seen.add(jid)
                todo.extend(self.deps.get(jid, []))
        return seen


def _const(value: Any, extras: Mapping[str, Any]) -> Any:
    """A constant value, ``@self`` resolved; ``_UNKNOWN`` for run- or envelope-time values."""
    ref = parse_ref(value)
    if ref is None:
        return value
    if ref.scope == "self" and len(ref.path) == 1:
        name = ref.path[0]
        if isinstance(name, str) and name in extras:
            return _const(extras[name], extras)
    return _UNKNOWN


def _filters(raw: Any, extras: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Equality filters on slice columns with constant values, in a stable order."""
    pairs: list[tuple[str, Any]] = []
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = [
            (c.get("column"), c.get("value"))
            for c in raw
            if isinstance(c, Mapping) and c.get("op", "=") == "="
        ]
    else:
        items = []
    for column, value in items:
        if column not in SLICE_COLUMNS:
            continue
        value = _const(value, extras)
        if value is _UNKNOWN or isinstance(value, dict | list):
            continue
        pairs.append((str(column), value))
    return tuple(sorted(pairs, key=lambda kv: kv[0]))


def _params(step: Any) -> dict[str, Any]:
    if isinstance(step, Step):
        return step.params_dict()
    return dict(getattr(step, "params", None) or {})


def job_io(job_id: str, stage: str, jobdef: Any, path: str | None = None) -> JobIO:
    """Infer the reads and writes of one JobDef from its steps."""
    extras: Mapping[str, Any] = getattr(jobdef, "extras", None) or {}
    io = JobIO(
        job_id=job_id,
        stage=stage,
        path=path,
        explicit_deps=list(jobdef.deps or []),
        backfill_of=getattr(jobdef, "backfill_of", None),
    )
    for step in jobdef.steps:
        model = STEP_BY_OP.get(step.op)
        if model is None or model.table_io is None:
            continue
        params = _params(step)
        if model.table_io == "read":
            _read_io(params, extras, io)
        else:
            _write_io(params, extras, io)
    return io


def _read_io(params: Mapping[str, Any], extras: Mapping[str, Any], io: JobIO) -> None:
    """The slice a reading step reads: its table and constant filters."""
    dataset, table = _const(params.get("dataset"), extras), _const(params.get("table"), extras)
    if isinstance(dataset, str) and isinstance(table, str):
        io.reads.append(Slice(dataset, table, _filters(params.get("filters"), extras)))
    else:
        io.opaque_reads = True
    # An incremental read's target is the job's own output (an anti-join that
    # skips rows already done), not an upstream: it adds no dependency.


def _write_io(params: Mapping[str, Any], extras: Mapping[str, Any], io: JobIO) -> None:
    """What a writing step writes, as its plan method's params model says."""
    method = params.get("method")
    model = PLAN_PARAMS.get(method) if isinstance(method, str) else None
    if model is None:
        return
    if method in TABLE_ROW_METHODS:
        dataset = model.fixed_dataset or _const(params.get("dataset"), extras)
        table = _const(params.get("table"), extras)
        if isinstance(dataset, str) and isinstance(table, str):
            sl = Slice(dataset, table, _filters(params.get("field_defaults"), extras))
            io.writes.append(sl)
            keys = params.get("key_columns")
            if isinstance(keys, list):
                io.key_columns[sl.table_name] = [str(k) for k in keys]
            auto = params.get("auto_timestamp_columns")
            kept = params.get("skip_update_columns") or []
            if isinstance(auto, list) and isinstance(kept, list):
                io.change_columns[sl.table_name] = [str(c) for c in auto if c not in kept]
    elif model.backend == "sqlite":
        table = _const(params.get("table"), extras)
        if isinstance(table, str):
            io.sqlite_tables.append(table)
    elif model.backend == "files":
        io.files = True
    elif model.sql_items:
        io.derives = True
        _sql_io(params.get("items"), io)


def _where_constants(where: Any) -> tuple[tuple[str, Any], ...]:
    """``col = 'literal'`` terms of a top-level AND chain, on slice columns only."""
    from sqlglot import exp

    pairs: list[tuple[str, Any]] = []
    terms = list(where.flatten()) if isinstance(where, exp.And) else [where]
    for term in terms:
        if isinstance(term, exp.EQ):
            left, right = term.this, term.expression
            if isinstance(left, exp.Column) and isinstance(right, exp.Literal):
                if left.name in SLICE_COLUMNS and right.is_string:
                    pairs.append((left.name, right.this))
    return tuple(sorted(pairs))


def _sql_io(items: Any, io: JobIO) -> None:
    """Reads and writes of literal ``bq.execute`` SQL (views): parsed, never executed."""
    import sqlglot
    from sqlglot import exp

    if not isinstance(items, list):
        return
    for item in items:
        sql = item.get("sql") if isinstance(item, Mapping) else None
        if not isinstance(sql, str):
            continue
        try:
            statements = sqlglot.parse(sql, read="bigquery")
        except sqlglot.errors.ParseError:
            continue
        for stmt in statements:
            if not isinstance(stmt, exp.Create):
                continue
            target = stmt.this.find(exp.Table) if stmt.this is not None else None
            if target is None or not target.db:
                continue
            io.writes.append(Slice(target.db, target.name))
            ctes = {c.alias_or_name for c in stmt.find_all(exp.CTE)}
            for select in stmt.find_all(exp.Select):
                where = select.args.get("where")
                consts = _where_constants(where.this) if where is not None else ()
                from_ = select.args.get("from_") or select.args.get("from")
                for table in select.find_all(exp.Table):
                    if table is target or not table.db or table.name in ctes:
                        continue
                    # A table of a nested SELECT (a CTE, a subquery) is that SELECT's read,
                    # with that SELECT's constants; counted here it would lose them.
                    if table.find_ancestor(exp.Select) is not select:
                        continue
                    direct = from_ is not None and table in list(from_.find_all(exp.Table))
                    sl = Slice(table.db, table.name, consts if direct else ())
                    if sl not in io.reads:
                        io.reads.append(sl)


def _stage_index(stage: str) -> int:
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


def infer_lineage(jobs: Iterable[JobIO]) -> Lineage:
    """Dependencies of each job: overlapping writers plus explicit ``deps``.

    A job reading its own output (an incremental target, a watermark) is not a
    dependency. Explicit deps are ``<stage>/<job_id>`` or a bare ``job_id``.
    """
    by_id = {j.job_id: j for j in jobs}
    deps: dict[str, list[str]] = {jid: [] for jid in by_id}
    reasons: dict[tuple[str, str], str] = {}
    for reader in by_id.values():
        for read in reader.reads:
            for writer in by_id.values():
                if not writer.feeds(reader):
                    continue
                for write in writer.writes:
                    if read.overlaps(write):
                        if writer.job_id not in deps[reader.job_id]:
                            deps[reader.job_id].append(writer.job_id)
                            reasons[(reader.job_id, writer.job_id)] = (
                                f"reads {read.describe()}, written as {write.describe()}"
                            )
                        break
        for dep in reader.explicit_deps:
            dep_id = dep.split("/", 1)[1] if "/" in dep else dep
            if dep_id not in deps[reader.job_id]:
                deps[reader.job_id].append(dep_id)
                reasons[(reader.job_id, dep_id)] = "explicit deps:"
    for jid in deps:
        deps[jid].sort()
    return Lineage(jobs=by_id, deps=deps, reasons=reasons)


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle of ``graph`` (node -> the nodes it points at) as ``[a, b, ..., a]``
    following the arrows and starting at its smallest node, or None (graphlib's check)."""
    ordered = {node: sorted(graph[node]) for node in sorted(graph)}
    try:
        graphlib.TopologicalSorter(ordered).prepare()
    except graphlib.CycleError as err:
        # graphlib walks from a node to its dependents: the reverse of our arrows.
        ring = list(reversed(err.args[1]))[:-1]
        low = ring.index(min(ring))
        ring = ring[low:] + ring[:low]
        return [*ring, ring[0]]
    return None


def _ambiguous(lineage: Lineage) -> list[tuple[frozenset[str], str]]:
    """Reads whose writers sit in more than one stage: which one is upstream is a guess."""
    out: list[tuple[frozenset[str], str]] = []
    for reader in lineage.jobs.values():
        for read in reader.reads:
            stages: dict[str, list[str]] = {}
            for writer in lineage.jobs.values():
                if not writer.feeds(reader):
                    continue
                if any(read.overlaps(w) for w in writer.writes):
                    stages.setdefault(writer.stage, []).append(writer.job_id)
            if len(stages) > 1 and not reader.explicit_deps:
                who = "; ".join(f"{st}: {', '.join(sorted(ids))}" for st, ids in stages.items())
                out.append(
                    (
                        frozenset({reader.job_id}),
                        f"{reader.stage}/{reader.job_id}: ambiguous read of {read.describe()}, "
                        f"written by jobs of several stages ({who}); name the upstream in "
                        f"'deps:' or filter the read ({reader.path})",
                    )
                )
    return out


def lineage_problems(lineage: Lineage) -> list[tuple[frozenset[str], str]]:
    """Every unknown dep, stage violation, ambiguity and cycle, with the jobs it touches.

    The code location leaves out exactly the jobs named here (the rest of the
    catalog still loads); ``validate_lineage`` turns the list into one error.
    """
    problems = _ambiguous(lineage)
    for jid, ups in sorted(lineage.deps.items()):
        job = lineage.jobs[jid]
        for up in ups:
            upjob = lineage.jobs.get(up)
            if upjob is None:
                problems.append(
                    (
                        frozenset({jid}),
                        f"{job.stage}/{jid}: deps names unknown job {up!r} ({job.path})",
                    )
                )
                continue
            if _stage_index(upjob.stage) > _stage_index(job.stage):
                why = lineage.reasons.get((jid, up), "")
                edge = f"{job.stage}/{jid} -> {upjob.stage}/{up}"
                problems.append((frozenset({jid}), f"{edge}: depends on a later stage ({why})"))
    cycle = find_cycle({k: [u for u in v if u in lineage.jobs] for k, v in lineage.deps.items()})
    if cycle:
        path = " -> ".join(f"{lineage.jobs[j].stage}/{j}" for j in cycle)
        details = "; ".join(
            f"{a} -> {b}: {lineage.reasons.get((a, b), '')}"
            for a, b in zip(cycle, cycle[1:], strict=False)
        )
        hint = _backfill_hint(lineage, cycle)
        problems.append((frozenset(cycle), f"dependency cycle: {path} ({details}){hint}"))
    return problems


def _backfill_hint(lineage: Lineage, cycle: list[str]) -> str:
    """How to declare a backfill, when two jobs of the cycle write the same slice."""
    for a, b in zip(cycle, cycle[1:], strict=False):
        ja, jb = lineage.jobs[a], lineage.jobs[b]
        if any(wa.overlaps(wb) for wa in ja.writes for wb in jb.writes):
            swap = "backfill" in b and "backfill" not in a
            backfill, live = (b, a) if swap else (a, b)
            return (
                f"; {a} and {b} write the same slice: if {backfill} is a backfill of "
                f"{live}, add 'backfill_of: {live}' to {backfill}'s YAML"
            )
    return ""


def validate_lineage(lineage: Lineage) -> None:
    """Raise one ``SpecError`` listing every problem of ``lineage_problems``."""
    problems = [message for _jobs, message in lineage_problems(lineage)]
    if problems:
        head = problems[0] if len(problems) == 1 else f"{len(problems)} lineage problems"
        raise SpecError(
            f"{head}:\n  " + "\n  ".join(problems) + "\n(add or fix a 'deps:' key in the job YAML)",
            issues=problems,
            code="LINEAGE",
        )


def lineage_from_jobs(jobs: Iterable[tuple[str, str, Any, str | None]]) -> Lineage:
    """Lineage of ``(job_id, stage, jobdef, path)`` tuples, validated."""
    lineage = infer_lineage(job_io(jid, stage, jd, path) for jid, stage, jd, path in jobs)
    validate_lineage(lineage)
    return lineage

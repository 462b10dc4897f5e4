"""Validate a whole catalog in one pass and report every issue (codes: ``spec.issues``).

Schema problems come from loading (``catalog.load_catalog``). The checks here
read the *raw* YAML of every job, so a job with a schema error still gets its
references, callables and methods checked: one run shows everything.

The checks are ordered tuples of pure rules, as sqlglot's optimizer is: a rule
takes what it checks (the catalog, a job, a step) and yields ``Finding``s;
``validate_loaded`` runs them all and turns each finding into an ``Issue`` at
its YAML position. ``CATALOG_RULES`` run once, ``JOB_RULES`` per job file, and
the param rules of each op are keyed by its Step model (``PARAM_RULES``), so
an op's checks live next to each other and a new op adds an entry, not a
branch on its name.

Registries the spec layer cannot know (registered callables and their traits,
transform ids, the view SQL check) are passed in by the caller, which keeps
this module free of imports from the layers above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from lorchestra_dagster import naming
from lorchestra_dagster.spec import secrets
from lorchestra_dagster.spec.catalog import Catalog, CatalogFile, load_catalog
from lorchestra_dagster.spec.issues import Issue
from lorchestra_dagster.spec.legacy import REFUSED_PARAMS
from lorchestra_dagster.spec.lineage import find_cycle
from lorchestra_dagster.spec.loops import item_path
from lorchestra_dagster.spec.models import (
    OP_OUTPUTS,
    STEP_BY_OP,
    CallStep,
    JobDef,
    JobRunStep,
    PlanBuildStep,
    Step,
    callable_of,
)
from lorchestra_dagster.spec.refs import Ref, looks_like_ref, parse_ref
from lorchestra_dagster.spec.traits import CallableTraits
from lorchestra_dagster.spec.yamlpos import YamlPath
from lorchestra_dagster.storacle.params import PLAN_PARAMS


def validate_catalog(
    dir: str | Path,  # the public name the brief fixes
    *,
    callables: Mapping[str, CallableTraits] | None = None,
    transform_ids: set[str] | None = None,
) -> list[Issue]:
    """Every issue of the catalog at ``dir``, sorted by file and position.

    Args:
        callables: registered callables and their traits; None skips the callable checks.
        transform_ids: known transform ids; None skips the transform check.
    """
    return validate_loaded(load_catalog(dir), callables=callables, transform_ids=transform_ids)


def validate_loaded(
    cat: Catalog,
    *,
    callables: Mapping[str, CallableTraits] | None = None,
    transform_ids: set[str] | None = None,
    view_sql: Callable[[str, str], None] | None = None,
) -> list[Issue]:
    """Like ``validate_catalog`` for a catalog already loaded.

    ``view_sql(sql, dialect)`` raises on ``bq.execute`` SQL the data plane would
    refuse; None skips that check.
    """
    ctx = Context(cat, callables, transform_ids, view_sql)
    issues = list(cat.issues)
    for rule in CATALOG_RULES:
        issues.extend(_issue(finding) for finding in rule(ctx))
    unique = {(i.path, i.line, i.col, i.code, i.message): i for i in issues}
    return sorted(unique.values(), key=lambda i: i.sort_key)


class Finding(NamedTuple):
    """One problem a rule found: the file, the YAML path inside it, its code and message."""

    file: CatalogFile
    path: YamlPath
    code: str
    message: str


def _issue(finding: Finding) -> Issue:
    doc = finding.file.doc
    assert doc is not None, "rules only read files that parsed"
    pos = doc.pos(finding.path)
    return Issue(
        path=str(finding.file.path),
        line=pos.line,
        col=pos.col,
        code=finding.code,
        message=finding.message,
    )


@dataclass
class Context:
    """The catalog under validation and the registries its caller handed down."""

    cat: Catalog
    callables: Mapping[str, CallableTraits] | None
    transform_ids: set[str] | None
    view_sql: Callable[[str, str], None] | None
    #: every job/pipeline id any file declares (valid or not), mapped to its kind
    ids: dict[str, str] = field(init=False, default_factory=dict)
    #: every declared job id, mapped to the stage folder it sits in
    job_stage: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for f in self.cat.files:
            if f.doc is None or not isinstance(f.doc.data, dict):
                continue
            key = {"job": "job_id", "pipeline": "pipeline_id"}.get(f.kind)
            if key and isinstance(f.doc.data.get(key), str):
                self.ids.setdefault(f.doc.data[key], f.kind)
            if f.kind == "job" and isinstance(f.doc.data.get("job_id"), str):
                stage = f.rel.parts[0] if len(f.rel.parts) > 1 else "other"
                self.job_stage[f.doc.data["job_id"]] = stage

    def traits(self, name: Any) -> CallableTraits | None:
        """The traits of a registered callable (None: unknown, or no registry given)."""
        if self.callables is None or not isinstance(name, str):
            return None
        return self.callables.get(name)


@dataclass(frozen=True)
class Job:
    """One job file's raw YAML, as the job rules read it."""

    ctx: Context
    file: CatalogFile
    data: dict[str, Any]
    steps: list[Any]
    #: top-level extras and the ``extras:`` mapping, merged
    extras: dict[str, Any]
    #: the first index of each step id
    order: dict[str, int]
    #: the first raw step of each step id
    by_id: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, ctx: Context, f: CatalogFile, data: dict[str, Any]) -> Job:
        steps = data["steps"]
        extras = {k: v for k, v in data.items() if k not in JobDef.KNOWN_KEYS}
        if isinstance(data.get("extras"), dict):
            extras.update(data["extras"])
        order: dict[str, int] = {}
        by_id: dict[str, dict[str, Any]] = {}
        for i, step in enumerate(steps):
            sid = step.get("step_id") if isinstance(step, dict) else None
            if isinstance(sid, str) and sid not in order:
                order[sid] = i
                by_id[sid] = step
        return cls(ctx, f, data, steps, extras, order, by_id)

    def at(self, path: YamlPath, code: str, message: str) -> Finding:
        return Finding(self.file, path, code, message)


@dataclass(frozen=True)
class StepParams:
    """One step's params, as the param rules of its op read them."""

    job: Job
    index: int
    params: dict[str, Any]

    @property
    def base(self) -> YamlPath:
        return ("steps", self.index, "params")

    def at(self, sub: YamlPath, code: str, message: str) -> Finding:
        return self.job.at((*self.base, *sub), code, message)


def _walk_strings(value: Any, path: YamlPath) -> Iterator[tuple[YamlPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_strings(v, (*path, i))


def _literal(value: Any) -> str | None:
    """A plain string value (not a reference), else None: references are checked at compile."""
    return value if isinstance(value, str) and not value.startswith("@") else None


# -- job rules ------------------------------------------------------------------------------


def extra_files(job: Job) -> Iterator[Finding]:
    """L037: an extra naming a ``.yaml`` file must name one under the catalog."""
    root = job.ctx.cat.root
    for key, value in job.extras.items():
        if isinstance(value, str) and value.endswith((".yaml", ".yml")):
            if not (root / value).is_file():
                yield job.at(
                    (key,) if key in job.data else ("extras", key),
                    "L037",
                    f"extra {key!r} names {value!r}, which does not exist under the catalog {root}",
                )


def deps(job: Job) -> Iterator[Finding]:
    """L046: explicit ``deps`` name existing jobs as ``<stage>/<job_id>``."""
    named = job.data.get("deps")
    if not isinstance(named, list):
        return
    for n, dep in enumerate(named):
        if not isinstance(dep, str):
            continue
        stage, _, job_id = dep.rpartition("/")
        actual = job.ctx.job_stage.get(job_id)
        if actual is None:
            yield job.at(("deps", n), "L046", f"deps names {dep!r}: no job {job_id!r}")
        elif stage != actual:
            yield job.at(
                ("deps", n),
                "L046",
                f"deps names {dep!r} but job {job_id!r} is in stage {actual!r} "
                f"(write '{actual}/{job_id}')",
            )


def backfill_of(job: Job) -> Iterator[Finding]:
    """L046: ``backfill_of`` names a job of the catalog."""
    live = job.data.get("backfill_of")
    if isinstance(live, str) and job.ctx.job_stage.get(live) is None:
        yield job.at(("backfill_of",), "L046", f"backfill_of names {live!r}: no job {live!r}")


def duplicate_steps(job: Job) -> Iterator[Finding]:
    """L022: step ids are unique within a job."""
    for i, step in enumerate(job.steps):
        sid = step.get("step_id") if isinstance(step, dict) else None
        if isinstance(sid, str) and job.order[sid] != i:
            yield job.at(
                ("steps", i, "step_id"),
                "L022",
                f"duplicate step id {sid!r} (first at steps[{job.order[sid]}])",
            )


def references(job: Job) -> Iterator[Finding]:
    """L031-L036, L038: every reference parses and names what exists, earlier."""
    for i, step in enumerate(job.steps):
        if not isinstance(step, dict):
            continue
        targets: list[tuple[YamlPath, str]] = []
        if isinstance(step.get("if"), str):
            targets.append((("steps", i, "if"), step["if"]))
        targets.extend(_walk_strings(step.get("params"), ("steps", i, "params")))
        for path, value in targets:
            if looks_like_ref(value):
                yield from _reference(job, i, step.get("step_id"), path, value)


def _reference(job: Job, i: int, sid: Any, path: YamlPath, value: str) -> Iterator[Finding]:
    ref = parse_ref(value)
    if ref is None:
        yield job.at(
            path,
            "L035",
            f"malformed reference {value!r} (forms: @ctx.a.b, @payload.a, @self.a, "
            "@run.<step>.items[0].x, optional trailing '?')",
        )
        return
    if ref.scope == "self":
        head = ref.path[0]
        if head not in job.extras:
            known = ", ".join(sorted(job.extras)) or "none"
            yield job.at(path, "L034", f"{ref.raw}: no extra {head!r} (extras: {known})")
    if ref.scope != "run":
        return
    if path[-1] == "if":
        yield job.at(
            path,
            "L036",
            f"'if' is decided at compile time and cannot use {ref.raw}; use @ctx/@payload/@self",
        )
        return
    target = ref.step_id
    if target == "envelope":
        return
    if target not in job.order:
        known = ", ".join(job.order) or "none"
        yield job.at(path, "L031", f"{ref.raw}: no step {target!r} (steps: {known})")
    elif target == sid:
        yield job.at(path, "L033", f"{ref.raw}: a step cannot read its own output")
    elif job.order[target] > i:
        yield job.at(
            path,
            "L032",
            f"{ref.raw}: step {target!r} runs later (steps[{job.order[target]}]); "
            "a step can only read earlier steps",
        )
    else:
        yield from _output_key(job, path, ref)


def _output_key(job: Job, path: YamlPath, ref: Ref) -> Iterator[Finding]:
    """L038: ``@run.<step>.<key>``: the key must be one the step's op outputs."""
    op = job.by_id[ref.step_id].get("op") if ref.step_id is not None else None
    outputs = OP_OUTPUTS.get(op) if isinstance(op, str) else None
    key = ref.subpath[0] if ref.subpath else None
    if outputs is not None and isinstance(key, str) and key not in outputs:
        yield job.at(
            path,
            "L038",
            f"{ref.raw}: a {op} step outputs {', '.join(sorted(outputs))}, not {key!r}",
        )


def step_params(job: Job) -> Iterator[Finding]:
    """The param rules of each step's op (``PARAM_RULES``, keyed by its Step model)."""
    for i, step in enumerate(job.steps):
        if not isinstance(step, dict) or not isinstance(step.get("params"), dict):
            continue
        model = STEP_BY_OP.get(step["op"]) if isinstance(step.get("op"), str) else None
        for rule in PARAM_RULES.get(model, ()) if model is not None else ():
            yield from rule(StepParams(job, i, step["params"]))


# -- param rules ----------------------------------------------------------------------------


def known_callable(sp: StepParams) -> Iterator[Finding]:
    """L040: the callable is registered."""
    name = _literal(sp.params.get("callable"))
    known = sp.job.ctx.callables
    if name is not None and known is not None and name not in known:
        names = ", ".join(sorted(known)) or "none"
        yield sp.at(("callable",), "L040", f"unknown callable {name!r} (known: {names})")


def refused_params(sp: StepParams) -> Iterator[Finding]:
    """L048: params of the original's callables that are refused here."""
    name = _literal(sp.params.get("callable"))
    for key, why in REFUSED_PARAMS.get(name or "", {}).items():
        if key in sp.params:
            yield sp.at((key,), "L048", f"{name} param {key!r}: {why}")


def known_transform(sp: StepParams) -> Iterator[Finding]:
    """L044: the transform a callable runs (its ``transform_key``) is in the registry."""
    traits = sp.job.ctx.traits(_literal(sp.params.get("callable")))
    known = sp.job.ctx.transform_ids
    if traits is None or traits.transform_key is None or known is None:
        return
    tid = _literal(traits.transform_of(sp.params))
    ids = {naming.transform_id(t) for t in known}
    if tid is not None and naming.transform_id(tid) not in ids:
        yield sp.at(
            ("config", traits.transform_key),
            "L044",
            f"unknown transform id {tid!r} (no "
            "transforms/<domain>/<name>/<version>/spec.meta.yaml declares it)",
        )


def plan_method(sp: StepParams) -> Iterator[Finding]:
    """L041, L043, L047: a registered method, the params it needs, and its SQL."""
    method = _literal(sp.params.get("method"))
    if method is None:
        return
    model = PLAN_PARAMS.get(method)
    if model is None:
        known = ", ".join(sorted(PLAN_PARAMS))
        yield sp.at(("method",), "L041", f"unknown plan method {method!r} ({known})")
        return
    if model.per_item and sp.params.get("table") in (None, ""):
        yield from _per_item(sp, method)
        return
    for name in model.required_params():
        if sp.params.get(name) in (None, "", []):
            yield sp.at((), "L043", f"plan.build {method} needs param {name!r}")
    if model.sql_items:
        yield from _view_sql(sp)


def _per_item(sp: StepParams, method: str) -> Iterator[Finding]:
    """No ``table`` param: every item must carry its target (the original's per-item mode).

    Literal items are checked one by one; ``@run.<step>.items`` is accepted from
    a step whose callable's items carry their targets (its traits say so:
    ``per_item_targets``, or a transform under ``per_item_transforms``);
    anything else cannot be known to carry one.
    """
    items = sp.params.get("items")
    if isinstance(items, list) and items:
        for n, item in enumerate(items):
            if not isinstance(item, dict) or not item.get("table") or "rows" not in item:
                yield sp.at(
                    ("items", n),
                    "L043",
                    f"plan.build {method} needs param 'table', or 'table' and 'rows' "
                    f"per item (item {n} has neither)",
                )
        return
    ctx = sp.job.ctx
    ref = parse_ref(items) if isinstance(items, str) else None
    producer = sp.job.by_id.get(ref.step_id or "") if ref and ref.scope == "run" else None
    fp = producer.get("params") if producer is not None else None
    if isinstance(fp, dict):
        name = callable_of(producer.get("op") if producer else None, fp)
        if name is not None and ctx.callables is None:
            return  # no registry: what the callable returns cannot be known here
        traits = ctx.traits(name)
        if traits is not None and traits.items_carry_targets(fp):
            return
    every = (ctx.callables or {}).items()
    known = ", ".join(sorted(n for n, t in every if t.per_item_targets)) or "none"
    prefixes = sorted({t.per_item_transforms for _n, t in every if t.per_item_transforms})
    tail = "".join(f", or a {p} transform" for p in prefixes)
    yield sp.at(
        (),
        "L043",
        f"plan.build {method} needs param 'table' (or items that carry it per item, "
        f"from a callable that packages targets: {known}{tail})",
    )


def _view_sql(sp: StepParams) -> Iterator[Finding]:
    """L047: literal SQL items must be what the data plane accepts (one CREATE VIEW)."""
    check, items = sp.job.ctx.view_sql, sp.params.get("items")
    if check is None or not isinstance(items, list):
        return
    for n, item in enumerate(items):
        if not isinstance(item, dict) or _literal(item.get("sql")) is None:
            continue
        dialect = _literal(item.get("dialect")) or "bigquery"
        try:
            check(item["sql"], dialect)
        except Exception as err:  # noqa: BLE001 - the checker's message is the issue; nothing is lost
            yield sp.at(("items", n, "sql"), "L047", str(err))


def known_job(sp: StepParams) -> Iterator[Finding]:
    """L045: the child job is in the catalog."""
    jid = _literal(sp.params.get("job_id"))
    if jid is not None and sp.job.ctx.ids.get(jid) != "job":
        yield sp.at(("job_id",), "L045", f"job.run names unknown job {jid!r}")


ParamRule = Callable[[StepParams], Iterator[Finding]]
#: Each op's param rules, in order, keyed by its Step model (an op absent here has none
#: beyond its schema): a new op with checks of its own adds one entry.
PARAM_RULES: Mapping[type[Step], tuple[ParamRule, ...]] = {
    CallStep: (known_callable, refused_params, known_transform),
    PlanBuildStep: (plan_method,),
    JobRunStep: (known_job,),
}

JobRule = Callable[[Job], Iterator[Finding]]
#: The rules every job file is checked with, in order.
JOB_RULES: tuple[JobRule, ...] = (
    extra_files,
    deps,
    backfill_of,
    duplicate_steps,
    references,
    step_params,
)


# -- catalog rules --------------------------------------------------------------------------


def jobs(ctx: Context) -> Iterator[Finding]:
    """Every job file whose steps are a list, through ``JOB_RULES``."""
    for f in ctx.cat.files:
        data = f.doc.data if f.doc is not None and f.kind == "job" else None
        if isinstance(data, dict) and isinstance(data.get("steps"), list):
            job = Job.of(ctx, f, data)
            for rule in JOB_RULES:
                yield from rule(job)


def secret_values(ctx: Context) -> Iterator[Finding]:
    """L060/L061: no literal secret in any file of the catalog."""
    for f in ctx.cat.files:
        if f.doc is not None:
            for code, path, _pos, message in secrets.scan(f.doc):
                yield Finding(f, path, code, message)


def pipelines(ctx: Context) -> Iterator[Finding]:
    """L050-L052: pipelines name what exists, loops read earlier stages, no cycles."""
    edges: dict[str, list[tuple[str, CatalogFile, YamlPath]]] = {}
    for f in ctx.cat.files:
        if f.kind != "pipeline" or f.doc is None:
            continue
        pid = f.doc.data.get("pipeline_id")
        stages = f.doc.data.get("stages")
        if not isinstance(pid, str) or not isinstance(stages, list):
            continue
        edges.setdefault(pid, [])
        earlier: set[str] = set()
        for si, stage in enumerate(stages):
            loop = stage.get("loop") if isinstance(stage, dict) else None
            base: YamlPath = ("stages", si, "loop") if isinstance(loop, dict) else ("stages", si)
            if isinstance(loop, dict):
                yield from _loop(f, base, loop, earlier)
                members = loop.get("jobs")
            else:
                members = stage.get("jobs") if isinstance(stage, dict) else None
            if not isinstance(members, list):
                continue
            earlier.update(j for j in members if isinstance(j, str))
            for ji, name in enumerate(members):
                if not isinstance(name, str):
                    continue
                path = (*base, "jobs", ji)
                kind = ctx.ids.get(name)
                if kind is None:
                    msg = f"pipeline {pid!r} names {name!r}, not in the catalog"
                    yield Finding(f, path, "L050", msg)
                elif kind == "pipeline":
                    edges[pid].append((name, f, path))
    yield from _cycles(edges)


def _loop(
    f: CatalogFile, base: YamlPath, loop: dict[str, Any], earlier: set[str]
) -> Iterator[Finding]:
    """L052: ``over`` reads a job of an earlier stage; payload refs are @item/@payload/@ctx."""
    over = loop.get("over")
    ref = parse_ref(over) if isinstance(over, str) else None
    source = ref.step_id if ref is not None and ref.scope == "run" else None
    if source is None:
        msg = f"loop over {over!r}: expected @run.<job_id>.items"
        yield Finding(f, (*base, "over"), "L052", msg)
    elif source not in earlier:
        yield Finding(
            f,
            (*base, "over"),
            "L052",
            f"loop over {over!r}: job {source!r} is not in an earlier stage of this "
            f"pipeline (earlier: {', '.join(sorted(earlier)) or 'none'})",
        )
    for path, value in _walk_strings(loop.get("payload"), (*base, "payload")):
        if not value.startswith("@"):
            continue
        ref = parse_ref(value)
        if item_path(value) is None and (ref is None or ref.scope not in ("payload", "ctx")):
            yield Finding(
                f,
                path,
                "L035",
                f"loop payload {value!r}: use @item.<path>, @payload.<path> or a literal",
            )


def _cycles(edges: Mapping[str, Iterable[tuple[str, CatalogFile, YamlPath]]]) -> Iterator[Finding]:
    """L051: every independent cycle once: report one, cut its first edge, look again."""
    graph = {node: {e[0] for e in out} for node, out in edges.items()}
    while (cycle := find_cycle(graph)) is not None:
        first, nxt = cycle[0], cycle[1]
        _name, f, path = next(e for e in edges[first] if e[0] == nxt)
        yield Finding(f, path, "L051", f"cycle between pipelines: {' -> '.join(cycle)}")
        graph[first].discard(nxt)


CatalogRule = Callable[[Context], Iterator[Finding]]
#: The rules of one validation, in order (``validate_loaded`` runs them).
CATALOG_RULES: tuple[CatalogRule, ...] = (jobs, secret_values, pipelines)

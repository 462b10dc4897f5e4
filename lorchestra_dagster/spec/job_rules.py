"""The rules of one job file (``JOB_RULES``) and of each op's params (``PARAM_RULES``).

``PARAM_RULES`` is keyed by the Step model of the op: the checks of ``call``,
``plan.build`` and ``job.run`` live side by side here, and a new op with checks
of its own adds one entry, not a branch on its name. Plan-method and callable
specifics are read from their registries' traits (``PlanParams.per_item``,
``sql_items``; ``CallableTraits``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lorchestra_dagster import naming
from lorchestra_dagster.errors import LorchestraError
from lorchestra_dagster.spec.legacy import REFUSED_PARAMS
from lorchestra_dagster.spec.models import (
    OP_OUTPUTS,
    STEP_BY_OP,
    CallStep,
    JobRunStep,
    PlanBuildStep,
    Step,
    callable_of,
)
from lorchestra_dagster.spec.refs import Ref, looks_like_ref, parse_ref
from lorchestra_dagster.spec.rule_base import Finding, Job, StepParams, literal, walk_strings
from lorchestra_dagster.spec.yamlpos import YamlPath
from lorchestra_dagster.storacle.params import PLAN_PARAMS

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
        targets.extend(walk_strings(step.get("params"), ("steps", i, "params")))
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
    name = literal(sp.params.get("callable"))
    known = sp.job.ctx.callables
    if name is not None and known is not None and name not in known:
        names = ", ".join(sorted(known)) or "none"
        yield sp.at(("callable",), "L040", f"unknown callable {name!r} (known: {names})")


def refused_params(sp: StepParams) -> Iterator[Finding]:
    """L048: params of the original's callables that are refused here."""
    name = literal(sp.params.get("callable"))
    for key, why in REFUSED_PARAMS.get(name or "", {}).items():
        if key in sp.params:
            yield sp.at((key,), "L048", f"{name} param {key!r}: {why}")


def known_transform(sp: StepParams) -> Iterator[Finding]:
    """L044: the transform a callable runs (its ``transform_key``) is in the registry."""
    traits = sp.job.ctx.traits(literal(sp.params.get("callable")))
    known = sp.job.ctx.transform_ids
    if traits is None or traits.transform_key is None or known is None:
        return
    tid = literal(traits.transform_of(sp.params))
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
    method = literal(sp.params.get("method"))
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
    if producer is not None and isinstance(fp, dict):
        name = callable_of(producer.get("op"), fp)
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
        if not isinstance(item, dict) or literal(item.get("sql")) is None:
            continue
        dialect = literal(item.get("dialect")) or "bigquery"
        try:
            check(item["sql"], dialect)
        except LorchestraError as err:  # the refusal's message is the issue
            yield sp.at(("items", n, "sql"), "L047", str(err))


def known_job(sp: StepParams) -> Iterator[Finding]:
    """L045: the child job is in the catalog."""
    jid = literal(sp.params.get("job_id"))
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

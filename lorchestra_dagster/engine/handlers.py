"""One handler per op: the single implementation that both the executor and Dagster ops run.

Each handler registers under the Step model of its op (``spec/models.py``) and
takes that model's params model (``CallParams``, ``PlanBuildParams``, ...):
``step_params`` validates a step's params once, after its ``@run``
references are resolved, so a handler reads typed fields instead of picking
keys out of a dict, and a wrong type fails before the handler runs, naming
the job, step and field (never the value). A new op is its Step class plus
one ``@handles`` here; ``tests/engine`` checks every op of the registry has a
handler.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from lorchestra_dagster.callables import CallContext, get_callable, is_paged
from lorchestra_dagster.engine import shaping
from lorchestra_dagster.engine.services import Services
from lorchestra_dagster.engine.state import RunState
from lorchestra_dagster.errors import PermanentError, StepFailed, TransientError
from lorchestra_dagster.privacy import write_private
from lorchestra_dagster.spec.instance import ResolvedStep
from lorchestra_dagster.spec.models import (
    CallStep,
    ComputeLlmStep,
    JobRunStep,
    LogDumpStep,
    PlanBuildStep,
    Step,
    StoracleQueryStep,
    StoracleSubmitStep,
    op_name,
)
from lorchestra_dagster.spec.params import (
    CallParams,
    ComputeLlmParams,
    JobRunParams,
    LogDumpParams,
    PlanBuildParams,
    StoracleQueryParams,
    StoracleSubmitParams,
)
from lorchestra_dagster.storacle.params import PLAN_PARAMS, ROW_METHODS
from lorchestra_dagster.storacle.plan import Plan, make_plan

#: A handler takes its op's params model (typed per handler; ``Any`` here so one table
#: holds them all).
Handler = Callable[[ResolvedStep, Any, RunState, Services], dict[str, Any]]
#: One handler per op, keyed by the op its Step model fixes (spec/models.py STEP_MODELS).
HANDLERS: dict[str, Handler] = {}
#: The params model each op's handler takes: the ``params`` type of its Step model.
PARAMS_MODELS: dict[str, type[BaseModel]] = {}


def handles(model: type[Step]) -> Callable[[Handler], Handler]:
    """Register the handler of the op ``model`` (a Step subclass) fixes, and its params model."""

    def deco(fn: Handler) -> Handler:
        op = op_name(model)
        HANDLERS[op] = fn
        params_model = model.model_fields["params"].annotation
        if not (isinstance(params_model, type) and issubclass(params_model, BaseModel)):
            raise TypeError(f"{model.__name__}.params must be typed by one pydantic model")
        PARAMS_MODELS[op] = params_model
        return fn

    return deco


def handler_for(op: str) -> Handler:
    handler = HANDLERS.get(op)
    if handler is None:
        raise PermanentError(f"no handler for op {op!r}")
    return handler


def step_params(step: ResolvedStep, params: dict[str, Any], job_id: str) -> BaseModel:
    """The step's resolved params as its op's model, validated once, before any attempt.

    Item lists are ``list[Any]`` fields: pydantic checks each is a list and keeps its
    rows as they are (no copy, no walk of the rows).

    Raises:
        PermanentError: ``invalid_params``, naming the job, step and fields (a value
            resolved from ``@run`` is client data, so the message never quotes it).
    """
    model = PARAMS_MODELS.get(step.op)
    if model is None:
        raise PermanentError(f"no handler for op {step.op!r}", job_id=job_id, step_id=step.step_id)
    try:
        return model.model_validate(params)
    except ValidationError as err:
        problems: dict[str, str] = {}
        for e in err.errors(include_url=False, include_input=False):
            field = str(e["loc"][0]) if e["loc"] else "(params)"
            problems.setdefault(field, e["msg"])  # a union's first member says it best
        detail = "; ".join(f"{field}: {msg}" for field, msg in problems.items())
        raise PermanentError(
            f"step {step.step_id!r} ({step.op}) of job {job_id!r} has invalid params once its "
            f"references are resolved: {detail}",
            code="invalid_params",
            job_id=job_id,
            step_id=step.step_id,
            data={"fields": sorted(problems)},
        ) from None


def run_step(
    step: ResolvedStep, params: BaseModel, state: RunState, services: Services
) -> dict[str, Any]:
    """Run one step with its params model (``step_params``); errors carry job and step ids."""
    return handler_for(step.op)(step, params, state, services)


#: The engine's paging hints of a batched read: not storacle params.
PAGING_HINTS = frozenset({"batch_key", "batch_rows"})


@handles(StoracleQueryStep)
def _query(
    step: ResolvedStep, params: StoracleQueryParams, state: RunState, services: Services
) -> dict[str, Any]:
    # The wire form of the read: what the step set, without the engine's hints; the data
    # plane validates it as ``QueryParams`` at its own boundary.
    query = params.model_dump(exclude_unset=True, exclude=set(PAGING_HINTS))
    limit = state.envelope.get("limit")
    if limit is not None:
        query["limit"] = min(int(limit), int(query.get("limit") or limit))
    items = services.client.query(query)
    state.rows_read += len(items)
    return {"items": items}


@handles(CallStep)
def _call(
    step: ResolvedStep, params: CallParams, state: RunState, services: Services
) -> dict[str, Any]:
    name = params.callable
    fn = get_callable(name)
    ctx = CallContext(
        catalog_dir=services.catalog_dir,
        home=services.settings.home,
        dry_run=state.dry_run,
        run_id=state.run_id,
        job_id=state.job_id,
        step_id=step.step_id,
        env=services.env,
        limit=state.envelope.get("limit"),
        now=datetime.now(UTC),
    )
    # What the step set (extras included), by attribute: items reach the callable as the
    # very list the earlier step returned, never a pydantic dump of every row.
    given = {k: getattr(params, k) for k in params.model_fields_set if k != "callable"}
    out = fn(given, ctx)
    if is_paged(out):
        return {**out, "pages": _checked_pages(name, out["pages"], step.step_id)}
    _check_contract(name, out, step.step_id)
    return out


def _check_contract(name: str, out: Any, step_id: str) -> None:
    if not isinstance(out, dict) or not isinstance(out.get("items"), list):
        raise PermanentError(
            f"callable {name!r} broke the contract: it must return a dict with an 'items' list",
            step_id=step_id,
        )


def _checked_pages(name: str, pages: Any, step_id: str) -> Any:
    for page in pages:
        _check_contract(name, page, step_id)
        yield page


@handles(PlanBuildStep)
def _plan_build(
    step: ResolvedStep, params: PlanBuildParams, state: RunState, services: Services
) -> dict[str, Any]:
    items = params.items
    if not isinstance(items, list):  # a reference left unresolved: a bug upstream
        raise PermanentError("plan.build items are not a list", step_id=step.step_id)
    meta = {
        "correlation_id": state.run_id,
        "run_id": state.run_id,
        "step_id": step.step_id,
        "job_id": state.job_id,
    }
    if shaping.is_per_item(params):
        # Each item names its own target and is one op; one plan keeps them atomic.
        ops = shaping.per_item_ops(items, params, correlation_id=state.run_id)
        rows_n = sum(len(p["rows"]) for _m, p in ops)
        return {"plan": make_plan(ops, meta), "rows": rows_n, "batches": 1}
    if params.method in ROW_METHODS:
        rows = shaping.shape_rows(items, params, correlation_id=state.run_id)
    else:
        rows = items
    model = PLAN_PARAMS.get(params.method)
    whole = model is not None and model.whole_input  # sqlite.sync deletes what it is not given
    batches = [rows] if whole else list(shaping.chunks(rows, state.batch_size))
    # Plans stay models: their rows are the shaped rows themselves (no JSON copy), and the
    # in-process storacle client hands the very object to the dispatcher.
    plans = [make_plan(shaping.build_ops(batch, params), meta) for batch in batches]
    if not plans:
        plans = [make_plan([], meta)]
    plan: Any = (
        plans[0] if len(plans) == 1 else {"plan_version": shaping.PLANSET_VERSION, "plans": plans}
    )
    return {"plan": plan, "rows": len(rows), "batches": len(plans)}


def iter_plans(plan: Any) -> list[Any]:
    """A plan, a plan set or a list of either, flattened to plain plans (models or dicts)."""
    if plan is None:
        raise PermanentError("storacle.submit got no plan (check the @run reference)")
    if isinstance(plan, list):
        return [p for item in plan for p in iter_plans(item)]
    if isinstance(plan, dict) and plan.get("plan_version") == shaping.PLANSET_VERSION:
        return list(plan["plans"])
    return [plan]


def _plan_ops(plan: Any) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(plan, Plan):
        return [(op.method, op.params) for op in plan.ops]
    return [(op.get("method"), op.get("params") or {}) for op in plan.get("ops") or []]


def _plan_id(plan: Any) -> str:
    return str(plan.plan_id if isinstance(plan, Plan) else plan.get("plan_id", ""))


COUNTS = ("inserted", "updated", "unchanged", "deleted")


def file_pattern(path: str) -> str:
    """A vault path with its per-client parts starred: ``clients/*/measures.md``.

    File paths carry client slugs (names); a plan summary lands in run records
    and Dagster metadata, so it keeps only the first folder and a file name
    that names a kind of file, never a person or a date.
    """
    parts = [x for x in path.split("/") if x]
    if len(parts) <= 1:
        return path
    name = parts[-1]
    if len(parts) == 2 or any(ch.isdigit() for ch in name):
        suffix = name.rsplit(".", 1)[-1] if "." in name else ""
        name = f"*.{suffix}" if suffix else "*"
    return "/".join([parts[0], *["*"] * (len(parts) - 2), name])


def summarize_plan(plan: Any, response: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a person may see of a plan: ids, methods, targets and counts, never rows.

    With the data plane's ``response`` (a dry run's, computed in a rolled-back
    transaction) each op also carries what it would insert, update, leave
    unchanged and delete.
    """
    results = (response or {}).get("results") or []
    ops = []
    for index, (method, p) in enumerate(_plan_ops(plan)):
        if p.get("path"):
            target = file_pattern(str(p["path"]))
        else:
            target = ".".join(x for x in (p.get("dataset"), p.get("table")) if x)
        model = PLAN_PARAMS.get(method)
        if model is not None and model.backend == "sqlite":
            target = ":".join(str(x) for x in model.target(p).values())
        entry: dict[str, Any] = {
            "method": method,
            "target": target,
            "rows": len(p.get("rows") or []) if "rows" in p else 1,
        }
        body = (results[index].get("result") or {}) if index < len(results) else {}
        if body:
            entry.update({k: int(body.get(k) or 0) for k in COUNTS})
        ops.append(entry)
    return {"plan_id": _plan_id(plan), "ops": ops}


@handles(StoracleSubmitStep)
def _submit(
    step: ResolvedStep, params: StoracleSubmitParams, state: RunState, services: Services
) -> dict[str, Any]:
    totals = {"rows": 0, "inserted": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    plan_ids: list[str] = []
    tables: set[str] = set()
    for plan in iter_plans(params.plan):
        if not _plan_ops(plan):
            continue  # nothing to write: no call, and no plan id in the run's record
        response = services.client.execute_plan(plan, dry_run=state.dry_run)
        plan_ids.append(_plan_id(plan))
        if state.dry_run:
            state.plans.append({**summarize_plan(plan, response), "step_id": step.step_id})
        for res in response.get("results", []):
            body = res.get("result") or {}
            for key in totals:
                totals[key] += int(body.get(key) or 0)
            target = ".".join(x for x in (body.get("dataset"), body.get("table")) if x)
            if target:
                tables.add(target)
    written = totals["inserted"] + totals["updated"] + totals["deleted"]
    for key, value in totals.items():
        state.submitted[key] = state.submitted.get(key, 0) + value
    state.plan_ids.extend(plan_ids)
    if not state.dry_run:
        state.rows_written += written
    return {
        "result": {
            **totals,
            "written": written,
            "plan_ids": plan_ids,
            "tables": sorted(tables),
            "dry_run": state.dry_run,
        }
    }


@handles(ComputeLlmStep)
def _compute(
    step: ResolvedStep, params: ComputeLlmParams, state: RunState, services: Services
) -> dict[str, Any]:
    """LLM steps against an OpenAI-compatible endpoint named by the environment.

    No endpoint configured is an error, never a silent no-op: a job that asks
    for an LLM and gets nothing back would quietly lose its output.
    """
    url = services.settings.llm_url
    if not url:
        raise PermanentError(
            f"step {step.step_id!r} is compute.llm but no LLM is configured: set "
            "LORCHESTRA_LLM_URL (an OpenAI-compatible base URL) and LORCHESTRA_LLM_API_KEY",
            step_id=step.step_id,
        )
    model = params.model or services.settings.llm_model
    prompt = params.prompt
    if not prompt:  # optional in the YAML (the handler is free-form), required to run
        raise PermanentError("compute.llm needs a 'prompt' string", step_id=step.step_id)
    inputs: list[Any] = params.items if isinstance(params.items, list) else [None]
    headers = {}
    if services.settings.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {services.settings.llm_api_key.get_secret_value()}"
    out: list[dict[str, Any]] = []
    with httpx.Client(
        base_url=url.rstrip("/"), timeout=float(step.timeout_s or 60), headers=headers
    ) as http:
        for item in inputs:
            content = prompt if item is None else f"{prompt}\n\n{_json(item)}"
            try:
                resp = http.post(
                    "/v1/chat/completions",
                    json={"model": model, "messages": [{"role": "user", "content": content}]},
                )
            except httpx.HTTPError as exc:
                raise TransientError(f"LLM endpoint unreachable: {type(exc).__name__}") from exc
            if resp.status_code == 429 or resp.status_code >= 500:
                raise TransientError(f"LLM endpoint answered HTTP {resp.status_code}")
            if resp.status_code >= 400:
                raise PermanentError(f"LLM endpoint refused the request: HTTP {resp.status_code}")
            text = resp.json()["choices"][0]["message"]["content"]
            out.append({"input": item, "output": text} if item is not None else {"output": text})
    return {"items": out, "stats": {"input": len(inputs), "output": len(out)}}


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


@handles(JobRunStep)
def _job(
    step: ResolvedStep, params: JobRunParams, state: RunState, services: Services
) -> dict[str, Any]:
    if state.run_child is None:
        raise PermanentError("job.run needs a child runner in the run state", step_id=step.step_id)

    child = {
        "job_id": params.job_id,
        "ctx": params.ctx or {},
        "payload": params.payload or {},
        "dry_run": state.dry_run,
        "limit": state.envelope.get("limit"),
        "batch_size": state.batch_size,
        "run_id": state.run_id,  # the child is part of the same Dagster run
        "parent_run_id": state.run_id,
    }
    result = state.run_child(child)
    # What the child read and wrote counts for the step that ran it.
    state.rows_read += result.rows_read
    state.rows_written += result.rows_written
    if result.status != "succeeded":
        raise StepFailed(
            f"child job {params.job_id!r} failed: {result.error_message()}",
            step_id=step.step_id,
            classification="permanent",
        )
    return {
        "result": {
            "job_id": result.job_id,
            "status": result.status,
            "rows_read": result.rows_read,
            "rows_written": result.rows_written,
        }
    }


@handles(LogDumpStep)
def _log_dump(
    step: ResolvedStep, params: LogDumpParams, state: RunState, services: Services
) -> dict[str, Any]:
    """Record what the items look like, never what they say; pass them on unchanged.

    The shape lands on the step's record (``lorchestra runs show``, the run record in
    Dagster) and, with ``file``, in a 0600 JSON file: the original wrote the items
    themselves there, in clear, which is what DESIGN.md section 5 rules out.
    """
    items = params.items
    if not isinstance(items, list):  # a reference left unresolved: a bug upstream
        raise PermanentError("log.dump items are not a list", step_id=step.step_id)
    shape = describe_items(items, sample=params.sample)
    target = params.file
    if target and not state.dry_run:
        path = Path(target).expanduser()
        if not path.is_absolute():
            path = services.settings.home / path
        write_private(path, json.dumps(shape, indent=2, sort_keys=True).encode())
        shape = {**shape, "file": str(path)}
    return {"items": items, "shape": shape}


def describe_items(items: list[Any], *, sample: int = 20) -> dict[str, Any]:
    """Counts, dotted field names with the types seen, and a key + hash for the first items.

    Dicts are walked to four levels (``payload.from.email``); a list counts as one
    ``list`` value and its dict elements as ``path[]``. The hash is the first 12 hex of
    SHA-256 over the item's canonical JSON: two runs that saw the same record show the
    same hash, and nothing of the record can be read back from it.
    """
    fields: dict[str, dict[str, int]] = {}

    def walk(value: Any, path: str, depth: int) -> None:
        types = fields.setdefault(path, {})
        kind = "null" if value is None else type(value).__name__
        types[kind] = types.get(kind, 0) + 1
        if depth >= 4:
            return
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(sub, f"{path}.{key}" if path else str(key), depth + 1)
        elif isinstance(value, list):
            for sub in value:
                if isinstance(sub, dict):
                    walk(sub, f"{path}[]", depth + 1)

    lines = []
    for n, item in enumerate(items):
        if isinstance(item, dict):
            for key, sub in item.items():
                walk(sub, str(key), 1)
        else:
            walk(item, "(item)", 4)
        if n < sample:
            text = _json(item)
            key = item.get("idem_key") if isinstance(item, dict) else None
            lines.append(
                {
                    "index": n,
                    "idem_key": key if isinstance(key, str) else None,
                    "sha256": hashlib.sha256(text.encode()).hexdigest()[:12],
                    "json_chars": len(text),
                }
            )
    return {
        "count": len(items),
        "fields": {path: dict(sorted(t.items())) for path, t in sorted(fields.items())},
        "items": lines,
    }


def now_iso() -> str:
    return datetime.now(tz=UTC).isoformat()

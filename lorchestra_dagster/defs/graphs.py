"""JobDef -> Dagster graph: one op per step, edges from ``@run`` references and step order.

Every op runs the engine's ``run_step`` on its step (compiled against the
run's envelope, ``@run`` references resolved from its inputs), so Dagster and
``lorchestra run`` share one implementation of every op. The job's last step
is special: when it is a ``storacle.submit``, its op returns the plan and the
asset's IO manager (``StoracleIOManager``) submits it; otherwise its op runs
normally and hands a count summary to the IO manager.

Errors: a transient error is re-raised so the op's ``RetryPolicy`` (backoff
from the step's ``retry``) tries again; a permanent one becomes a
``dagster.Failure`` with ``allow_retries=False`` and the structured error as
metadata. ``continue_on_error`` steps log and yield ``{"items": []}``.
"""

import os
import threading
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from lorchestra_dagster import naming
from lorchestra_dagster.defs.io_managers import asset_output
from lorchestra_dagster.engine.executor import run_step_with_timeout
from lorchestra_dagster.engine.services import Services
from lorchestra_dagster.engine.state import RunState
from lorchestra_dagster.errors import LorchestraError
from lorchestra_dagster.spec import Envelope, compile_job, iter_refs, resolve_run_refs
from lorchestra_dagster.spec.instance import JobInstance

#: Concurrency pool of ops that submit plans (dagster.yaml gives pools one slot by default);
#: LORCHESTRA_DAGSTER_WAREHOUSE_POOL="" turns pooling off (e.g. with a storacle server).
WAREHOUSE_POOL = os.environ.get("LORCHESTRA_DAGSTER_WAREHOUSE_POOL", "warehouse") or None
STORACLE_IO = "storacle_io_manager"

_COMPILED: dict[tuple[str, str], JobInstance] = {}
_COMPILED_LOCK = threading.Lock()


@dataclass
class StepNode:
    """One step of a JobDef as a graph node."""

    step_id: str
    op: str
    data_deps: list[str]
    order_dep: str | None
    retry_attempts: int
    retry_backoff_s: float
    terminal: bool = False
    upstream_inputs: list[str] = field(default_factory=list)


def step_nodes(jobdef: Any, upstream_inputs: list[str]) -> list[StepNode]:
    """Nodes in step order: data deps from ``@run`` refs, else the previous step."""
    nodes: list[StepNode] = []
    ids = [s.step_id for s in jobdef.steps]
    for index, step in enumerate(jobdef.steps):
        deps: list[str] = []
        for ref in iter_refs(step.params_dict()):
            sid = ref.step_id
            if ref.scope == "run" and sid in ids[:index] and sid not in deps:
                deps.append(sid)
        prev = ids[index - 1] if index else None
        nodes.append(
            StepNode(
                step_id=step.step_id,
                op=step.op,
                data_deps=deps,
                order_dep=prev if prev and prev not in deps else None,
                retry_attempts=step.retry.attempts,
                retry_backoff_s=step.retry.backoff_s,
                terminal=index == len(jobdef.steps) - 1,
                upstream_inputs=list(upstream_inputs) if index == 0 else [],
            )
        )
    return nodes


def compiled(loaded: Any, envelope: dict[str, Any], catalog_dir: Any) -> JobInstance:
    """Compile once per process, run id and envelope (every op of a job needs it)."""
    from lorchestra_dagster.spec import canonical_json

    key = (loaded.jobdef.job_id, canonical_json(envelope))
    with _COMPILED_LOCK:
        inst = _COMPILED.get(key)
    if inst is None:
        inst = compile_job(loaded, Envelope.model_validate(envelope), catalog_dir)
        with _COMPILED_LOCK:
            if len(_COMPILED) > 256:  # long-lived in-process runners: keep it bounded
                _COMPILED.clear()
            _COMPILED[key] = inst
    return inst


def _failure(exc: BaseException, job_id: str, step_id: str) -> dg.Failure:
    data = exc.to_dict() if isinstance(exc, LorchestraError) else {"type": type(exc).__name__}
    return dg.Failure(
        description=f"{job_id}/{step_id}: {exc}",
        metadata={k: str(v) for k, v in data.items()},
        allow_retries=False,
    )


def _summary(output: Any) -> dict[str, Any]:
    """Counts of a step output, safe to show (no rows)."""
    if not isinstance(output, dict):
        return {}
    out: dict[str, Any] = {}
    if isinstance(output.get("items"), list):
        out["items"] = len(output["items"])
    if isinstance(output.get("result"), dict):
        res = output["result"]
        for key in ("rows", "inserted", "updated", "unchanged", "deleted", "written", "status"):
            if key in res:
                out[key] = res[key]
    if "rows" in output and isinstance(output["rows"], int):
        out["rows"] = output["rows"]
    return out


def make_op(loaded: Any, node: StepNode) -> dg.OpDefinition:
    """The op of one step (named by ``naming.op_name``)."""
    job_id = loaded.jobdef.job_id
    ins: dict[str, dg.In] = {f"s_{d}": dg.In(dg.Any) for d in node.data_deps}
    if node.order_dep:
        ins["after"] = dg.In(dg.Nothing)
    for name in node.upstream_inputs:
        ins[name] = dg.In(dg.Any, description="Upstream asset (a reference, not rows)")
    submits_here = node.op == "storacle.submit"
    out = dg.Out(dg.Any, io_manager_key=STORACLE_IO if node.terminal else "io_manager")
    policy = None
    if node.retry_attempts > 1:
        policy = dg.RetryPolicy(
            max_retries=node.retry_attempts - 1,
            delay=node.retry_backoff_s,
            backoff=dg.Backoff.EXPONENTIAL,
        )

    def body(context: dg.OpExecutionContext, **inputs: Any) -> Any:
        services: Services = context.resources.storacle.services()
        envelope = context.resources.envelope.for_job(job_id, context.run_id)
        instance = compiled(loaded, envelope, services.catalog_dir)
        try:
            step = instance.step(node.step_id)
        except KeyError:
            context.log.info(f"{job_id}/{node.step_id}: skipped by its 'if'")
            if node.terminal:
                return asset_output("result", job_id, node.step_id, summary={"skipped": True})
            return {"items": [], "skipped": True}
        outputs = {d: inputs[f"s_{d}"] for d in node.data_deps}
        state = RunState(
            run_id=context.run_id,
            job_id=job_id,
            envelope=instance.envelope.model_dump(),
            dry_run=instance.envelope.dry_run,
        )
        try:
            params = resolve_run_refs(step.params, outputs, state.envelope)
            if node.terminal and submits_here:
                return asset_output(
                    "plan", job_id, node.step_id, plan=params.get("plan"), dry_run=state.dry_run
                )
            output = run_step_with_timeout(step, params, state, services)
        except Exception as exc:
            transient = getattr(exc, "classification", "permanent") == "transient"
            if step.continue_on_error:
                context.log.warning(
                    f"{job_id}/{node.step_id} failed and continue_on_error is set: "
                    f"{type(exc).__name__}: {exc}"
                )
                output = {"items": [], "error": {"type": type(exc).__name__}}
            elif transient:
                raise
            else:
                raise _failure(exc, job_id, node.step_id) from exc
        summary = _summary(output)
        summary.update(rows_read=state.rows_read, rows_written=state.rows_written)
        context.add_output_metadata({k: v for k, v in summary.items() if v is not None})
        if node.terminal:
            return asset_output("result", job_id, node.step_id, summary=summary)
        return output

    return dg.op(
        name=naming.op_name(job_id, node.step_id),
        ins=ins,
        out=out,
        required_resource_keys={"storacle", "envelope"},
        retry_policy=policy,
        description=f"{node.op} step {node.step_id!r} of job {job_id}",
        tags={"lorchestra/op": node.op, "lorchestra/step_id": node.step_id},
        pool=WAREHOUSE_POOL if submits_here else None,
    )(body)


def build_graph(loaded: Any, upstream_inputs: list[str]) -> dg.GraphDefinition:
    """The graph of one JobDef; ``upstream_inputs`` become inputs of its first op."""
    jobdef = loaded.jobdef
    nodes = step_nodes(jobdef, upstream_inputs)
    ops = [make_op(loaded, n) for n in nodes]
    names = {n.step_id: naming.op_name(jobdef.job_id, n.step_id) for n in nodes}
    dependencies: dict[str, dict[str, dg.DependencyDefinition]] = {}
    for n in nodes:
        deps = {f"s_{d}": dg.DependencyDefinition(names[d], "result") for d in n.data_deps}
        if n.order_dep:
            deps["after"] = dg.DependencyDefinition(names[n.order_dep], "result")
        dependencies[names[n.step_id]] = deps
    first, last = names[nodes[0].step_id], names[nodes[-1].step_id]
    return dg.GraphDefinition(
        name=naming.graph_name(jobdef.job_id),
        node_defs=ops,
        dependencies=dependencies,
        input_mappings=[
            dg.InputMapping(
                graph_input_name=name,
                mapped_node_name=first,
                mapped_node_input_name=name,
            )
            for name in upstream_inputs
        ],
        output_mappings=[
            dg.OutputMapping(
                graph_output_name="result",
                mapped_node_name=last,
                mapped_node_output_name="result",
            )
        ],
        description=jobdef.description,
    )

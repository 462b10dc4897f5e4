"""One Dagster job per PipelineDef: the assets of the jobs it names, run by the catalog op.

``stop_on_failure`` needs no extra node in the graph: the catalog op reads the
run's ``lorchestra/pipeline`` tag and follows the PipelineDef's stages itself
(``engine.scheduler``), so the lineage page shows only the jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from lorchestra_dagster import naming
from lorchestra_dagster.errors import SpecError
from lorchestra_dagster.spec.loops import loop_source
from lorchestra_dagster.spec.models import LoopSpec

PIPELINE_TAG = "lorchestra/pipeline"


@dataclass
class PipelinePlan:
    """A pipeline flattened to stages of job ids."""

    pipeline_id: str
    name: str
    stop_on_failure: bool
    stages: list[tuple[str, list[str]]] = field(default_factory=list)
    #: jobs of loop stages, each with its loop
    loops: dict[str, LoopSpec] = field(default_factory=dict)
    #: jobs whose output a loop iterates (they always run: a skip would give no items)
    captures: set[str] = field(default_factory=set)
    #: the pipeline's payload, nested pipelines' under their parent's
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def job_ids(self) -> list[str]:
        return [j for _, ids in self.stages for j in ids]


def flatten(catalog: Any, pipeline_id: str, _seen: tuple[str, ...] = ()) -> PipelinePlan:
    """Stages of ``pipeline_id`` with nested pipelines expanded into their jobs."""
    if pipeline_id in _seen:
        raise SpecError(f"pipeline cycle: {' -> '.join((*_seen, pipeline_id))}")
    pdef = catalog.pipelines[pipeline_id]
    plan = PipelinePlan(
        pipeline_id=pipeline_id,
        name=naming.pipeline_job_name(pipeline_id),
        stop_on_failure=bool(pdef.stop_on_failure),
    )
    for stage in pdef.stages:
        ids: list[str] = []
        for member in stage.members:
            if member in catalog.pipelines and stage.loop is None:
                child = flatten(catalog, member, (*_seen, pipeline_id))
                ids.extend(child.job_ids)
                plan.loops.update(child.loops)
                plan.captures |= child.captures
                plan.payload = {**child.payload, **plan.payload}
            else:
                ids.append(member)
                if stage.loop is not None:
                    plan.loops[member] = stage.loop
        if stage.loop is not None:
            plan.captures.add(loop_source(stage.loop.over)[0])
        plan.stages.append((stage.name, list(dict.fromkeys(ids))))
    plan.payload = {**plan.payload, **pdef.payload}
    return plan


def build_pipeline_job(plan: PipelinePlan, keys: dict[str, dg.AssetKey]) -> Any:
    """The asset job of one pipeline (its runnable members; the op reports broken ones)."""
    selected = [keys[j] for j in plan.job_ids if j in keys]
    description = f"{plan.pipeline_id}: " + " -> ".join(s for s, _ in plan.stages)
    if plan.stop_on_failure:
        description += " (a failed stage stops the later ones)"
    return dg.define_asset_job(
        name=plan.name,
        selection=dg.AssetSelection.assets(*selected),
        description=description,
        tags={PIPELINE_TAG: plan.pipeline_id},
    )
